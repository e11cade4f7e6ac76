package filter

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// closer is a filter holding a resource: it counts its Close calls and
// notes any that came while it was filtering a chunk.
type closer struct {
	entered  chan struct{} // receives when FilterChunk starts
	release  chan struct{} // FilterChunk returns once this is closed
	inFlight atomic.Int32
	closes   atomic.Int32
	early    atomic.Int32 // Close calls while a chunk was in flight
}

func newCloser() *closer {
	return &closer{entered: make(chan struct{}, 8), release: make(chan struct{})}
}

func (f *closer) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	f.entered <- struct{}{}
	<-f.release
	return []*chunk.Chunk{c}, nil
}

func (f *closer) Close(context.Context) error {
	if f.inFlight.Load() > 0 {
		f.early.Add(1)
	}
	f.closes.Add(1)
	return errors.New("closing fails, and the stage must stop anyway")
}

// A reload stops the running filter stage and starts a new one with new
// filter instances: each instance must be closed exactly once, after the
// chunk it was filtering has gone on, never during it.
func TestFiltersClosedOnceAfterInFlightChunks(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	if err := jsx.EnsureTopology(context.Background(), js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	start := func(f *closer) (stop func(), done chan error) {
		s := New(js, Config{Filters: []Filter{
			{Name: "plain", Matcher: matcher(t, "*"), Filter: addField{"x"}},
			{Name: "closer", Matcher: matcher(t, "*"), Filter: f},
		}})
		ctx, cancel := context.WithCancel(context.Background())
		done = make(chan error, 1)
		go func() { done <- s.Run(ctx, context.Background()) }()
		return cancel, done
	}

	first := newCloser()
	stop, done := start(first)
	publish(t, js, &chunk.Chunk{ID: "r1", Tag: "app.one", Records: 1, Data: events(event.Map{{Key: "msg", Value: "a"}})})
	select {
	case <-first.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the chunk never reached the filter")
	}
	stop() // the reload begins while the chunk is in the filter
	select {
	case err := <-done:
		t.Fatalf("stage returned (%v) with a chunk still in its filter", err)
	case <-time.After(200 * time.Millisecond):
	}
	if n := first.closes.Load(); n != 0 {
		t.Fatalf("filter closed %d time(s) while its chunk was in flight", n)
	}
	close(first.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a failing Close stopped the stage with an error: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stage did not stop")
	}
	// The in-flight chunk went on before the filter was closed.
	next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("app.one"))
	if n, e := first.closes.Load(), first.early.Load(); n != 1 || e != 0 {
		t.Fatalf("old instance: %d Close call(s), %d during a chunk; want 1 and 0", n, e)
	}

	// The reloaded stage has its own instance; stopping it (shutdown)
	// closes that one and leaves the old one alone.
	second := newCloser()
	close(second.release)
	stop, done = start(second)
	publish(t, js, &chunk.Chunk{ID: "r2", Tag: "app.two", Records: 1, Data: events(event.Map{{Key: "msg", Value: "b"}})})
	next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("app.two"))
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := second.closes.Load(); n != 1 {
		t.Errorf("new instance closed %d time(s) on stop, want 1", n)
	}
	if n := first.closes.Load(); n != 1 {
		t.Errorf("old instance closed %d time(s) in all, want 1", n)
	}
}

// toMetrics stands for log_to_metrics with discard_logs: it consumes the
// records and gives back one metrics chunk of two data points under its tag.
type toMetrics struct{}

func (toMetrics) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	return []*chunk.Chunk{{Tag: "metrics.out", Type: chunk.Metrics, Records: 2, Data: []byte("otlp")}}, nil
}

// A metrics chunk derived from records is not those records under a new
// tag: the records it consumed are counted as dropped, and the metrics
// chunk reaches FLOE_FILTERED (through FLOE_IN, untouched by filters).
func TestDerivedMetricsChunkDoesNotHideDroppedRecords(t *testing.T) {
	fm := &telemetry.FilterMetrics{}
	js, reg, _ := runCounted(t, []Filter{
		{Name: "l2m", Matcher: matcher(t, "app.*"), Filter: toMetrics{}, Metrics: fm},
		{Name: "after", Matcher: matcher(t, "*"), Filter: addField{"x"}},
	}, slog.LevelInfo)
	data := events(event.Map{{Key: "a", Value: "1"}}, event.Map{{Key: "a", Value: "2"}}, event.Map{{Key: "a", Value: "3"}})
	publish(t, js, &chunk.Chunk{ID: "m1", Tag: "app.x", Records: 3, Data: data})
	msg := next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("metrics.out"))
	if string(msg.Data) != "otlp" || msg.Header.Get(chunk.HeaderType) != chunk.Metrics {
		t.Fatalf("metrics chunk changed on its way: %q %v", msg.Data, msg.Header)
	}
	waitDropped(t, reg, "l2m", telemetry.DropFiltered, 3)
	waitCount(t, "drop_records", &fm.DropRecords, 3)
}
