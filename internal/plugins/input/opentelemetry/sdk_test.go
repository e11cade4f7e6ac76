package opentelemetry

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var (
	sdkTrace = trace.TraceID{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	sdkSpan  = trace.SpanID{0xca, 0xfe, 1, 2, 3, 4, 5, 6}
	sdkTime  = time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
)

// emitSDKLogs sends two records through an OpenTelemetry SDK logger
// provider over exp, with the simple (synchronous) processor.
func emitSDKLogs(t *testing.T, exp sdklog.Exporter) {
	t.Helper()
	res := resource.NewSchemaless(attribute.String("service.name", "shop"), attribute.Int("pid", 42))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
	defer func() {
		if err := lp.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	logger := lp.Logger("shop/cart", otellog.WithInstrumentationVersion("1.4.0"))
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: sdkTrace, SpanID: sdkSpan, TraceFlags: trace.FlagsSampled}))

	var r otellog.Record
	r.SetTimestamp(sdkTime)
	r.SetSeverity(otellog.SeverityWarn)
	r.SetSeverityText("WARN")
	r.SetBody(attribute.StringValue("cart is slow"))
	r.AddAttributes(attribute.String("user", "u1"), attribute.Int("items", 3))
	logger.Emit(ctx, r)

	var r2 otellog.Record
	r2.SetTimestamp(sdkTime.Add(time.Second))
	r2.SetBody(attribute.MapValue(attribute.String("msg", "structured"), attribute.Bool("ok", true)))
	logger.Emit(context.Background(), r2)
	if err := lp.ForceFlush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// checkSDKLogs asserts that the two records arrived as the mapping says.
func checkSDKLogs(t *testing.T, w *signalWriter, wantTag string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var evs []event.Event
	for {
		evs = allEvents(t, w)
		if len(evs) >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each SDK Emit is its own request (simple processor): two groups.
	if len(evs) != 6 {
		t.Fatalf("%d events, want 2 groups of 1 record", len(evs))
	}
	w.Mu.Lock()
	for _, wr := range w.Writes {
		if wr.Tag != wantTag {
			t.Errorf("tag %q, want %q", wr.Tag, wantTag)
		}
	}
	w.Mu.Unlock()
	hdr := plugintest.Render(evs[0].Body)
	if !strings.Contains(hdr, `"resource":{"attributes":{`) || !strings.Contains(hdr, `"service.name":"shop"`) ||
		!strings.Contains(hdr, `"pid":42`) || !strings.Contains(hdr, `"scope":{"name":"shop/cart","version":"1.4.0"}`) {
		t.Errorf("group header = %s", hdr)
	}
	rec := evs[1]
	if rec.Time != event.FromTime(sdkTime) {
		t.Errorf("time %+v, want %+v", rec.Time, event.FromTime(sdkTime))
	}
	if got := plugintest.Render(rec.Body); got != `{"log":"cart is slow"}` {
		t.Errorf("body = %s", got)
	}
	otlp, _ := rec.Meta.Get("otlp")
	om, _ := otlp.(event.Map)
	want := map[string]string{
		"timestamp":       plugintest.Render(sdkTime.UnixNano()),
		"severity_number": "13",
		"severity_text":   `"WARN"`,
		"attributes":      `{"user":"u1","items":3}`,
		"trace_id":        plugintest.Render(sdkTrace[:]),
		"span_id":         plugintest.Render(sdkSpan[:]),
		"trace_flags":     "1",
	}
	for k, v := range want {
		got, ok := om.Get(k)
		if !ok || plugintest.Render(got) != v {
			t.Errorf("otlp.%s = %s, want %s", k, plugintest.Render(got), v)
		}
	}
	if _, ok := om.Get("observed_timestamp"); !ok {
		t.Error("the SDK sets an observed time; it is missing")
	}
	if got := plugintest.Render(evs[4].Body); got != `{"msg":"structured","ok":true}` {
		t.Errorf("kvlist body = %s", got)
	}
}

func TestSDKLogsHTTP(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, m := start(t, w)
	exp, err := otlploghttp.New(context.Background(), otlploghttp.WithEndpoint(addr), otlploghttp.WithInsecure(),
		otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	emitSDKLogs(t, exp)
	checkSDKLogs(t, w, "v1_logs")
	if m.Refused.Load() != 0 {
		t.Errorf("refusals %d", m.Refused.Load())
	}
}

func TestSDKLogsGRPC(t *testing.T) {
	w := &signalWriter{}
	_, _, gaddr, _ := start(t, w)
	exp, err := otlploggrpc.New(context.Background(), otlploggrpc.WithEndpoint(gaddr), otlploggrpc.WithInsecure(),
		otlploggrpc.WithCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	emitSDKLogs(t, exp)
	checkSDKLogs(t, w, "opentelemetry.proto.collector.logs.v1.LogsService_Export")
}

// TestSDKLogsGRPCOnHTTPPort: as Fluent Bit, the HTTP port answers gRPC too.
func TestSDKLogsGRPCOnHTTPPort(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, _ := start(t, w, "grpc off", "tag_from_uri off", "tag ignored-by-input")
	exp, err := otlploggrpc.New(context.Background(), otlploggrpc.WithEndpoint(addr), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	emitSDKLogs(t, exp)
	checkSDKLogs(t, w, "")
}

// rawCall invokes an Export method with raw bytes.
func rawCall(t *testing.T, addr, method string, body []byte) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cc.Invoke(ctx, method, &rawMessage{body}, &rawMessage{})
}

func TestGRPCErrors(t *testing.T) {
	w := &signalWriter{}
	in, _, gaddr, m := start(t, w, "buffer_max_size 1000")
	const logs = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	err := rawCall(t, gaddr, logs, []byte{0x0a, 0xff, 0xff})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not an OTLP protobuf message") {
		t.Errorf("garbage: %v", err)
	}
	err = rawCall(t, gaddr, logs, protoLogs(t, sampleLogs(200)))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("too large: %v", err)
	}
	in.Pause()
	err = rawCall(t, gaddr, logs, protoLogs(t, sampleLogs(1)))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("paused: %v", err)
	}
	in.Resume()
	if err := rawCall(t, gaddr, logs, protoLogs(t, sampleLogs(1))); err != nil {
		t.Errorf("after resume: %v", err)
	}
	if w.Count() != 1 {
		t.Errorf("%d writes, want 1", w.Count())
	}
	if m.Refused.Load() != 2 { // too large is refused by gRPC itself, before the input
		t.Errorf("refusals %d", m.Refused.Load())
	}
}

func TestSDKMetricsAndTracesHTTP(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, _ := start(t, w)
	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("service.name", "shop"))

	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(addr), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
	ctr, _ := mp.Meter("shop/metrics").Int64Counter("orders")
	ctr.Add(ctx, 5, metric.WithAttributes(attribute.String("region", "eu")))
	ctr.Add(ctx, 2, metric.WithAttributes(attribute.String("region", "us")))
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := mexp.Export(ctx, &rm); err != nil {
		t.Fatalf("metrics export: %v", err)
	}

	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(texp))
	_, span := tp.Tracer("shop/traces").Start(ctx, "checkout")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("traces: %v", err)
	}

	sw := w.signalWrites()
	if len(sw) != 2 {
		t.Fatalf("%d signal writes", len(sw))
	}
	mreq := pmetricotlp.NewExportRequest()
	if sw[0].signal != chunk.Metrics || sw[0].tag != "v1_metrics" || mreq.UnmarshalProto(sw[0].data) != nil {
		t.Fatalf("metrics write %s %s", sw[0].signal, sw[0].tag)
	}
	if sw[0].records != 2 || mreq.Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name() != "orders" {
		t.Errorf("metrics: %d points", sw[0].records)
	}
	treq := ptraceotlp.NewExportRequest()
	if sw[1].signal != chunk.Traces || sw[1].tag != "v1_traces" || treq.UnmarshalProto(sw[1].data) != nil || sw[1].records != 1 {
		t.Fatalf("traces write %s %s %d", sw[1].signal, sw[1].tag, sw[1].records)
	}
	got := treq.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if got.Name() != "checkout" || [16]byte(got.TraceID()) != [16]byte(span.SpanContext().TraceID()) {
		t.Errorf("span %q %v", got.Name(), got.TraceID())
	}
}
