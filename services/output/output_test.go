package output

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// sink answers RETRY for the first failures flushes, ERROR for tag "reject",
// and decodes every chunk it accepts.
type sink struct {
	mu       sync.Mutex
	failures int
	records  int
}

func (s *sink) Flush(_ context.Context, c *chunk.Chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Tag == "reject" {
		return plugin.Permanent(errors.New("bad request"))
	}
	n, err := event.Count(c.Data)
	if err != nil {
		return err
	}
	if s.failures > 0 {
		s.failures--
		return errors.New("sink down")
	}
	s.records += n
	return nil
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// startStage runs an output stage with cfg against a fresh embedded server
// holding its outputs' streams, stopped when the test ends.
func startStage(t *testing.T, cfg Config) (jetstream.JetStream, context.Context) {
	t.Helper()
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	topo := jsx.Topology{}
	for _, o := range cfg.Outputs {
		topo.Outputs = append(topo.Outputs, jsx.OutputStream{ID: o.ID})
	}
	if err := jsx.EnsureTopology(context.Background(), js, topo); err != nil {
		t.Fatal(err)
	}
	s := New(js, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, context.Background()) }()
	t.Cleanup(func() { cancel(); <-done })
	return js, ctx
}

func TestOutputRetriesErrorsAndDeadLetters(t *testing.T) {
	sk := &sink{failures: 2}
	om := &telemetry.OutputMetrics{}
	js, ctx := startStage(t, Config{
		Outputs:       []Output{{Name: "s", ID: "s", Output: sk, RetryLimit: 5, Metrics: om}},
		SchedulerBase: 10 * time.Millisecond, SchedulerCap: 20 * time.Millisecond,
	})

	ev := event.Event{Time: event.Time{Sec: 1}, Body: event.Map{{Key: "k", Value: "v"}}}
	good := ev.AppendMsgpack(ev.AppendMsgpack(nil))
	pub := jsx.NewPublisher(js)
	for _, c := range []*chunk.Chunk{
		{ID: "1", Tag: "ok", Records: 2, Data: good},
		{ID: "2", Tag: "reject", Records: 2, Data: good},
		{ID: "3", Tag: "broken", Records: 1, Data: []byte{0x92, 0x01}},
	} {
		if err := pub.Publish(ctx, jsx.OutSubject("s", c.Tag), c); err != nil {
			t.Fatal(err)
		}
	}
	dlq, _ := js.Stream(ctx, jsx.StreamDLQ)
	deadline := time.Now().Add(10 * time.Second)
	for sk.count() != 2 || dlq.CachedInfo().State.Msgs != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d records, %d dead letters", sk.count(), dlq.CachedInfo().State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
		dlq, _ = js.Stream(ctx, jsx.StreamDLQ)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, jsx.DLQSubject("s", "broken"))
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Header.Get(chunk.HeaderReason); !strings.Contains(r, "byte offset") {
		t.Errorf("reason %q", r)
	}
	if om.ProcRecords.Load() != 2 || om.Retries.Load() < 2 || om.DeadLetters.Load() != 2 {
		t.Errorf("metrics: proc=%d retries=%d dead=%d", om.ProcRecords.Load(), om.Retries.Load(), om.DeadLetters.Load())
	}
}

// A chunk the output cannot decode, published raw to its subject, and one
// the sink refuses are counted as dropped under their reasons.
func TestDeadLettersCountedAsDropped(t *testing.T) {
	reg := telemetry.NewRegistry("test")
	js, ctx := startStage(t, Config{
		Outputs:       []Output{{Name: "http.0", ID: "s", Output: &sink{}, RetryLimit: 5, Metrics: reg.Output("http.0")}},
		SchedulerBase: 10 * time.Millisecond, SchedulerCap: 20 * time.Millisecond,
		Metrics: reg.Stage("output"),
	})

	// Raw bytes, no Floe headers: undecodable, count unknown (one).
	if _, err := js.Publish(ctx, jsx.OutSubject("s", "raw"), []byte{0x92, 0xc1}); err != nil {
		t.Fatal(err)
	}
	ev := event.Event{Time: event.Time{Sec: 1}, Body: event.Map{{Key: "k", Value: "v"}}}
	if err := jsx.NewPublisher(js).Publish(ctx, jsx.OutSubject("s", "reject"),
		&chunk.Chunk{ID: "r", Tag: "reject", Records: 2, Data: ev.AppendMsgpack(ev.AppendMsgpack(nil))}); err != nil {
		t.Fatal(err)
	}
	malformed := reg.Dropped("output", "http.0", telemetry.DropMalformedChunk)
	refused := reg.Dropped("output", "http.0", telemetry.DropDeadLetter)
	deadline := time.Now().Add(20 * time.Second)
	for malformed.Load() != 1 || refused.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("malformed_chunk=%d dead_letter=%d, want 1 and 2", malformed.Load(), refused.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if js := string(reg.MetricsJSON()); !strings.Contains(js, `"output":{"http.0":{"malformed_chunk":1,"dead_letter":2}}`) &&
		!strings.Contains(js, `"output":{"http.0":{"dead_letter":2,"malformed_chunk":1}}`) {
		t.Errorf("not in /api/v1/metrics: %s", js)
	}
}

// borrower records which events each Flush saw, reading them only during
// Flush, as a DataBorrower promises.
type borrower struct {
	mu   sync.Mutex
	seen map[string]int
}

func (b *borrower) BorrowsData() {}

func (b *borrower) Flush(_ context.Context, c *chunk.Chunk) error {
	time.Sleep(2 * time.Millisecond) // let other workers decode meanwhile
	it := event.NewIter(c.Data)
	var keys []string
	for it.Next() {
		ev, err := it.Event().Decode()
		if err != nil {
			return plugin.Permanent(err)
		}
		v, _ := ev.Body.Get("n")
		k, _ := v.(string)
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return plugin.Permanent(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		b.seen[k]++
	}
	return nil
}

// Compressed chunks of different sizes, several workers, reused buffers:
// every event arrives once, none read from a buffer another chunk reused.
func TestBorrowedBuffersKeepEveryChunkIntact(t *testing.T) {
	bo := &borrower{seen: map[string]int{}}
	js, ctx := startStage(t, Config{Outputs: []Output{{Name: "b", ID: "b", Output: bo, Workers: 4, RetryLimit: 1, Metrics: &telemetry.OutputMetrics{}}}})

	pub := jsx.NewPublisher(js)
	total := 0
	for i := range 60 {
		var data []byte
		n := 50 + (i%7)*40 // chunks of different sizes
		for j := range n {
			ev := event.Event{Time: event.Time{Sec: 1}, Body: event.Map{
				{Key: "n", Value: fmt.Sprintf("%d-%d", i, j)},
				{Key: "pad", Value: strings.Repeat("x", 100)},
			}}
			data = ev.AppendMsgpack(data)
		}
		total += n
		m := chunk.ToMsg(jsx.OutSubject("b", "t"), &chunk.Chunk{ID: fmt.Sprint("c", i), Tag: "t", Records: n, Data: data})
		if m.Header.Get(chunk.HeaderEncoding) != chunk.EncodingS2 {
			t.Fatal("test chunk not compressed")
		}
		if err := pub.Publish(ctx, jsx.OutSubject("b", "t"), &chunk.Chunk{ID: fmt.Sprint("c", i), Tag: "t", Records: n, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		bo.mu.Lock()
		got := len(bo.seen)
		bo.mu.Unlock()
		if got == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d distinct events arrived", got, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	bo.mu.Lock()
	defer bo.mu.Unlock()
	for k, n := range bo.seen {
		if n != 1 {
			t.Errorf("event %s arrived %d times", k, n)
		}
	}
}

// A chunk labelled S2 whose bytes do not decompress is set aside at once,
// its dead letter naming the chunk and the encoding; the sink never sees it.
func TestUndecodableCompressedChunkIsDeadLettered(t *testing.T) {
	sk := &sink{}
	om := &telemetry.OutputMetrics{}
	js, ctx := startStage(t, Config{
		Outputs:       []Output{{Name: "s", ID: "s", Output: sk, RetryLimit: 5, Metrics: om}},
		SchedulerBase: 10 * time.Millisecond, SchedulerCap: 20 * time.Millisecond,
	})

	m := nats.NewMsg(jsx.OutSubject("s", "app"))
	m.Header.Set(chunk.HeaderEncoding, chunk.EncodingS2)
	m.Header.Set(chunk.HeaderTag, "app")
	m.Header.Set(chunk.HeaderRecords, "3")
	m.Header.Set(chunk.HeaderMsgID, "in:42")
	m.Data = []byte("this is not s2")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var reason string
	for reason == "" {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter for the undecodable chunk")
		}
		time.Sleep(20 * time.Millisecond)
		dlq, err := js.Stream(ctx, jsx.StreamDLQ)
		if err != nil {
			continue
		}
		if dm, err := dlq.GetLastMsgForSubject(ctx, jsx.DLQSubject("s", "app")); err == nil {
			reason = dm.Header.Get(chunk.HeaderReason)
			if string(dm.Data) != "this is not s2" {
				t.Errorf("dead letter holds %q, want the bytes as stored", dm.Data)
			}
		}
	}
	if !strings.Contains(reason, "in:42") || !strings.Contains(reason, "s2") {
		t.Errorf("reason %q should name the chunk and the encoding", reason)
	}
	if om.Retries.Load() != 0 || sk.count() != 0 {
		t.Errorf("retried %d times, sink saw %d records; want an immediate dead letter", om.Retries.Load(), sk.count())
	}
}
