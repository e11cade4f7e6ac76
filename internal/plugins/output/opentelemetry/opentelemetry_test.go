package opentelemetry

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/otlplog"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// transports are the three ways the output speaks OTLP.
var transports = []struct {
	name  string
	grpc  bool
	extra []string
}{
	{"http_protobuf", false, nil},
	{"http_json", false, []string{"format json"}},
	{"grpc", true, nil},
}

// syncBuffer is a log destination tests read while the output writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newOut(t *testing.T, lines ...string) (*Output, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	set := plugin.Settings{Name: "opentelemetry.0", Logger: slog.New(slog.NewTextHandler(logs, nil))}
	o, err := newOutput(context.Background(), set, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new output: %v", err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o, logs
}

// richLogs sets every LogRecord field, two resources and several scopes.
func richLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.SetSchemaUrl("https://opentelemetry.io/schemas/1.21.0")
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutInt("pid", 42)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("io.floe.test")
	sl.Scope().SetVersion("1.2.3")
	sl.Scope().Attributes().PutBool("scoped", true)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.Timestamp(1700000000123456789))
	lr.SetObservedTimestamp(pcommon.Timestamp(1700000001000000000))
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.SetSeverityText("ERROR")
	lr.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	lr.SetSpanID(pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2})
	lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	lr.Attributes().PutStr("http.method", "GET")
	lr.Attributes().PutEmptySlice("tags").AppendEmpty().SetStr("a")
	body := lr.Body().SetEmptyMap()
	body.PutStr("msg", "payment failed")
	body.PutDouble("amount", 12.5)
	body.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
	rl2 := ld.ResourceLogs().AppendEmpty()
	rl2.Resource().Attributes().PutStr("service.name", "cart")
	for s := range 2 {
		sl := rl2.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(fmt.Sprintf("scope%d", s))
		for i := range 3 {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.Timestamp(1700000000e9 + int64(i)))
			lr.Body().SetEmptyMap().PutInt("i", int64(i))
			lr.SetSeverityNumber(plog.SeverityNumber(i + 1))
		}
	}
	return ld
}

// TestOTLPInRoundTrip: logs the OTLP input turned into events (group
// headers, otlp metadata) reach the receiver as the input received them.
func TestOTLPInRoundTrip(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			sink := newSink(t, tr.grpc)
			o, _ := newOut(t, sink.config(tr.extra...)...)
			want := richLogs()
			var data []byte
			if err := otlplog.FromLogs(want, nil, 0, func(b []byte, _ int) error {
				data = append(data, b...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			c := &chunk.Chunk{ID: "rt", Tag: "v1_logs", Type: chunk.Logs, Records: 7, Data: data}
			if err := o.Flush(context.Background(), c); err != nil {
				t.Fatalf("flush: %v", err)
			}
			got := sink.storedLogs()
			if len(got) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(got))
			}
			if g, w := logsJSON(t, got[0]), logsJSON(t, want); g != w {
				t.Errorf("receiver got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func logsJSON(t *testing.T, ld plog.Logs) string {
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFluentBitRecordKeys: plain records (no OTLP metadata) map through
// Fluent Bit's keys: logs_body_key, logs_body_key_attributes, the
// logs_*_message_key record keys and the logs_*_metadata_key metadata keys.
func TestFluentBitRecordKeys(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			sink := newSink(t, tr.grpc)
			o, _ := newOut(t, sink.config(append(tr.extra,
				"logs_body_key $message", "logs_body_key $log", "logs_body_key_attributes on",
				"logs_severity_text_message_key level", "logs_trace_id_message_key trace",
				"logs_span_id_message_key span")...)...)
			traceHex := "0102030405060708090a0b0c0d0e0f10"
			ev1 := event.Event{
				Time: event.Time{Sec: 1700000000, Nsec: 5},
				Meta: plugintest.KV("pod", "web-1", "SeverityNumber", int64(17)),
				Body: plugintest.KV("message", "boom", "level", "ERROR", "trace", traceHex, "span", "a1a2a3a4a5a6a7a8", "user", "ann"),
			}
			ev2 := event.Event{
				Time: event.Time{Sec: 1700000001},
				Body: plugintest.KV("log", "plain line", "level", "warn"),
			}
			ev3 := event.Event{
				Time: event.Time{Sec: 1700000002},
				Body: plugintest.KV("other", int64(3)),
			}
			c := plugintest.Chunk(ev1, ev2, ev3)
			c.Records = 3
			if err := o.Flush(context.Background(), c); err != nil {
				t.Fatalf("flush: %v", err)
			}
			recs := sink.logRecords()
			if len(recs) != 3 {
				t.Fatalf("receiver got %d records, want 3", len(recs))
			}
			r1 := recs[0]
			if r1.rl.Resource().Attributes().Len() != 0 || r1.sl.Scope().Name() != "" {
				t.Errorf("records outside OTLP groups: resource %v scope %q, want both empty",
					r1.rl.Resource().Attributes().AsRaw(), r1.sl.Scope().Name())
			}
			lr := r1.lr
			if lr.Body().Str() != "boom" {
				t.Errorf("body = %v, want the message key", lr.Body().AsRaw())
			}
			if lr.Timestamp() != pcommon.Timestamp(1700000000000000005) {
				t.Errorf("time_unix_nano = %d", lr.Timestamp())
			}
			if lr.SeverityText() != "ERROR" || lr.SeverityNumber() != plog.SeverityNumberError {
				t.Errorf("severity = %q/%d, want ERROR/17 (metadata number, record text)", lr.SeverityText(), lr.SeverityNumber())
			}
			tid, sid := lr.TraceID(), lr.SpanID()
			if hex.EncodeToString(tid[:]) != traceHex || hex.EncodeToString(sid[:]) != "a1a2a3a4a5a6a7a8" {
				t.Errorf("trace/span = %x/%x", lr.TraceID(), lr.SpanID())
			}
			attrs := lr.Attributes().AsRaw()
			if attrs["pod"] != "web-1" || attrs["user"] != "ann" {
				t.Errorf("attributes = %v, want metadata pod and record user", attrs)
			}
			if _, ok := attrs["message"]; ok {
				t.Errorf("the body key is also an attribute: %v", attrs)
			}
			if b := recs[1].lr.Body(); b.Str() != "plain line" || recs[1].lr.SeverityNumber() != plog.SeverityNumberWarn {
				t.Errorf("second record body %v severity %d, want the log key and WARN derived from the text", b.AsRaw(), recs[1].lr.SeverityNumber())
			}
			if b := recs[2].lr.Body(); b.Type() != pcommon.ValueTypeMap || b.Map().Len() != 1 {
				t.Errorf("a record without a body key: body %v, want the whole record", b.AsRaw())
			}
		})
	}
}

func sampleMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("host.name", "node-1")
	sm := rm.ScopeMetrics().AppendEmpty()
	g := sm.Metrics().AppendEmpty()
	g.SetName("cpu_temp")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(61.5)
	dp.SetTimestamp(1700000000e9)
	s := sm.Metrics().AppendEmpty()
	s.SetName("requests_total")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 2 {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(10 * (i + 1)))
		dp.Attributes().PutStr("code", fmt.Sprint(200+i))
		dp.SetTimestamp(1700000000e9)
	}
	return md
}

func sampleTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("GET /")
	sp.SetTraceID(pcommon.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	sp.SetSpanID(pcommon.SpanID{1, 1, 1, 1, 1, 1, 1, 1})
	sp.SetStartTimestamp(1700000000e9)
	sp.SetEndTimestamp(1700000001e9)
	return td
}

func metricsChunk(t testing.TB, md pmetric.Metrics) *chunk.Chunk {
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return &chunk.Chunk{ID: "m", Tag: "v1_metrics", Type: chunk.Metrics, Records: md.DataPointCount(), Data: b}
}

func tracesChunk(t testing.TB, td ptrace.Traces) *chunk.Chunk {
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return &chunk.Chunk{ID: "t", Tag: "v1_traces", Type: chunk.Traces, Records: td.SpanCount(), Data: b}
}

// TestMetricsAndTraces: OTLP metrics and traces chunks arrive at the
// receiver's metrics and traces services unchanged; add_label puts its
// attributes on every data point; headers and basic auth go with them.
func TestMetricsAndTraces(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			sink := newSink(t, tr.grpc)
			o, _ := newOut(t, sink.config(append(tr.extra, "header X-Tenant team-a", "http_user u", "http_passwd p")...)...)
			md, td := sampleMetrics(), sampleTraces()
			if err := o.Flush(context.Background(), metricsChunk(t, md)); err != nil {
				t.Fatalf("flush metrics: %v", err)
			}
			if err := o.Flush(context.Background(), tracesChunk(t, td)); err != nil {
				t.Fatalf("flush traces: %v", err)
			}
			sink.mu.Lock()
			gotM, gotT, heads := sink.metrics, sink.traces, sink.heads
			sink.mu.Unlock()
			if len(gotM) != 1 || len(gotT) != 1 {
				t.Fatalf("receiver got %d metrics and %d traces requests, want 1 each", len(gotM), len(gotT))
			}
			if g, w := metricsJSON(t, gotM[0]), metricsJSON(t, md); g != w {
				t.Errorf("metrics arrived as\n%s\nwant\n%s", g, w)
			}
			gb, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(gotT[0])
			wb, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
			if !bytes.Equal(gb, wb) {
				t.Errorf("traces arrived as\n%s\nwant\n%s", gb, wb)
			}
			for i, h := range heads {
				if h.Get("X-Tenant") != "team-a" || !strings.HasPrefix(h.Get("Authorization"), "Basic ") {
					t.Errorf("request %d headers %v lack X-Tenant or basic auth", i, h)
				}
			}
		})
	}
	t.Run("add_label", func(t *testing.T) {
		for _, tr := range transports {
			sink := newSink(t, tr.grpc)
			o, _ := newOut(t, sink.config(append(tr.extra, "add_label env prod", "add_label team core")...)...)
			if err := o.Flush(context.Background(), metricsChunk(t, sampleMetrics())); err != nil {
				t.Fatalf("%s: flush: %v", tr.name, err)
			}
			sink.mu.Lock()
			got := sink.metrics
			sink.mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("%s: %d requests", tr.name, len(got))
			}
			ms := got[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
			n := 0
			check := func(name string, a pcommon.Map) {
				n++
				if v, _ := a.Get("env"); v.Str() != "prod" {
					t.Errorf("%s: %s data point attributes %v lack env=prod", tr.name, name, a.AsRaw())
				}
				if v, _ := a.Get("team"); v.Str() != "core" {
					t.Errorf("%s: %s data point attributes %v lack team=core", tr.name, name, a.AsRaw())
				}
			}
			check("gauge", ms.At(0).Gauge().DataPoints().At(0).Attributes())
			for i := 0; i < ms.At(1).Sum().DataPoints().Len(); i++ {
				a := ms.At(1).Sum().DataPoints().At(i).Attributes()
				check("sum", a)
				if v, _ := a.Get("code"); v.Str() != fmt.Sprint(200+i) {
					t.Errorf("%s: add_label replaced the point's own attributes: %v", tr.name, a.AsRaw())
				}
			}
			if n != 3 {
				t.Errorf("%s: checked %d points, want 3", tr.name, n)
			}
		}
	})
}

func metricsJSON(t *testing.T, md pmetric.Metrics) string {
	b, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPartialSuccess: a receiver that accepts a request but rejects some
// records answers OK; the rejected ones are counted and logged with its
// message, and nothing is sent again.
func TestPartialSuccess(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			sink := newSink(t, tr.grpc)
			o, logs := newOut(t, sink.config(tr.extra...)...)
			sink.inject(fault{rejected: 3, message: "3 records too old"})
			c := plugintest.Chunk(plugintest.KV("a", int64(1)), plugintest.KV("a", int64(2)), plugintest.KV("a", int64(3)), plugintest.KV("a", int64(4)))
			if err := o.Flush(context.Background(), c); err != nil {
				t.Fatalf("a partial success answered %v, want OK", err)
			}
			if n := o.rejected.Count(); n != 3 {
				t.Errorf("rejected count = %d, want 3", n)
			}
			if !strings.Contains(logs.String(), "3 records too old") {
				t.Errorf("the receiver's message is not logged:\n%s", logs.String())
			}
			sink.inject(fault{rejected: 2, message: "bad points"})
			if err := o.Flush(context.Background(), metricsChunk(t, sampleMetrics())); err != nil {
				t.Fatalf("metrics partial success answered %v, want OK", err)
			}
			if n := o.rejected.Count(); n != 5 {
				t.Errorf("rejected count after metrics = %d, want 5", n)
			}
			sink.mu.Lock()
			hits := sink.hits
			sink.mu.Unlock()
			if hits != 2 {
				t.Errorf("receiver saw %d requests, want 2 (no resend after a partial success)", hits)
			}
		})
	}
}

// TestAnswers: the receiver's refusals map onto RETRY (with the delay it
// asks for) or ERROR, and a retried chunk arrives once.
func TestAnswers(t *testing.T) {
	cases := []struct {
		name      string
		grpc      bool
		f         fault
		permanent bool
		delay     time.Duration // 0: no throttle delay expected
	}{
		{"http_429_retry_after", false, fault{httpStatus: 429, retryAfter: "7"}, false, 7 * time.Second},
		{"http_502", false, fault{httpStatus: 502}, false, 0},
		{"http_503_retry_after", false, fault{httpStatus: 503, retryAfter: "2"}, false, 2 * time.Second},
		{"http_504", false, fault{httpStatus: 504}, false, 0},
		{"http_500", false, fault{httpStatus: 500}, false, 0},
		{"http_408", false, fault{httpStatus: 408}, false, 0},
		{"http_400", false, fault{httpStatus: 400, message: "invalid trace id"}, true, 0},
		{"http_401", false, fault{httpStatus: 401}, true, 0},
		{"http_404", false, fault{httpStatus: 404}, true, 0},
		{"http_413", false, fault{httpStatus: 413}, true, 0},
		{"grpc_unavailable", true, fault{code: codes.Unavailable}, false, 0},
		{"grpc_unavailable_retryinfo", true, fault{code: codes.Unavailable, retryDelay: 3 * time.Second}, false, 3 * time.Second},
		{"grpc_deadline", true, fault{code: codes.DeadlineExceeded}, false, 0},
		{"grpc_aborted", true, fault{code: codes.Aborted}, false, 0},
		{"grpc_canceled", true, fault{code: codes.Canceled}, false, 0},
		{"grpc_out_of_range", true, fault{code: codes.OutOfRange}, false, 0},
		{"grpc_data_loss", true, fault{code: codes.DataLoss}, false, 0},
		{"grpc_exhausted_retryinfo", true, fault{code: codes.ResourceExhausted, retryDelay: 5 * time.Second}, false, 5 * time.Second},
		{"grpc_exhausted", true, fault{code: codes.ResourceExhausted, message: "message too large"}, true, 0},
		{"grpc_invalid_argument", true, fault{code: codes.InvalidArgument, message: "invalid trace id"}, true, 0},
		{"grpc_permission_denied", true, fault{code: codes.PermissionDenied}, true, 0},
		{"grpc_unauthenticated", true, fault{code: codes.Unauthenticated}, true, 0},
		{"grpc_unimplemented", true, fault{code: codes.Unimplemented}, true, 0},
		{"grpc_internal", true, fault{code: codes.Internal}, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := newSink(t, tc.grpc)
			o, _ := newOut(t, sink.config()...)
			sink.inject(tc.f)
			c := plugintest.Chunk(plugintest.KV("seq", int64(1)))
			err := o.Flush(context.Background(), c)
			if err == nil {
				t.Fatal("flush answered OK although the receiver refused it")
			}
			if plugin.IsPermanent(err) != tc.permanent {
				t.Fatalf("permanent = %v, want %v: %v", plugin.IsPermanent(err), tc.permanent, err)
			}
			d, ok := plugin.ThrottleDelay(err)
			if tc.delay > 0 && (!ok || d != tc.delay) {
				t.Errorf("throttle delay = %v (%v), want %v", d, ok, tc.delay)
			}
			if tc.delay == 0 && ok {
				t.Errorf("unexpected throttle delay %v", d)
			}
			if tc.f.message != "" && !strings.Contains(err.Error(), tc.f.message) {
				t.Errorf("error %q lacks the receiver's message %q", err, tc.f.message)
			}
			if tc.permanent {
				if n := len(sink.seqs(t)); n != 0 {
					t.Errorf("receiver holds %d records after a refusal", n)
				}
				return
			}
			if err := o.Flush(context.Background(), c); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got := sink.seqs(t); len(got) != 1 || got[0] != 1 {
				t.Errorf("after the retry the receiver holds %v, want [1]", got)
			}
		})
	}
}

// TestBatchResume: batch_size cuts a chunk into requests; when one fails,
// the mesh's retry sends only the requests that did not go through.
func TestBatchResume(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			sink := newSink(t, tr.grpc)
			o, _ := newOut(t, sink.config(append(tr.extra, "batch_size 10")...)...)
			var recs []any
			for i := range 35 {
				recs = append(recs, plugintest.KV("seq", int64(i)))
			}
			c := plugintest.Chunk(recs...)
			c.ID = "batch-1"
			sink.inject(fault{}, fault{}, fault{httpStatus: 503, code: codes.Unavailable})
			if err := o.Flush(context.Background(), c); err == nil || plugin.IsPermanent(err) {
				t.Fatalf("flush with the third request refused = %v, want a retry", err)
			}
			if n := len(sink.seqs(t)); n != 20 {
				t.Fatalf("receiver holds %d records after two requests, want 20", n)
			}
			if err := o.Flush(context.Background(), c); err != nil {
				t.Fatalf("retry: %v", err)
			}
			got := sink.seqs(t)
			seen := map[int64]int{}
			for _, s := range got {
				seen[s]++
			}
			for i := range int64(35) {
				if seen[i] != 1 {
					t.Errorf("seq %d arrived %d times", i, seen[i])
				}
			}
			if len(got) != 35 {
				t.Errorf("receiver holds %d records, want 35", len(got))
			}
			for _, ld := range sink.storedLogs() {
				if n := ld.LogRecordCount(); n > 10 {
					t.Errorf("a request carried %d records, above batch_size 10", n)
				}
			}
			// A chunk delivered in full is forgotten: a later redelivery
			// (the mesh lost the ack) sends it again rather than nothing.
			o.mu.Lock()
			left := len(o.progress)
			o.mu.Unlock()
			if left != 0 {
				t.Errorf("%d chunks still remembered after delivery", left)
			}
		})
	}
}

// TestCompressAndPaths: zstd over HTTP, custom URIs.
func TestCompressAndPaths(t *testing.T) {
	sink := newSink(t, false)
	o, _ := newOut(t, sink.config("compress zstd", "logs_uri /custom/logs")...)
	if err := o.Flush(context.Background(), plugintest.Chunk(plugintest.KV("seq", int64(7)))); err != nil {
		t.Fatalf("flush: %v", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.paths) != 1 || sink.paths[0] != "/custom/logs" || sink.heads[0].Get("Content-Encoding") != "zstd" {
		t.Errorf("requests: paths %v, headers %v; want one zstd request to /custom/logs", sink.paths, sink.heads)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		lines []string
		key   string
	}{
		{[]string{"grpc on", "compress zstd"}, "compress"},
		{[]string{"grpc on", "format json"}, "format"},
		{[]string{"grpc on", "grpc_logs_uri v1/logs"}, "grpc_logs_uri"},
		{[]string{"logs_uri v1/logs"}, "logs_uri"},
		{[]string{"header X-Only"}, "header"},
		{[]string{"add_label env"}, "add_label"},
		{[]string{"port 0"}, "port"},
	} {
		_, err := newOutput(context.Background(), plugin.Settings{Name: "opentelemetry.0"}, plugintest.Props(Spec(), c.lines...))
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%v: error %v, want one naming %s", c.lines, err, c.key)
		}
	}
}

// TestBadChunk: a logs chunk that is not MessagePack, or a metrics chunk
// that is not OTLP when it must be decoded, is dead-lettered.
func TestBadChunk(t *testing.T) {
	sink := newSink(t, false)
	o, _ := newOut(t, sink.config("add_label env prod")...)
	for _, c := range []*chunk.Chunk{
		{Tag: "x", Type: chunk.Logs, Records: 1, Data: []byte{0x92, 0xc1}},
		{Tag: "x", Type: chunk.Metrics, Records: 1, Data: []byte{0xff, 0xff, 0xff}},
	} {
		if err := o.Flush(context.Background(), c); !plugin.IsPermanent(err) {
			t.Errorf("%s chunk: %v, want a permanent error", c.Type, err)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.hits != 0 {
		t.Errorf("receiver got %d requests for unreadable chunks", sink.hits)
	}
}

// TestGRPCPath: grpc_logs_uri is the method called; a receiver without it
// answers Unimplemented, which dead-letters the chunk.
func TestGRPCPath(t *testing.T) {
	sink := newSink(t, true)
	o, _ := newOut(t, sink.config("grpc_logs_uri /example.Logs/Push")...)
	err := o.Flush(context.Background(), plugintest.Chunk(plugintest.KV("seq", int64(1))))
	if !plugin.IsPermanent(err) || !strings.Contains(err.Error(), "/example.Logs/Push") || !strings.Contains(err.Error(), "Unimplemented") {
		t.Errorf("flush to a method the receiver lacks = %v, want a permanent Unimplemented naming the path", err)
	}
	if err := o.Flush(context.Background(), metricsChunk(t, sampleMetrics())); err != nil {
		t.Errorf("metrics on the default method: %v", err)
	}
}
