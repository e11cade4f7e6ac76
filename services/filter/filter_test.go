package filter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/tag"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// addField is a test filter that decodes every record and adds a key.
type addField struct{ key string }

func (f addField) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	return plugin.ApplyRecords(c, func(ev *event.Event) (bool, error) {
		if v, _ := ev.Body.Get("drop"); v == true {
			return false, nil
		}
		ev.Body.Set(f.key, "yes")
		return true, nil
	})
}

func events(bodies ...event.Map) []byte {
	var b []byte
	for i, body := range bodies {
		ev := event.Event{Time: event.Time{Sec: 1700000000, Nsec: uint32(i)}, Body: body}
		b = ev.AppendMsgpack(b)
	}
	return b
}

func run(t *testing.T, filters []Filter) (jetstream.JetStream, *telemetry.StageMetrics) {
	t.Helper()
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	if err := jsx.EnsureTopology(context.Background(), js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	m := &telemetry.StageMetrics{}
	s := New(js, Config{Filters: filters, Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, context.Background()) }()
	t.Cleanup(func() { cancel(); <-done })
	return js, m
}

func matcher(t *testing.T, p string) *tag.Matcher {
	m, err := tag.NewMatcher(p, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func publish(t *testing.T, js jetstream.JetStream, c *chunk.Chunk) {
	t.Helper()
	if err := jsx.NewPublisher(js).Publish(context.Background(), jsx.InSubject(c.Tag), c); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, js jetstream.JetStream, stream, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, err := st.GetLastMsgForSubject(context.Background(), subject)
		if err == nil {
			// The chunk's bytes as a stage reads them, decompressed.
			if m.Data, err = chunk.Payload(m.Header, m.Data); err != nil {
				t.Fatal(err)
			}
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no message on %s in %s", subject, stream)
	return nil
}

func TestMatchingChainModifiesRecords(t *testing.T) {
	js, m := run(t, []Filter{
		{Name: "a", Matcher: matcher(t, "app.*"), Filter: addField{"first"}, Metrics: &telemetry.FilterMetrics{}},
		{Name: "b", Matcher: matcher(t, "other"), Filter: addField{"never"}},
		{Name: "c", Matcher: matcher(t, "*"), Filter: addField{"second"}},
	})
	data := events(event.Map{{Key: "msg", Value: "x"}}, event.Map{{Key: "drop", Value: true}})
	publish(t, js, &chunk.Chunk{ID: "c1", Tag: "app.web", Records: 2, Data: data})
	msg := next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("app.web"))
	if msg.Header.Get(chunk.HeaderRecords) != "1" || msg.Header.Get(chunk.HeaderTag) != "app.web" {
		t.Fatalf("headers %v", msg.Header)
	}
	it := event.NewIter(msg.Data)
	if !it.Next() {
		t.Fatalf("no event: %v", it.Err())
	}
	ev, err := it.Event().Decode()
	if err != nil {
		t.Fatal(err)
	}
	want := event.Map{{Key: "msg", Value: "x"}, {Key: "first", Value: "yes"}, {Key: "second", Value: "yes"}}
	if len(ev.Body) != len(want) {
		t.Fatalf("body %v, want %v", ev.Body, want)
	}
	for i := range want {
		if ev.Body[i] != want[i] {
			t.Fatalf("body %v, want %v (order and values)", ev.Body, want)
		}
	}
	if ev.Time != (event.Time{Sec: 1700000000}) {
		t.Errorf("time changed: %v", ev.Time)
	}
	waitCount(t, "chunks out", &m.ChunksOut, 1)
}

func TestUnmatchedChunkPassesUndecoded(t *testing.T) {
	js, _ := run(t, []Filter{{Name: "a", Matcher: matcher(t, "app.*"), Filter: addField{"x"}}})
	// Not valid MessagePack: a filter that decoded it would fail.
	garbage := []byte{0xc1, 0xc1, 0xc1}
	publish(t, js, &chunk.Chunk{ID: "c2", Tag: "sys", Records: 1, Data: garbage})
	msg := next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("sys"))
	if string(msg.Data) != string(garbage) {
		t.Fatalf("unmatched chunk changed: %x", msg.Data)
	}
}

func TestMalformedChunkGoesToDeadLettersAndStageGoesOn(t *testing.T) {
	js, m := run(t, []Filter{{Name: "a", Matcher: matcher(t, "*"), Filter: addField{"x"}}})
	good := events(event.Map{{Key: "k", Value: "v"}})
	bad := append(append([]byte{}, good...), 0x92, 0xd7) // a truncated second event
	publish(t, js, &chunk.Chunk{ID: "bad", Tag: "app.bad", Records: 2, Data: bad})
	publish(t, js, &chunk.Chunk{ID: "good", Tag: "app.good", Records: 1, Data: good})

	dl := next(t, js, jsx.StreamDLQ, jsx.DLQSubject("filter", "app.bad"))
	if r := dl.Header.Get(chunk.HeaderReason); !strings.Contains(r, "byte offset") {
		t.Errorf("dead-letter reason %q does not name the byte offset", r)
	}
	if string(dl.Data) != string(bad) {
		t.Errorf("dead letter does not keep the original chunk")
	}
	next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("app.good"))
	waitCount(t, "dead letters", &m.DeadLetters, 1)
}

func waitCount(t *testing.T, what string, c *telemetry.Counter, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", what, c.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
