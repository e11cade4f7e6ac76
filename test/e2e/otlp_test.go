package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// OpenTelemetry SDK exporters send logs (OTLP/HTTP and OTLP/gRPC), metrics
// and traces to a real floe process: every log record reaches the file
// output exactly once with its body, and Vivo serves the logs with their OTLP
// metadata, the metrics and the traces.
func TestOTLPInputSDKToFileAndVivo(t *testing.T) {
	const httpLogs, grpcLogs = 300, 200
	dir := t.TempDir()
	otlpHTTP, otlpGRPC, vivoAddr := freePort(t), freePort(t), freePort(t)
	_, httpPort, _ := strings.Cut(otlpHTTP, ":")
	_, grpcPort, _ := strings.Cut(otlpGRPC, ":")
	vhost, vport, _ := strings.Cut(vivoAddr, ":")
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    flush 0.2

[INPUT]
    name       opentelemetry
    listen     127.0.0.1
    port       %s
    grpc_port  %s

[OUTPUT]
    name         file
    match_regex  ^(v1_logs|.*LogsService_Export)$
    path         %s
    file         logs.json
    format       plain
    mkdir        on

[OUTPUT]
    name   vivo_exporter
    match  *
    host   %s
    port   %s
`, httpPort, grpcPort, outDir, vhost, vport))
	p := startFloe(t, "floe", nil, "run", "-c", cfg, "--storage-path", filepath.Join(dir, "data"))
	p.waitLog(`floe started`, 60*time.Second)
	p.waitLog(`otlp listening`, 30*time.Second)
	p.waitLog(`vivo listening`, 30*time.Second)

	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("service.name", "e2e-shop"))
	traceID := trace.TraceID{0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled}))

	send := func(exp sdklog.Exporter, prefix string, n int) {
		t.Helper()
		lp := sdklog.NewLoggerProvider(sdklog.WithResource(res),
			sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithExportMaxBatchSize(64))))
		logger := lp.Logger("e2e/" + prefix)
		for i := 0; i < n; i++ {
			var r otellog.Record
			r.SetTimestamp(time.Now())
			r.SetSeverity(otellog.SeverityInfo)
			r.SetSeverityText("INFO")
			r.SetBody(attribute.StringValue(fmt.Sprintf("%s-%d", prefix, i)))
			r.AddAttributes(attribute.Int("i", i))
			logger.Emit(spanCtx, r)
		}
		if err := lp.Shutdown(ctx); err != nil { // flushes; fails if an export failed
			t.Fatalf("%s logs: %v", prefix, err)
		}
	}
	hexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpoint(otlpHTTP), otlploghttp.WithInsecure(),
		otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	send(hexp, "http", httpLogs)
	gexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(otlpGRPC), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	send(gexp, "grpc", grpcLogs)

	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(otlpHTTP), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
	orders, _ := mp.Meter("e2e/metrics").Int64Counter("e2e.orders")
	orders.Add(ctx, 7, metric.WithAttributes(attribute.String("region", "eu")))
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(otlpHTTP), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(texp))
	_, span := tp.Tracer("e2e/traces").Start(ctx, "e2e-checkout")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("traces: %v", err)
	}

	// Every log record once in the file output.
	outFile := filepath.Join(outDir, "logs.json")
	eventually(t, 60*time.Second, "every log record in the file", func() (bool, string) {
		n := countLines(outFile)
		return n >= httpLogs+grpcLogs, fmt.Sprint(n)
	})
	time.Sleep(500 * time.Millisecond) // let a duplicate, if any, land too
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		s, _ := rec["log"].(string)
		seen[s]++
	}
	var missing, dups []string
	for prefix, n := range map[string]int{"http": httpLogs, "grpc": grpcLogs} {
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("%s-%d", prefix, i)
			switch seen[k] {
			case 1:
			case 0:
				missing = append(missing, k)
			default:
				dups = append(dups, k)
			}
			delete(seen, k)
		}
	}
	if len(missing) > 0 || len(dups) > 0 || len(seen) > 0 {
		t.Fatalf("%d missing (%.5v), %d duplicated (%.5v), %d unexpected (%v)", len(missing), missing, len(dups), dups, len(seen), seen)
	}

	// Vivo: logs with their OTLP metadata, metrics and traces as OTLP JSON.
	base := "http://" + vivoAddr
	eventually(t, 30*time.Second, "logs, metrics and traces in Vivo", func() (bool, string) {
		_, _, logs, _ := vivoGet(t, base+"/logs?limit=1000")
		_, _, metrics, _ := vivoGet(t, base+"/metrics")
		_, _, traces, _ := vivoGet(t, base+"/traces")
		ok := strings.Contains(logs, `"_tag":"v1_logs"`) && strings.Contains(logs, `"severity_text":"INFO"`) &&
			strings.Contains(logs, `{"log":"http-0"}`) &&
			strings.Contains(metrics, `"e2e.orders"`) && strings.Contains(metrics, `"e2e-shop"`) &&
			strings.Contains(traces, `"e2e-checkout"`) && strings.Contains(traces, span.SpanContext().TraceID().String())
		return ok, fmt.Sprintf("logs %.200q metrics %.200q traces %.200q", logs, metrics, traces)
	})

	// Bad requests get their status from the real process.
	resp, err := http.Post("http://"+otlpHTTP+"/v1/logs", "application/x-protobuf", strings.NewReader("\x0a\xff\xff"))
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("garbage: %v %v", err, resp)
	}
	resp, err = http.Post("http://"+otlpHTTP+"/v1/logs", "application/x-protobuf", strings.NewReader(strings.Repeat("x", 5_000_000)))
	if err != nil || resp.StatusCode != 413 {
		t.Errorf("5 MB body: %v %v", err, resp)
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// With FLOE_IN full the OTLP input answers 503 with Retry-After instead of
// taking data it cannot store; once the pipeline drains it accepts again,
// and exactly the records of the accepted requests are delivered.
func TestOTLPInputBackpressure503(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	otlpHTTP := freePort(t)
	_, httpPort, _ := strings.Cut(otlpHTTP, ":")
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    flush                     0.2
    nats.url                  %s
    storage.total_limit_size  2M
    # byte limits count stored bytes; these events compress several-fold
    storage.compression       none

[INPUT]
    name       opentelemetry
    listen     127.0.0.1
    port       %s
    grpc       off
    tag        otlp
    tag_from_uri off

[OUTPUT]
    name    file
    match   otlp
    path    %s
    file    logs.json
    format  plain
    mkdir   on
`, natsURL, httpPort, outDir))
	ingest := startFloe(t, "ingest", nil, "run", "--stage=ingest", "-c", cfg, "--http-port", "0")
	ingest.waitLog(`otlp listening`, 60*time.Second)

	// Requests of 100 records of ~1 KB: FLOE_IN (2 MB) is full after ~20.
	const perReq = 100
	body := func(req int) []byte {
		var recs []string
		for i := 0; i < perReq; i++ {
			recs = append(recs, fmt.Sprintf(`{"body":{"stringValue":"r%d-%d-%s"}}`, req, i, strings.Repeat("x", 1000)))
		}
		return []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[` + strings.Join(recs, ",") + `]}]}]}`)
	}
	client := &http.Client{Timeout: 3 * time.Minute}
	type result struct {
		req, status int
		retryAfter  string
		err         error
	}
	results := make(chan result, 1000)
	var next atomic.Int64
	refused := make(chan struct{})
	var refusedOnce sync.Once
	var wg sync.WaitGroup
	// send posts one request; a request written before the pause waits for
	// the drain, so new ones keep being sent until one is refused.
	send := func() {
		defer wg.Done()
		n := int(next.Add(1))
		resp, err := client.Post("http://"+otlpHTTP+"/v1/logs", "application/json", bytes.NewReader(body(n)))
		r := result{req: n, err: err}
		if err == nil {
			r.status, r.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			resp.Body.Close()
			if r.status == 503 {
				refusedOnce.Do(func() { close(refused) })
			}
		}
		results <- r
	}
	launched := make(chan struct{})
	go func() {
		defer close(launched)
		for i := 0; i < 300; i++ {
			select {
			case <-refused:
				return
			case <-time.After(50 * time.Millisecond):
			}
			wg.Add(1)
			go send()
		}
	}()
	select {
	case <-refused:
	case <-time.After(2 * time.Minute):
		t.Fatal("no 503 while FLOE_IN is full")
	}
	// Start the rest of the pipeline: FLOE_IN drains, blocked requests finish.
	rest := startFloe(t, "rest", nil, "run", "--stage=filter,router,output", "-c", cfg, "--http-port", "0")
	rest.waitLog(`floe started`, 60*time.Second)
	<-launched
	wg.Wait()
	close(results)
	accepted := map[int]bool{}
	refusedN := 0
	for r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("request %d: %v", r.req, r.err)
		case r.status == 201:
			accepted[r.req] = true
		case r.status == 503:
			refusedN++
			if r.retryAfter == "" {
				t.Errorf("503 without Retry-After")
			}
		default:
			t.Fatalf("request %d: status %d", r.req, r.status)
		}
	}
	// Resumed: a new request is accepted.
	eventually(t, 60*time.Second, "accepting again", func() (bool, string) {
		resp, err := client.Post("http://"+otlpHTTP+"/v1/logs", "application/json", bytes.NewReader(body(1000)))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode == 201 {
			accepted[1000] = true
		}
		return resp.StatusCode == 201, fmt.Sprint(resp.StatusCode)
	})
	t.Logf("%d requests accepted, %d refused with 503", len(accepted), refusedN)
	want := len(accepted) * perReq
	outFile := filepath.Join(outDir, "logs.json")
	eventually(t, 2*time.Minute, "every accepted record delivered", func() (bool, string) {
		n := countLines(outFile)
		return n >= want, fmt.Sprint(n)
	})
	time.Sleep(time.Second)
	b, _ := os.ReadFile(outFile)
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]string
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %.80q: %v", line, err)
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(rec["log"], "r"), "-x")
		seen[id]++
	}
	bad := 0
	for id, n := range seen {
		req, _ := strconv.Atoi(strings.SplitN(id, "-", 2)[0])
		if n != 1 || !accepted[req] {
			bad++
			if bad < 5 {
				t.Errorf("record %s delivered %d times (request accepted: %v)", id, n, accepted[req])
			}
		}
	}
	if len(seen) != want || bad > 0 {
		t.Fatalf("%d distinct records delivered, want %d; %d wrong", len(seen), want, bad)
	}
	_ = ingest.stop(20 * time.Second)
	_ = rest.stop(20 * time.Second)
}
