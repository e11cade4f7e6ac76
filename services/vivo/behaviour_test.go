package vivo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/jsx"
	vivoout "github.com/floe-io/floe/internal/plugins/output/vivo"
)

func TestCORS(t *testing.T) {
	e := newEnv(t, "http_cors_allow_origin", "*")
	e.publishLogs("app", `{"a":1}`)
	check := func(path string, expose bool) {
		t.Helper()
		head, _ := e.raw("GET", path)
		lower := strings.HasPrefix(path, "/api/")
		name := func(s string) string {
			if lower {
				return strings.ToLower(s)
			}
			return s
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Headers": "Origin, X-Requested-With, Content-Type, Accept",
		}
		if expose {
			want["Access-Control-Expose-Headers"] = "vivo-stream-start-id, vivo-stream-end-id, vivo-stream-next-id"
		}
		for k, v := range want {
			if got, ok := rawHeader(head, name(k)); !ok || got != v {
				t.Errorf("%s: %s = %q (present %v), want %q", path, name(k), got, ok, v)
			}
		}
		if !expose {
			if _, ok := rawHeader(head, name("Access-Control-Expose-Headers")); ok {
				t.Errorf("%s: expose header on a non-stream endpoint", path)
			}
		}
	}
	for _, p := range []string{"/api/v1/logs", "/api/v1/metrics", "/api/v1/traces", "/api/v1/logs?from=9", "/logs", "/traces?limit=1"} {
		check(p, true)
	}
	check("/api/v1/internal/metrics", false)
	for _, p := range []string{"/", "/nope"} {
		head, _ := e.raw("GET", p)
		for _, n := range headerNames(head) {
			if strings.HasPrefix(strings.ToLower(n), "access-control") {
				t.Errorf("%s has %s", p, n)
			}
		}
	}
	// A preflight is answered, and never reads (or empties) a stream.
	req, _ := http.NewRequest(http.MethodOptions, e.url+"/api/v1/logs", nil)
	req.Header.Set("Origin", "https://x.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}

	// Without http_cors_allow_origin: no CORS headers at all.
	plain := newEnv(t)
	plain.publishLogs("app", `{"a":1}`)
	for _, p := range []string{"/api/v1/logs", "/logs", "/api/v1/internal/metrics"} {
		head, _ := plain.raw("GET", p)
		for _, n := range headerNames(head) {
			if strings.HasPrefix(strings.ToLower(n), "access-control") {
				t.Errorf("no origin configured, yet %s has %s", p, n)
			}
		}
	}
}

// empty_stream_on_read clears the entire stream after a read, also the
// chunks from/to/limit left out; ids go on growing.
func TestEmptyStreamOnRead(t *testing.T) {
	for _, path := range []string{"/logs", "/api/v1/logs"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, "empty_stream_on_read", "on")
			for i := range 5 {
				e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
			}
			res := e.get(path + "?from=1&limit=2")
			if s, end, next := res.ids(); s != "1" || end != "2" || next != "5" {
				t.Fatalf("first read: %s %s %s", s, end, next)
			}
			res = e.get(path)
			if s, _, next := res.ids(); s != "" || res.body != "" || next != "5" {
				t.Fatalf("second read not empty: start %q next %q body %q", s, next, res.body)
			}
			e.publishLogs("app", `{"n":5}`)
			// HEAD does not consume.
			req, _ := http.NewRequest(http.MethodHead, e.url+path, nil)
			hr, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			hr.Body.Close()
			res = e.get(path)
			if s, end, next := res.ids(); s != "5" || end != "5" || next != "6" {
				t.Fatalf("after a new chunk: %s %s %s", s, end, next)
			}
			// An empty selection clears the stream too (upstream clears after
			// building any response).
			e.publishLogs("app", `{"n":6}`)
			if res := e.get(path + "?from=100"); res.body != "" {
				t.Fatal("from=100 returned chunks")
			}
			if res := e.get(path); res.body != "" {
				t.Fatalf("stream not cleared by an empty read: %q", res.body)
			}
		})
	}
}

// Chunks are kept up to stream_queue_size bytes; the oldest go first.
func TestEvictionAtStreamQueueSize(t *testing.T) {
	e := newEnv(t, "stream_queue_size", "20K") // 20,000 bytes, decimal
	if got := e.props.Size("stream_queue_size"); got != 20000 {
		t.Fatalf("stream_queue_size 20K = %d", got)
	}
	body := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 900))
	const total = 100
	for i := range total {
		e.publishLogs("app", body[:len(body)-1]+fmt.Sprintf(`,"n":%d}`, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, jsx.VivoStreamName(testID, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	if info.State.Bytes > 20000 {
		t.Errorf("stream holds %d bytes > 20000", info.State.Bytes)
	}
	res := e.get("/api/v1/logs")
	start, end, next := res.ids()
	if next != "100" || end != "99" {
		t.Fatalf("end %s next %s", end, next)
	}
	s := atoi(t, start)
	if s < 70 || s > 90 {
		t.Errorf("first kept id %d: expected about 20 chunks of ~1 KB kept", s)
	}
	got := lines(res.body)
	if len(got) != 100-s {
		t.Errorf("%d chunks for ids %d..99", len(got), s)
	}
	if !strings.Contains(got[len(got)-1], `"n":99`) {
		t.Errorf("last chunk: %s", got[len(got)-1])
	}
	// A chunk larger than the whole queue: upstream keeps it alone;
	// JetStream stores it and its byte limit evicts it with the rest, so
	// the stream is empty and the id used (the router is not blocked).
	huge := strings.Repeat("h", 25000)
	e.publishLogs("app", `{"pad":"`+huge+`"}`)
	res = e.get("/api/v1/logs")
	if s, _, next := res.ids(); s != "" || next != "101" || res.body != "" {
		t.Errorf("after a chunk larger than stream_queue_size: start %q next %q", s, next)
	}
	e.publishLogs("app", `{"n":101}`)
	if s, _, _ := e.get("/api/v1/logs").ids(); s != "101" {
		t.Errorf("next chunk id %q, want 101", s)
	}
}

func TestTagFilter(t *testing.T) {
	e := newEnv(t)
	tags := []string{"app.a", "other", "app.b.c", "app", "xapp.a", "app.a"}
	for i, tg := range tags {
		e.publishLogs(tg, fmt.Sprintf(`{"n":%d}`, i))
	}
	cases := []struct {
		query string
		ids   []int
	}{
		{"?tag=app.*", []int{0, 2, 5}},
		{"?tag=app.a", []int{0, 5}},
		{"?tag=*", []int{0, 1, 2, 3, 4, 5}},
		{"?tag=app*", []int{0, 2, 3, 5}},
		{"?tag=*.a", []int{0, 4, 5}},
		{"?tag=nope", nil},
		{"?tag=app.*&limit=2", []int{0, 2}},
		{"?tag=app.*&from=1", []int{2, 5}},
		{"?tag=app.*&from=1&to=4", []int{2}},
	}
	for _, c := range cases {
		for _, api := range []string{"/api/v1/logs", "/logs"} {
			res := e.get(api + c.query)
			var ids []int
			for _, l := range lines(res.body) {
				var n int
				i := strings.LastIndex(l, `"n":`)
				fmt.Sscanf(l[i+4:], "%d", &n)
				ids = append(ids, n)
			}
			if !slices.Equal(ids, c.ids) {
				t.Errorf("%s%s: ids %v want %v", api, c.query, ids, c.ids)
			}
			start, end, _ := res.ids()
			if len(c.ids) == 0 {
				if start != "" || end != "" {
					t.Errorf("%s%s: range headers on an empty result", api, c.query)
				}
				continue
			}
			if start != fmt.Sprint(c.ids[0]) || end != fmt.Sprint(c.ids[len(c.ids)-1]) {
				t.Errorf("%s%s: start %s end %s, want %d %d", api, c.query, start, end, c.ids[0], c.ids[len(c.ids)-1])
			}
		}
	}
}

func metricsPayload(t testing.TB, name string, v float64) ([]byte, int) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "shop")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.Timestamp(1679416945459254000))
	dp.SetDoubleValue(v)
	dp.Attributes().PutStr("cpu", "0")
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b, 1
}

func tracesPayload(t testing.TB, name string) ([]byte, int) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName(name)
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetStartTimestamp(pcommon.Timestamp(1679416945459254000))
	sp.SetEndTimestamp(pcommon.Timestamp(1679416945469254000))
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b, 1
}

func TestMetricsAndTracesAsOTLPJSON(t *testing.T) {
	e := newEnv(t)
	m, n := metricsPayload(t, "cpu_seconds", 1.5)
	e.publish(chunk.Metrics, "node.metrics", "node_exporter_metrics.0", m, n)
	e.publish(chunk.Metrics, "bad", "x.0", []byte{0xff, 0x01}, 1) // not OTLP: skipped, logged
	m, n = metricsPayload(t, "mem_bytes", 42)
	e.publish(chunk.Metrics, "node.metrics", "node_exporter_metrics.0", m, n)
	tr, n := tracesPayload(t, "GET /cart")
	e.publish(chunk.Traces, "otel.traces", "opentelemetry.0", tr, n)
	for _, p := range []string{"/metrics", "/api/v1/metrics"} {
		res := e.get(p)
		got := lines(res.body)
		if start, end, _ := res.ids(); start != "0" || end != "2" || len(got) != 2 {
			t.Fatalf("%s: ids %s..%s, %d lines: %s", p, start, end, len(got), res.body)
		}
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalJSON([]byte(got[1])); err != nil {
			t.Fatalf("%s: not OTLP JSON: %v: %s", p, err, got[1])
		}
		if name := req.Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name(); name != "mem_bytes" {
			t.Errorf("%s: metric %q", p, name)
		}
		if !strings.HasPrefix(got[0], `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]}`) {
			t.Errorf("%s: %s", p, got[0])
		}
	}
	for _, p := range []string{"/traces", "/api/v1/traces?tag=otel.*"} {
		res := e.get(p)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalJSON([]byte(strings.TrimSpace(res.body))); err != nil {
			t.Fatalf("%s: %v: %s", p, err, res.body)
		}
		sp := req.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		if sp.Name() != "GET /cart" || sp.TraceID().String() != "0102030405060708090a0b0c0d0e0f10" {
			t.Errorf("%s: span %s %s", p, sp.Name(), sp.TraceID())
		}
		if !json.Valid([]byte(res.body)) {
			t.Error("invalid JSON")
		}
	}
}

// Nothing a client sends makes the stage answer 500.
func TestBadInputNever500(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
	}
	queries := []string{
		"?from=", "?to=", "?limit=", "?from=-", "?from=--1", "?from=1e3", "?from=0x10", "?to=%00", "?limit=%ff%fe",
		"?from=18446744073709551616", "?to=-9223372036854775808", "?limit=-9223372036854775808",
		"?from=9223372036854775806&to=9223372036854775807", "?tag=", "?tag=%2A", "?tag=a**b", "?tag=%ZZ",
		"?follow=maybe", "?from=1&from=2&to=a&to=1", "?" + strings.Repeat("from=1&", 2000), "?;;;&&&==",
		"?from=\u00e9", "?limit=1&limit=-1",
	}
	for _, api := range []string{"/logs", "/api/v1/logs", "/metrics", "/api/v1/traces"} {
		for _, q := range queries {
			res := e.get(api + q)
			if res.status != http.StatusOK {
				t.Errorf("%s%s: status %d", api, q, res.status)
			}
		}
	}
	for _, p := range []string{"/logs/x", "/api", "/api/v1/", "/%2e%2e/logs", "/ui/../logs"} {
		if res := e.get(p); res.status >= 500 {
			t.Errorf("%s: status %d", p, res.status)
		}
	}
}

func TestNewRefusesBadExporters(t *testing.T) {
	srv := newEnv(t)
	p1 := exporterProps(t, "port", "2999")
	p2 := exporterProps(t, "port", "2999")
	if _, err := New(srv.js, Config{Exporters: []Exporter{{Name: "a", ID: "a", Props: p1}, {Name: "b", ID: "b", Props: p2}}}); err == nil ||
		!strings.Contains(err.Error(), "both listen on") {
		t.Errorf("same address twice: %v", err)
	}
	if _, err := New(srv.js, Config{Exporters: []Exporter{{Name: "a", ID: "a", Props: exporterProps(t, "port", "70000")}}}); err == nil {
		t.Error("port 70000 accepted")
	}
	if _, err := New(srv.js, Config{Exporters: []Exporter{{Name: "a", ID: "a", Props: exporterProps(t, "tls", "on")}}}); err == nil {
		t.Error("tls accepted")
	}
	// a port in use fails Run, not New
	s, err := New(srv.js, Config{Exporters: []Exporter{{Name: "a", ID: "a", Props: exporterProps(t, "port", strings.Split(srv.svc.Addrs()[0], ":")[1])}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a busy port: %v", err)
	}
}

func TestKeysAndDefaults(t *testing.T) {
	p := exporterProps(t)
	set, err := vivoout.Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	if !(set.StreamQueueSize == 20000000 && !set.EmptyStreamOnRead && set.CORSAllowOrigin == "" && set.HTTP2) {
		t.Errorf("defaults: %+v", set)
	}
	spec := vivoout.Spec()
	for _, k := range []struct{ name, def string }{{"host", "0.0.0.0"}, {"port", "2025"}, {"stream_queue_size", "20M"}, {"empty_stream_on_read", "off"}, {"http_cors_allow_origin", ""}} {
		key, ok := spec.Key(k.name)
		if !ok || key.Default != k.def {
			t.Errorf("key %s: %v default %q", k.name, ok, key.Default)
		}
	}
	if spec.ServedBy != "vivo" || spec.NewOutput != nil {
		t.Error("spec is not served by the vivo stage")
	}
}
