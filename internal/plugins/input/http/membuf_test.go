package http

import (
	"context"
	"log/slog"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
	"github.com/floe-io/floe/services/ingest"
)

// Against the real ingest stage and JetStream: a request whose records
// reach the input's mem_buf_limit makes ingest pause the input, so the next
// request is answered 503 with Retry-After straight away instead of being
// held for the block timeout; once the records are stored the input
// resumes and accepts again. FLOE_IN holds each accepted record once and
// nothing of the refused request.
func TestMemBufLimitAnswers503AtOnce(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	reg := telemetry.NewRegistry("test")
	in, err := New(context.Background(), plugin.Settings{Name: "http.0", Telemetry: reg, Logger: slog.New(slog.DiscardHandler)},
		plugintest.Props(Spec(), "listen 127.0.0.1", "port 0"))
	if err != nil {
		t.Fatal(err)
	}
	h := in.(*HTTP)
	// A write held back would be refused only after this long: a 503
	// well before it comes from the pause, not from the held write.
	h.block = time.Minute
	// No FLOE_IN yet: the first request's records stay in flight (ingest
	// retries the publish), holding the 1-byte mem_buf_limit reached.
	svc := ingest.New(js, ingest.Config{Inputs: []ingest.Input{{Name: "http.0", Tag: "http.0", Input: h, MemBufLimit: 1}},
		Flush: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := h.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/app"

	first := make(chan int, 1)
	go func() {
		resp, err := nethttp.Post(url, "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			first <- -1
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !h.IsPaused() {
		if time.Now().After(deadline) {
			t.Fatal("the input was not paused after its mem_buf_limit was reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	resp := post(t, url, `{"n":2}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("at mem_buf_limit: status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Before, the write was held for the block timeout and only then refused.
	if el := time.Since(start); el >= h.block/2 {
		t.Errorf("refused after %s, as if held for the block timeout", el)
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
	for h.IsPaused() {
		if time.Now().After(deadline.Add(15 * time.Second)) {
			t.Fatal("the input did not resume once its records were stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp := post(t, url, `{"n":3}`); resp.StatusCode != 201 {
		t.Fatalf("after resume: status %d, want 201", resp.StatusCode)
	}
	got := storedValues(t, js, "n")
	if len(got) != 2 || got[1] != 1 || got[3] != 1 {
		t.Errorf("FLOE_IN holds n → copies %v, want 1 and 3 once each", got)
	}
}

// storedValues counts, over every event in FLOE_IN, the values of key.
func storedValues(t *testing.T, js jetstream.JetStream, key string) map[int64]int {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, jsx.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]int{}
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
			ev, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			v, _ := ev.Body.Get(key)
			n, ok := v.(int64)
			if !ok {
				t.Fatalf("event %s has %s=%#v", plugintest.Render(ev.Body), key, v)
			}
			out[n]++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A request admitted before the pause is written whole even when its own
// first records reach mem_buf_limit: refusing it half-written would store
// part of it and make the client resend all of it. Three runs of tags
// (a, b, a) are three writes; the first closes a 1-byte limit.
func TestRequestReachingMemBufLimitIsWrittenWhole(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	in, err := New(ctx, plugin.Settings{Name: "http.0", Logger: slog.New(slog.DiscardHandler)},
		plugintest.Props(Spec(), "listen 127.0.0.1", "port 0", "tag_key kind"))
	if err != nil {
		t.Fatal(err)
	}
	h := in.(*HTTP)
	// A flush interval far longer than the block timeout: only the input
	// sealing its own writes lets the limit free in time.
	svc := ingest.New(js, ingest.Config{Inputs: []ingest.Input{{Name: "http.0", Tag: "http.0", Input: h, MemBufLimit: 1}},
		Flush: time.Minute})
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := h.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	resp := post(t, "http://"+addr+"/", `[{"kind":"a","n":1},{"kind":"b","n":2},{"kind":"a","n":3}]`)
	if resp.StatusCode != 201 {
		t.Fatalf("status %d, want 201", resp.StatusCode)
	}
	got := storedValues(t, js, "n")
	if len(got) != 3 || got[1] != 1 || got[2] != 1 || got[3] != 1 {
		t.Errorf("FLOE_IN holds n → copies %v, want 1, 2 and 3 once each", got)
	}
}
