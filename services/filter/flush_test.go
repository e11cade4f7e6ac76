package filter

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/telemetry"
)

// holder keeps every chunk it gets and gives it back on FlushPending, as
// the multiline filter does with an open stack trace.
type holder struct {
	mu   sync.Mutex
	held []*chunk.Chunk
}

func (h *holder) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cp := *c
	cp.ID = ""
	h.held = append(h.held, &cp)
	return nil, nil
}

func (h *holder) FlushPending(_ context.Context, _ time.Time, _ bool) []*chunk.Chunk {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.held
	h.held = nil
	return out
}

func (h *holder) FlushInterval() time.Duration { return 20 * time.Millisecond }

func TestHeldRecordsPassTheRestOfTheChain(t *testing.T) {
	before := &telemetry.FilterMetrics{}
	hm := &telemetry.FilterMetrics{}
	js, _ := run(t, []Filter{
		{Name: "before", Matcher: matcher(t, "*"), Filter: addField{"before"}, Metrics: before},
		{Name: "hold", Matcher: matcher(t, "*"), Filter: &holder{}, Metrics: hm},
		{Name: "after", Matcher: matcher(t, "*"), Filter: addField{"after"}},
	})
	publish(t, js, &chunk.Chunk{ID: "h1", Tag: "app.ml", Records: 1, Data: events(event.Map{{Key: "msg", Value: "x"}})})
	msg := next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("app.ml"))
	ev, _, err := event.ParseEvent(msg.Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	body, err := ev.Decode()
	if err != nil {
		t.Fatal(err)
	}
	got := body.Body
	if len(got) != 3 || got[0].Key != "msg" || got[1].Key != "before" || got[2].Key != "after" {
		t.Fatalf("released record %v: want it to pass the filters after the holder once, not those before again", got)
	}
	if msg.Header.Get(chunk.HeaderMsgID) == "" {
		t.Error("released chunk has no id")
	}
	waitCount(t, "held records dropped", &hm.DropRecords, 1)
	waitCount(t, "released records added", &hm.AddRecords, 1)
	if before.Records.Load() != 1 {
		t.Errorf("the filter before the holder saw %d records, want 1", before.Records.Load())
	}
}
