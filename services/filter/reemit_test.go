package filter

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/telemetry"
)

// retag re-emits every chunk under to, keeping the original when keep is
// set, as a rewrite_tag with one catch-all rule does.
type retag struct {
	to   string
	keep bool
}

func (r retag) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	moved := &chunk.Chunk{Tag: r.to, Type: c.Type, Records: c.Records, Data: c.Data}
	if r.keep {
		return []*chunk.Chunk{c, moved}, nil
	}
	return []*chunk.Chunk{moved}, nil
}

func (r retag) EmitterName() string { return "emitter_" + r.to }

func TestReEmittedChunksStartOverUnderTheirNewTag(t *testing.T) {
	for _, keep := range []bool{true, false} {
		rm := &telemetry.FilterMetrics{}
		js, _ := run(t, []Filter{
			// Matches its own output tag: without the emitter rule this loops.
			{Name: "rt", Matcher: matcher(t, "*"), Filter: retag{to: "alerts", keep: keep}, Metrics: rm},
			{Name: "mark", Matcher: matcher(t, "alerts"), Filter: addField{"routed"}},
		})
		tag := "app.keep"
		if !keep {
			tag = "app.drop"
		}
		publish(t, js, &chunk.Chunk{ID: "r-" + tag, Tag: tag, Records: 1, Data: events(event.Map{{Key: "msg", Value: "x"}})})
		msg := next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("alerts"))
		ev, _, err := event.ParseEvent(msg.Data, 0)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := ev.Decode()
		if v, _ := body.Body.Get("routed"); v != "yes" {
			t.Errorf("keep=%v: re-emitted record %v did not pass the filters of its new tag", keep, body.Body)
		}
		if msg.Header.Get(chunk.HeaderSource) != "emitter_alerts" || msg.Header.Get(chunk.HeaderEmits) != "1" {
			t.Errorf("keep=%v: source %q emits %q", keep, msg.Header.Get(chunk.HeaderSource), msg.Header.Get(chunk.HeaderEmits))
		}
		st, err := js.Stream(context.Background(), jsx.StreamFiltered)
		if err != nil {
			t.Fatal(err)
		}
		// Give a loop time to show, then count: one chunk for alerts, and
		// the original only when kept.
		time.Sleep(500 * time.Millisecond)
		info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(jsx.SubjectFiltered+">"))
		if err != nil {
			t.Fatal(err)
		}
		wantOrig := uint64(0)
		if keep {
			wantOrig = 1
		}
		if got := info.State.Subjects[jsx.FilteredSubject("alerts")]; got != 1 {
			t.Errorf("keep=%v: %d chunks for alerts, want exactly 1 (no loop)", keep, got)
		}
		if got := info.State.Subjects[jsx.FilteredSubject(tag)]; got != wantOrig {
			t.Errorf("keep=%v: %d chunks for the original tag, want %d", keep, got, wantOrig)
		}
		// As Fluent Bit: a record moved under a new tag and not kept is
		// the rewriting filter's drop_records; a kept one is not.
		if want := 1 - wantOrig; rm.DropRecords.Load() != want {
			t.Errorf("keep=%v: rewrite filter drop_records = %d, want %d", keep, rm.DropRecords.Load(), want)
		}
	}
}

func TestReEmissionBetweenTwoFiltersIsBounded(t *testing.T) {
	js, reg, logs := runCounted(t, []Filter{
		{Name: "ab", Matcher: matcher(t, "a"), Filter: retag{to: "b"}},
		{Name: "ba", Matcher: matcher(t, "b"), Filter: retag{to: "a"}},
	}, slog.LevelWarn)
	m := reg.Stage("filter")
	publish(t, js, &chunk.Chunk{ID: "ping", Tag: "a", Records: 1, Data: events(event.Map{{Key: "msg", Value: "x"}})})
	// The original and MaxEmits re-emissions are processed; the next
	// re-emission (by ab, the odd ones) is dropped and counted.
	waitDropped(t, reg, "ab", telemetry.DropFilterError, 1)
	waitCount(t, "chunks in", &m.ChunksIn, 1+MaxEmits)
	time.Sleep(500 * time.Millisecond)
	if n := m.ChunksIn.Load(); n != 1+MaxEmits {
		t.Fatalf("%d chunks processed: the loop was not stopped", n)
	}
	found := false
	for _, l := range logs.lines(t) {
		if msg, _ := l["msg"].(string); strings.Contains(msg, "re-emitted too many times") {
			found = true
		}
	}
	if !found {
		t.Error("the loop is not logged")
	}
}
