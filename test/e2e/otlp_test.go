package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
