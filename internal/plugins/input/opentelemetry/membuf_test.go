package opentelemetry

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
	"github.com/floe-io/floe/services/ingest"
)

// logsWithBody is one log record whose body is s.
func logsWithBody(s string) plog.Logs {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(s)
	return ld
}

// Against the real ingest stage and JetStream: a request whose records
// reach the input's mem_buf_limit makes ingest pause the input, so OTLP/HTTP
// answers the next request 503 with Retry-After and OTLP/gRPC UNAVAILABLE
// straight away, instead of waiting in the write; once the records are
// stored the input resumes. FLOE_IN holds each accepted record once.
func TestMemBufLimitRefusesAtOnce(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	reg := telemetry.NewRegistry("test")
	p, err := Spec().NewInput(context.Background(), plugin.Settings{Name: "opentelemetry.0", Telemetry: reg},
		plugintest.Props(Spec(), "listen 127.0.0.1", "port 0", "grpc_port 0"))
	if err != nil {
		t.Fatal(err)
	}
	in := p.(*Input)
	// No FLOE_IN yet: the first request's records stay in flight (ingest
	// retries the publish), holding the 1-byte mem_buf_limit reached.
	svc := ingest.New(js, ingest.Config{Inputs: []ingest.Input{{Name: "opentelemetry.0", Tag: "otel", Input: in, MemBufLimit: 1}},
		Flush: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-in.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("input not ready")
	}
	addr, gaddr := in.Addrs()
	url := "http://" + addr + "/v1/logs"

	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, ctProto, bytes.NewReader(protoLogs(t, logsWithBody("req-1"))))
		if err != nil {
			first <- -1
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !in.paused.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the input was not paused after its mem_buf_limit was reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := post(t, url, ctProto, protoLogs(t, logsWithBody("req-2")))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("OTLP/HTTP at mem_buf_limit: %d, Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := decodeStatus(t, resp, body); st.Code != int32(codes.Unavailable) {
		t.Errorf("OTLP/HTTP status code %d, want UNAVAILABLE", st.Code)
	}
	const logsMethod = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	if err := rawCall(t, gaddr, logsMethod, protoLogs(t, logsWithBody("req-grpc"))); status.Code(err) != codes.Unavailable {
		t.Errorf("OTLP/gRPC at mem_buf_limit: %v, want UNAVAILABLE", err)
	}

	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-first:
		if code != 201 {
			t.Fatalf("first request answered %d once stored, want 201", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("first request not answered once FLOE_IN exists")
	}
	for in.paused.Load() {
		if time.Now().After(deadline.Add(15 * time.Second)) {
			t.Fatal("the input did not resume once its records were stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp, _ := post(t, url, ctProto, protoLogs(t, logsWithBody("req-3"))); resp.StatusCode != 201 {
		t.Fatalf("OTLP/HTTP after resume: %d, want 201", resp.StatusCode)
	}
	if err := rawCall(t, gaddr, logsMethod, protoLogs(t, logsWithBody("req-grpc-2"))); err != nil {
		t.Fatalf("OTLP/gRPC after resume: %v", err)
	}

	got := map[string]int{}
	st, err := js.Stream(ctx, jsx.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Data, err = chunk.Payload(m.Header, m.Data); err != nil {
			t.Fatal(err)
		}
		it := event.NewIter(m.Data)
		for it.Next() {
			raw := it.Event()
			if k := raw.Kind(); k == event.KindGroupStart || k == event.KindGroupEnd {
				continue
			}
			ev, err := raw.Decode()
			if err != nil {
				t.Fatal(err)
			}
			v, _ := ev.Body.Get("log")
			got[plugintest.Render(v)]++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{`"req-1"`: 1, `"req-3"`: 1, `"req-grpc-2"`: 1}
	if len(got) != len(want) || got[`"req-1"`] != 1 || got[`"req-3"`] != 1 || got[`"req-grpc-2"`] != 1 {
		t.Errorf("FLOE_IN holds %v, want %v", got, want)
	}
}

// A request whose first write reaches mem_buf_limit is still written whole
// and answered as soon as it is stored, not at the next flush: two records
// of 200 KB are two writes (maxLogBatch is 256 KiB), the first closes a
// 1-byte limit, and the flush interval is a minute.
func TestRequestReachingMemBufLimitIsWrittenWhole(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	p, err := Spec().NewInput(ctx, plugin.Settings{Name: "opentelemetry.0"},
		plugintest.Props(Spec(), "listen 127.0.0.1", "port 0", "grpc off"))
	if err != nil {
		t.Fatal(err)
	}
	in := p.(*Input)
	svc := ingest.New(js, ingest.Config{Inputs: []ingest.Input{{Name: "opentelemetry.0", Tag: "otel", Input: in, MemBufLimit: 1}},
		Flush: time.Minute})
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-in.Ready()
	addr, _ := in.Addrs()
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 2; i++ {
		lrs.AppendEmpty().Body().SetStr(strings.Repeat(string(rune('a'+i)), 200<<10))
	}
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/v1/logs", ctProto, bytes.NewReader(protoLogs(t, ld)))
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case code := <-answered:
		if code != 201 {
			t.Fatalf("status %d, want 201", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("not answered: the second write waited for the next flush")
	}
	st, err := js.Stream(ctx, jsx.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Data, err = chunk.Payload(m.Header, m.Data); err != nil {
			t.Fatal(err)
		}
		it := event.NewIter(m.Data)
		for it.Next() {
			if k := it.Event().Kind(); k != event.KindGroupStart && k != event.KindGroupEnd {
				records++
			}
		}
	}
	if records != 2 {
		t.Errorf("FLOE_IN holds %d records, want the 2 sent, once", records)
	}
}
