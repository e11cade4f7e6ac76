package opentelemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

// signalWriter is plugintest.Writer plus WriteSignal, as ingest's writer.
type signalWriter struct {
	plugintest.Writer
	mu      sync.Mutex
	signals []signalWrite
	fail    error // receipts resolve with this error when set
}

type signalWrite struct {
	signal, tag string
	data        []byte
	records     int
}

type failedReceipt struct{ err error }

func (r failedReceipt) Done() <-chan struct{} { c := make(chan struct{}); close(c); return c }
func (r failedReceipt) Err() error            { return r.err }

func (w *signalWriter) Write(ctx context.Context, tag string, data []byte, records int) (plugin.Receipt, error) {
	r, err := w.Writer.Write(ctx, tag, data, records)
	if w.fail != nil {
		return failedReceipt{w.fail}, err
	}
	return r, err
}

func (w *signalWriter) WriteSignal(ctx context.Context, signal, tag string, data []byte, records int) (plugin.Receipt, error) {
	w.mu.Lock()
	w.signals = append(w.signals, signalWrite{signal, tag, bytes.Clone(data), records})
	w.mu.Unlock()
	if w.fail != nil {
		return failedReceipt{w.fail}, nil
	}
	return w.Writer.Write(ctx, "", nil, 0)
}

func (w *signalWriter) signalWrites() []signalWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]signalWrite(nil), w.signals...)
}

// start runs an input on 127.0.0.1 ports chosen by the system.
func start(t *testing.T, w plugin.Writer, lines ...string) (*Input, string, string, *telemetry.NetInputMetrics) {
	t.Helper()
	reg := telemetry.NewRegistry("test")
	props := plugintest.Props(Spec(), append([]string{"listen 127.0.0.1", "port 0", "grpc_port 0"}, lines...)...)
	p, err := Spec().NewInput(context.Background(), plugin.Settings{Name: "opentelemetry.0", Telemetry: reg}, props)
	if err != nil {
		t.Fatal(err)
	}
	in := p.(*Input)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-in.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	h, g := in.Addrs()
	return in, h, g, reg.NetInput("opentelemetry.0")
}

func post(t *testing.T, url, ct string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func sampleLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "svc")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("scope")
	for i := 0; i < n; i++ {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(1700000000e9 + int64(i)))
		lr.Body().SetStr("line " + string(rune('a'+i%26)))
		lr.Attributes().PutInt("i", int64(i))
	}
	return ld
}

func protoLogs(t *testing.T, ld plog.Logs) []byte {
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// records decodes what the input wrote: every record's "log" body in order,
// checking that each write is whole groups.
func records(t *testing.T, w *signalWriter) (tags []string, bodies []string) {
	t.Helper()
	w.Mu.Lock()
	writes := append([]plugintest.Write(nil), w.Writes...)
	w.Mu.Unlock()
	for _, wr := range writes {
		if wr.Data == nil {
			continue // a signal write's receipt
		}
		tags = append(tags, wr.Tag)
		depth, n := 0, 0
		it := event.NewIter(wr.Data)
		for it.Next() {
			raw := it.Event()
			switch raw.Kind() {
			case event.KindGroupStart:
				depth++
				continue
			case event.KindGroupEnd:
				depth--
				continue
			}
			ev, err := raw.Decode()
			if err != nil {
				t.Fatal(err)
			}
			v, _ := ev.Body.Get("log")
			bodies = append(bodies, plugintest.Render(v))
			n++
		}
		if it.Err() != nil || depth != 0 || n != wr.Records {
			t.Fatalf("write: err %v, depth %d, %d records (says %d)", it.Err(), depth, n, wr.Records)
		}
	}
	return tags, bodies
}

// allEvents decodes every event written, group markers included.
func allEvents(t *testing.T, w *signalWriter) []event.Event {
	t.Helper()
	w.Mu.Lock()
	defer w.Mu.Unlock()
	var out []event.Event
	for _, wr := range w.Writes {
		it := event.NewIter(wr.Data)
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	return out
}

func TestHTTPProtobufAndJSON(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, m := start(t, w)
	resp, body := post(t, "http://"+addr+"/v1/logs", "application/x-protobuf", protoLogs(t, sampleLogs(2)))
	if resp.StatusCode != 201 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	if err := plogotlp.NewExportResponse().UnmarshalProto(body); err != nil {
		t.Errorf("response is not an ExportLogsServiceResponse: %v", err)
	}

	js := `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"j"}}]},
	  "scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1700000000000000005","severityNumber":9,
	  "body":{"stringValue":"from json"},"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718"}]}]}]}`
	resp, body = post(t, "http://"+addr+"/v1/logs", "application/json; charset=utf-8", []byte(js))
	if resp.StatusCode != 201 || resp.Header.Get("Content-Type") != "application/json" || string(body) != `{"partialSuccess":{}}` {
		t.Fatalf("json: status %d, type %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	tags, bodies := records(t, w)
	if strings.Join(bodies, ",") != `"line a","line b","from json"` {
		t.Errorf("bodies = %v", bodies)
	}
	for _, tag := range tags {
		if tag != "v1_logs" {
			t.Errorf("tag %q, want v1_logs", tag)
		}
	}
	evs := allEvents(t, w)
	last := evs[len(evs)-2] // before the group end
	otlp, _ := last.Meta.Get("otlp")
	if got := plugintest.Render(otlp); got != `{"timestamp":1700000000000000005,"severity_number":9,`+
		`"trace_id":b"\x01\x02\x03\x04\x05\x06\a\b\t\n\v\f\r\x0e\x0f\x10","span_id":b"\x11\x12\x13\x14\x15\x16\x17\x18","trace_flags":0}` {
		t.Errorf("hex ids from JSON: %s", got)
	}
	if m.Refused.Load() != 0 || m.ConnectionsTotal.Load() == 0 {
		t.Errorf("refusals %d connections %d", m.Refused.Load(), m.ConnectionsTotal.Load())
	}
}

func TestHTTPGzipAndOptions(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, _ := start(t, w, "tag_from_uri off", "successful_response_code 200", "logs_body_key message")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(protoLogs(t, sampleLogs(3)))
	_ = zw.Close()
	resp, body := post(t, "http://"+addr+"/v1/logs", "application/x-protobuf", gz.Bytes(), "Content-Encoding", "gzip")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	evs := allEvents(t, w)
	if len(evs) != 5 {
		t.Fatalf("%d events, want a group of 3", len(evs))
	}
	if got := plugintest.Render(evs[1].Body); got != `{"message":"line a"}` {
		t.Errorf("logs_body_key: %s", got)
	}
	if w.Writes[0].Tag != "" {
		t.Errorf("tag_from_uri off must leave the tag to ingest (tag key): got %q", w.Writes[0].Tag)
	}
}

func TestHTTP204(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, _ := start(t, w, "successful_response_code 204")
	resp, body := post(t, "http://"+addr+"/v1/logs", "application/x-protobuf", protoLogs(t, sampleLogs(1)))
	if resp.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func decodeStatus(t *testing.T, resp *http.Response, body []byte) *status.Status {
	t.Helper()
	st := &status.Status{}
	var err error
	if resp.Header.Get("Content-Type") == "application/json" {
		err = protojson.Unmarshal(body, st)
	} else {
		err = proto.Unmarshal(body, st)
	}
	if err != nil {
		t.Fatalf("error body is not a google.rpc.Status: %v (%q)", err, body)
	}
	return st
}

func TestHTTPBadRequests(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, m := start(t, w, "buffer_max_size 2000")
	base := "http://" + addr

	resp, body := post(t, base+"/v1/logs", "application/x-protobuf", []byte{0x0a, 0xff, 0xff, 0xff})
	if resp.StatusCode != 400 {
		t.Fatalf("garbage protobuf: %d", resp.StatusCode)
	}
	if st := decodeStatus(t, resp, body); st.Code != 3 || !strings.Contains(st.Message, "not an OTLP protobuf message") {
		t.Errorf("status = %v", st)
	}
	resp, body = post(t, base+"/v1/traces", "application/json", []byte(`{"resourceSpans":[{`))
	if st := decodeStatus(t, resp, body); resp.StatusCode != 400 || !strings.Contains(st.Message, "JSON") {
		t.Errorf("garbage JSON: %d %v", resp.StatusCode, st)
	}
	resp, body = post(t, base+"/v1/logs", "application/x-protobuf", []byte("not gzip"), "Content-Encoding", "gzip")
	if st := decodeStatus(t, resp, body); resp.StatusCode != 400 || !strings.Contains(st.Message, "gzip") {
		t.Errorf("bad gzip: %d %v", resp.StatusCode, st)
	}

	// 413: too large as sent, and too large once decompressed.
	big := protoLogs(t, sampleLogs(200))
	resp, body = post(t, base+"/v1/logs", "application/x-protobuf", big)
	if st := decodeStatus(t, resp, body); resp.StatusCode != 413 || !strings.Contains(st.Message, "buffer_max_size") {
		t.Errorf("big body: %d %v", resp.StatusCode, st)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(make([]byte, 100000))
	_ = zw.Close()
	resp, _ = post(t, base+"/v1/logs", "application/x-protobuf", gz.Bytes(), "Content-Encoding", "gzip")
	if resp.StatusCode != 413 {
		t.Errorf("gzip bomb: %d", resp.StatusCode)
	}

	// Unknown path, method, content type.
	resp, _ = post(t, base+"/v1/other", "application/x-protobuf", nil)
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	r, err := http.Get(base + "/v1/logs")
	if err != nil || r.StatusCode != 405 {
		t.Errorf("GET: %v %v", err, r.StatusCode)
	}
	resp, _ = post(t, base+"/v1/logs", "text/plain", []byte("x"))
	if resp.StatusCode != 415 {
		t.Errorf("text/plain: %d", resp.StatusCode)
	}
	if w.Count() != 0 {
		t.Errorf("%d writes from refused requests", w.Count())
	}
	if got := m.Refused.Load(); got != 6 {
		t.Errorf("refusals = %d, want 6", got)
	}
	// An empty request is a success that writes nothing.
	resp, _ = post(t, base+"/v1/logs", "application/x-protobuf", nil)
	if resp.StatusCode != 201 || w.Count() != 0 {
		t.Errorf("empty request: %d, %d writes", resp.StatusCode, w.Count())
	}
}

func TestHTTPPausedAndFailedStore(t *testing.T) {
	w := &signalWriter{}
	in, addr, _, m := start(t, w)
	in.Pause()
	resp, body := post(t, "http://"+addr+"/v1/logs", "application/x-protobuf", protoLogs(t, sampleLogs(1)))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("paused: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := decodeStatus(t, resp, body); st.Code != 14 {
		t.Errorf("status code %d, want UNAVAILABLE", st.Code)
	}
	if w.Count() != 0 {
		t.Error("a paused input wrote")
	}
	in.Resume()
	resp, _ = post(t, "http://"+addr+"/v1/logs", "application/x-protobuf", protoLogs(t, sampleLogs(1)))
	if resp.StatusCode != 201 {
		t.Fatalf("after resume: %d", resp.StatusCode)
	}
	w.fail = errors.New("stream full")
	resp, body = post(t, "http://"+addr+"/v1/logs", "application/x-protobuf", protoLogs(t, sampleLogs(1)))
	if st := decodeStatus(t, resp, body); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(st.Message, "stream full") {
		t.Errorf("failed receipt: %d %v", resp.StatusCode, st)
	}
	if m.Refused.Load() != 2 {
		t.Errorf("refusals %d", m.Refused.Load())
	}
}

// TestAnswerAfterReceipt: the client's answer comes only once every record
// of its request is stored.
func TestAnswerAfterReceipt(t *testing.T) {
	w := &signalWriter{}
	w.Delay = 200 * time.Millisecond
	_, addr, _, _ := start(t, w)
	for i := 0; i < 3; i++ {
		resp, _ := post(t, "http://"+addr+"/v1/logs", "application/x-protobuf", protoLogs(t, sampleLogs(4)))
		if resp.StatusCode != 201 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		w.Mu.Lock()
		stored, flushes := w.Stored, w.Flushes
		w.Mu.Unlock()
		if stored != 4*(i+1) {
			t.Fatalf("answered with %d of %d records stored", stored, 4*(i+1))
		}
		if flushes < i+1 {
			t.Errorf("the input did not ask for its chunk to be closed (%d flushes)", flushes)
		}
	}
}

func TestHTTPMetricsAndTraces(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, _ := start(t, w)
	md := pmetric.NewMetrics()
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("queue.depth")
	for i := 0; i < 3; i++ {
		g.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(int64(i))
	}
	g.Gauge().DataPoints().AppendEmpty().SetIntValue(9)
	mb, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	resp, _ := post(t, "http://"+addr+"/v1/metrics", "application/x-protobuf", mb)
	if resp.StatusCode != 201 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	tj := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718","name":"op"}]}]}]}`
	resp, _ = post(t, "http://"+addr+"/v1/traces", "application/json", []byte(tj))
	if resp.StatusCode != 201 {
		t.Fatalf("traces: %d", resp.StatusCode)
	}
	sw := w.signalWrites()
	if len(sw) != 2 {
		t.Fatalf("%d signal writes", len(sw))
	}
	if sw[0].signal != chunk.Metrics || sw[0].tag != "v1_metrics" || sw[0].records != 2 || !bytes.Equal(sw[0].data, mb) {
		t.Errorf("metrics write: %s %s %d records", sw[0].signal, sw[0].tag, sw[0].records)
	}
	tr := ptraceotlp.NewExportRequest()
	if err := tr.UnmarshalProto(sw[1].data); err != nil {
		t.Fatalf("traces chunk is not OTLP protobuf: %v", err)
	}
	span := tr.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if sw[1].signal != chunk.Traces || sw[1].tag != "v1_traces" || sw[1].records != 1 || span.Name() != "op" ||
		span.TraceID() != [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16} {
		t.Errorf("traces write: %s %s %d, span %q %v", sw[1].signal, sw[1].tag, sw[1].records, span.Name(), span.TraceID())
	}
}

func TestSplitSignals(t *testing.T) {
	old := maxSignal
	maxSignal = 2000
	defer func() { maxSignal = old }()
	md := pmetric.NewMetrics()
	total := 0
	for r := 0; r < 2; r++ {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutInt("r", int64(r))
		for s := 0; s < 2; s++ {
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("s")
			for i := 0; i < 40; i++ {
				m := sm.Metrics().AppendEmpty()
				m.SetName(strings.Repeat("m", 20))
				m.SetEmptySum().DataPoints().AppendEmpty().SetIntValue(int64(i))
				total++
			}
		}
	}
	parts := metricParts(pmetricotlp.NewExportRequestFromMetrics(md), nil, true)
	got := 0
	seen := map[string]int{}
	for _, p := range parts {
		if len(p.data) > maxSignal {
			t.Errorf("part of %d bytes", len(p.data))
		}
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(p.data); err != nil {
			t.Fatal(err)
		}
		if req.Metrics().DataPointCount() != p.records {
			t.Errorf("part says %d, holds %d", p.records, req.Metrics().DataPointCount())
		}
		rm := req.Metrics().ResourceMetrics().At(0)
		r, _ := rm.Resource().Attributes().Get("r")
		for i := 0; i < rm.ScopeMetrics().Len(); i++ {
			ms := rm.ScopeMetrics().At(i).Metrics()
			for j := 0; j < ms.Len(); j++ {
				seen[r.AsString()+"/"+string(rune('0'+ms.At(j).Sum().DataPoints().At(0).IntValue()))]++
			}
		}
		got += p.records
	}
	if got != total || len(parts) < 4 {
		t.Errorf("%d points in %d parts, want %d", got, len(parts), total)
	}
	for k, n := range seen {
		if n != 2 { // two scopes per resource hold the same values
			t.Errorf("%s seen %d times", k, n)
		}
	}
}

func TestUriTag(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/logs": "v1_logs", "/v1/metrics": "v1_metrics",
		"/opentelemetry.proto.collector.logs.v1.LogsService/Export": "opentelemetry.proto.collector.logs.v1.LogsService_Export",
		"/a b/ü": "a_b___",
	} {
		if got := uriTag(in); got != want {
			t.Errorf("uriTag(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestShutdownRefusesUnstored: a request whose data is not stored when the
// input stops is answered 503 (the client retries) and Run returns only when
// no request can write any more.
func TestShutdownRefusesUnstored(t *testing.T) {
	old := shutdownGrace
	shutdownGrace = 300 * time.Millisecond
	defer func() { shutdownGrace = old }()
	w := &signalWriter{}
	w.Delay = time.Hour // never stored in this test
	w.Notify = make(chan struct{}, 1)
	props := plugintest.Props(Spec(), "listen 127.0.0.1", "port 0", "grpc off")
	p, err := Spec().NewInput(context.Background(), plugin.Settings{Name: "opentelemetry.0"}, props)
	if err != nil {
		t.Fatal(err)
	}
	in := p.(*Input)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	<-in.Ready()
	addr, _ := in.Addrs()
	answer := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/v1/logs", "application/x-protobuf", bytes.NewReader(protoLogs(t, sampleLogs(2))))
		if err != nil {
			answer <- -1
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	<-w.Notify // written, waiting for its receipt
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if code := <-answer; code != 503 {
		t.Errorf("unstored request answered %d, want 503", code)
	}
}
