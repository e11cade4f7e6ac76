package jsx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

func setup(t *testing.T, topo Topology) jetstream.JetStream {
	t.Helper()
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureTopology(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	return js
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnsureTopologyIsIdempotent(t *testing.T) {
	topo := Topology{Outputs: []OutputStream{{ID: "stdout_0", MaxBytes: 1 << 20}}}
	js := setup(t, topo)
	if err := EnsureTopology(context.Background(), js, topo); err != nil {
		t.Fatalf("second declaration: %v", err)
	}
	for _, name := range []string{StreamIn, StreamFiltered, StreamDLQ, "FLOE_OUT_stdout_0"} {
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if st.CachedInfo().Config.Duplicates == 0 {
			t.Errorf("stream %s has no dedup window", name)
		}
	}
	st, _ := js.Stream(context.Background(), "FLOE_OUT_stdout_0")
	if got := st.CachedInfo().Config.MaxBytes; got != 1<<20 {
		t.Errorf("output stream MaxBytes = %d, want %d", got, 1<<20)
	}
}

func TestPublishDeduplicatesByChunkID(t *testing.T) {
	js := setup(t, Topology{})
	pub := NewPublisher(js)
	c := &chunk.Chunk{ID: "run-1", Tag: "app.x", Records: 1, Data: []byte{0x80}}
	for i := 0; i < 3; i++ {
		if err := pub.Publish(context.Background(), InSubject(c.Tag), c); err != nil {
			t.Fatal(err)
		}
	}
	if n := streamMsgs(t, js, StreamIn); n != 1 {
		t.Fatalf("FLOE_IN has %d messages after publishing one chunk id three times, want 1", n)
	}
}

func TestPublishReportsFullStream(t *testing.T) {
	js := setup(t, Topology{InMaxBytes: 4096})
	pub := NewPublisher(js)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		c := &chunk.Chunk{ID: fmt.Sprint("c", i), Tag: "t", Records: 1, Data: incompressible(1500)}
		err = pub.Publish(ctx, InSubject("t"), c)
	}
	if !errors.Is(err, ErrStreamFull) && !strings.Contains(fmt.Sprint(err), "stream full") {
		t.Fatalf("publishing past the byte limit: got %v, want ErrStreamFull", err)
	}
}

func consume(t *testing.T, js jetstream.JetStream, o ConsumeOptions, h Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Consume(ctx, context.Background(), js, o, h)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func publishOne(t *testing.T, js jetstream.JetStream, id string) {
	t.Helper()
	c := &chunk.Chunk{ID: id, Tag: "app.x", Records: 3, Data: []byte{0x80}}
	if err := NewPublisher(js).Publish(context.Background(), InSubject(c.Tag), c); err != nil {
		t.Fatal(err)
	}
}

func TestConsumeAcksOnSuccess(t *testing.T) {
	js := setup(t, Topology{})
	var got atomic.Int32
	consume(t, js, ConsumeOptions{Stream: StreamIn, Durable: "d", RetryLimit: -1, Stage: "test"},
		func(ctx context.Context, m jetstream.Msg) error { got.Add(1); return nil })
	for i := 0; i < 5; i++ {
		publishOne(t, js, fmt.Sprint("ok-", i))
	}
	waitFor(t, "5 messages handled and acked", func() bool {
		return got.Load() == 5 && streamMsgs(t, js, StreamIn) == 0
	})
}

func TestConsumePermanentErrorGoesToDeadLetters(t *testing.T) {
	js := setup(t, Topology{})
	var dead atomic.Int32
	consume(t, js, ConsumeOptions{Stream: StreamIn, Durable: "d", RetryLimit: -1, Stage: "output1",
		OnDeadLetter: func(jetstream.Msg, error) { dead.Add(1) }},
		func(ctx context.Context, m jetstream.Msg) error { return plugin.Permanent(errors.New("sink said no")) })
	publishOne(t, js, "poison")
	waitFor(t, "dead letter", func() bool { return streamMsgs(t, js, StreamDLQ) == 1 && streamMsgs(t, js, StreamIn) == 0 })
	st, _ := js.Stream(context.Background(), StreamDLQ)
	m, err := st.GetLastMsgForSubject(context.Background(), DLQSubject("output1", "app.x"))
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Header.Get(chunk.HeaderReason); !strings.Contains(r, "sink said no") {
		t.Errorf("dead letter reason = %q", r)
	}
	if m.Header.Get(chunk.HeaderTag) != "app.x" || m.Header.Get(chunk.HeaderRecords) != "3" {
		t.Errorf("dead letter lost chunk headers: %v", m.Header)
	}
	if dead.Load() != 1 {
		t.Errorf("OnDeadLetter called %d times", dead.Load())
	}
}

func TestConsumeRetriesThenDeadLetters(t *testing.T) {
	js := setup(t, Topology{})
	var attempts, retries atomic.Int32
	consume(t, js, ConsumeOptions{Stream: StreamIn, Durable: "d", RetryLimit: 2, Stage: "out",
		Backoff: func(int) time.Duration { return 10 * time.Millisecond },
		OnRetry: func(jetstream.Msg, int, time.Duration) { retries.Add(1) }},
		func(ctx context.Context, m jetstream.Msg) error { attempts.Add(1); return errors.New("try later") })
	publishOne(t, js, "flaky")
	waitFor(t, "retries exhausted", func() bool { return streamMsgs(t, js, StreamDLQ) == 1 })
	if attempts.Load() != 3 || retries.Load() != 2 {
		t.Fatalf("attempts=%d retries=%d, want 3 attempts (first + retry_limit 2) and 2 retries", attempts.Load(), retries.Load())
	}
}

func TestConsumeRetrySucceedsLater(t *testing.T) {
	js := setup(t, Topology{})
	var attempts atomic.Int32
	consume(t, js, ConsumeOptions{Stream: StreamIn, Durable: "d", RetryLimit: -1, Stage: "out",
		Backoff: func(int) time.Duration { return 10 * time.Millisecond }},
		func(ctx context.Context, m jetstream.Msg) error {
			if attempts.Add(1) < 4 {
				return errors.New("not yet")
			}
			return nil
		})
	publishOne(t, js, "eventually")
	waitFor(t, "delivered after retries", func() bool { return attempts.Load() == 4 && streamMsgs(t, js, StreamIn) == 0 })
	if n := streamMsgs(t, js, StreamDLQ); n != 0 {
		t.Fatalf("DLQ has %d messages", n)
	}
}

func TestFullJitterStaysInFluentBitBounds(t *testing.T) {
	f := FullJitter(5*time.Second, 2000*time.Second)
	for i := 0; i < 200; i++ {
		if d := f(1); d < 5*time.Second || d > 10*time.Second {
			t.Fatalf("first retry waits %s, want within [5s,10s]", d)
		}
		if d := f(20); d < 5*time.Second || d > 2000*time.Second {
			t.Fatalf("late retry waits %s, want within [5s,2000s]", d)
		}
	}
}

func TestOutputIDIsSubjectSafe(t *testing.T) {
	if got := OutputID("stdout.0"); got != "stdout_0" {
		t.Fatalf("OutputID = %q", got)
	}
	if got := OutputID("my out*>"); got != "my_out__" {
		t.Fatalf("OutputID = %q", got)
	}
}
