package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
)

func TestDroppedExposedInJSONAndPrometheus(t *testing.T) {
	r := NewRegistry("v")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	stdin := r.Dropper(log.With("input", "stdin.0"), DropSite{Stage: "ingest", Plugin: "stdin.0", Reason: DropNotJSON,
		Msg: "input is not JSON, dropped", Level: slog.LevelWarn})
	stdin.Drop(1, "offset", 12)
	stdin.Drop(1, "offset", 40)
	unmatched := r.Stage("router").Dropper(log, "", DropUnmatched, "chunk matches no output, dropped", slog.LevelWarn)
	unmatched.Drop(5, "tag", "app.x")
	grep := r.Stage("filter").Dropper(log, "grep.0", DropFiltered, "records filtered out", slog.LevelDebug)
	grep.Drop(7)
	// The same site asked for twice shares its counter.
	if r.Dropped("ingest", "stdin.0", DropNotJSON) != stdin.c {
		t.Error("a second lookup of a site made a second counter")
	}

	var top struct {
		Floe struct {
			Dropped map[string]map[string]map[string]uint64 `json:"dropped"`
		} `json:"floe"`
	}
	raw := r.MetricsJSON()
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	want := `map[filter:map[grep.0:map[filtered:7]] ingest:map[stdin.0:map[not_json:2]] router:map[router:map[unmatched:5]]]`
	if got := fmt.Sprint(top.Floe.Dropped); got != want {
		t.Errorf("floe.dropped = %s, want %s", got, want)
	}
	// Stages in first-drop-site order.
	if !strings.Contains(string(raw), `"dropped":{"ingest":{"stdin.0":{"not_json":2}},"router":{"router":{"unmatched":5}},"filter":{"grep.0":{"filtered":7}}}`) {
		t.Errorf("dropped JSON not in registration order: %s", raw)
	}
	// Several plugins and reasons in one stage.
	r.Dropped("ingest", "stdin.1", DropTooLong).Add(1)
	r.Dropped("ingest", "stdin.0", DropIncomplete).Add(2)
	if !strings.Contains(string(r.MetricsJSON()), `"ingest":{"stdin.0":{"not_json":2,"incomplete":2},"stdin.1":{"too_long":1}}`) {
		t.Errorf("grouping wrong: %s", r.MetricsJSON())
	}

	text := promText(t, NewServer(r, ServerOptions{}), "/api/v1/metrics/prometheus")
	for _, w := range []string{
		`# TYPE floe_dropped_records_total counter`,
		`floe_dropped_records_total{plugin="stdin.0",reason="not_json",stage="ingest"} 2`,
		`floe_dropped_records_total{plugin="router",reason="unmatched",stage="router"} 5`,
		`floe_dropped_records_total{plugin="grep.0",reason="filtered",stage="filter"} 7`,
	} {
		if !strings.Contains(text, w) {
			t.Errorf("prometheus text lacks %q", w)
		}
	}
	preg := prometheus.NewPedanticRegistry()
	preg.MustRegister(r.Collector())
	if _, err := preg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}

	// Warn-level sites log their first drop; the debug one (intentional
	// filtering) stays out of an info-level log while still being counted.
	out := logs.String()
	if n := strings.Count(out, "input is not JSON, dropped"); n != 1 {
		t.Errorf("stdin drop logged %d times, want 1 (the second is for the summary):\n%s", n, out)
	}
	for _, w := range []string{"reason=not_json", "offset=12", "reason=unmatched", "tag=app.x", "records=5"} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "filtered") {
		t.Errorf("intentional filtering logged at info level:\n%s", out)
	}
	stdin.Flush()
	if !strings.Contains(logs.String(), "dropped 1 more records") || !strings.Contains(logs.String(), "offset=40") {
		t.Errorf("flush did not log the pending drop:\n%s", logs.String())
	}
}

func TestDropperWithoutRegistry(t *testing.T) {
	var r *Registry
	d := r.Dropper(nil, DropSite{Stage: "ingest", Reason: DropNotJSON})
	d.Drop(3)
	d.Drop(0)
	if d.Count() != 3 {
		t.Fatalf("count = %d, want 3", d.Count())
	}
	d.Flush()
	m := &StageMetrics{}
	sd := m.Dropper(nil, "", DropUnmatched, "x", slog.LevelWarn)
	sd.Drop(2)
	if sd.Count() != 2 {
		t.Fatalf("stage dropper outside a registry count = %d", sd.Count())
	}
}

func TestDropNotes(t *testing.T) {
	NoteDrop(context.Background(), DropFilterError, 3) // no notes: nothing happens, no panic
	notes := new(DropNotes)
	ctx := WithDropNotes(context.Background(), notes)
	NoteDrop(ctx, DropFilterError, 2)
	NoteDrop(ctx, DropFilterError, 1)
	NoteDrop(ctx, DropFiltered, 0)
	if n := notes.Take(DropFilterError); n != 3 {
		t.Errorf("took %d, want 3", n)
	}
	if n := notes.Take(DropFilterError); n != 0 {
		t.Errorf("second take %d, want 0", n)
	}
	NoteDrop(ctx, DropFilterError, 5)
	notes.Reset()
	if n := notes.Take(DropFilterError); n != 0 {
		t.Errorf("after reset %d, want 0", n)
	}
}

func TestDeadLetterReasonAndChunkRecords(t *testing.T) {
	decode := fmt.Errorf("filter a: %w", &event.DecodeError{Offset: 3, Msg: "bad"})
	if r := DeadLetterReason(decode); r != DropMalformedChunk {
		t.Errorf("decode error → %q", r)
	}
	if r := DeadLetterReason(errors.New("HTTP 400")); r != DropDeadLetter {
		t.Errorf("other error → %q", r)
	}
	ev := event.Event{Time: event.Time{Sec: 1}, Body: event.Map{{Key: "a", Value: int64(1)}}}
	two := ev.AppendMsgpack(ev.AppendMsgpack(nil))
	for _, c := range []struct {
		c    chunk.Chunk
		want int
	}{
		{chunk.Chunk{Records: 7, Data: two}, 7},          // the header wins
		{chunk.Chunk{Data: two}, 2},                      // no header: count
		{chunk.Chunk{Data: []byte{0xc1}}, 1},             // nothing decodes: at least one
		{chunk.Chunk{Type: chunk.Metrics, Data: two}, 1}, // OTLP is not counted as events
		{chunk.Chunk{Type: chunk.Metrics, Records: 4, Data: nil}, 4},
	} {
		if got := ChunkRecords(&c.c); got != c.want {
			t.Errorf("ChunkRecords(%+v) = %d, want %d", c.c, got, c.want)
		}
	}
}

// The filter stage calls Drop on every chunk a grep filter thins out; at
// the default level (debug lines disabled) that must stay an atomic add.
func BenchmarkDropperDebugDisabled(b *testing.B) {
	r := NewRegistry("b")
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d := r.Stage("filter").Dropper(log, "grep.0", DropFiltered, "records filtered out", slog.LevelDebug)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Drop(3, "tag", "app.web")
		}
	})
}

// A burst of warn-level drops: the first is logged, the rest only summed.
func BenchmarkDropperWarnBurst(b *testing.B) {
	r := NewRegistry("b")
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d := r.Stage("router").Dropper(log, "", DropUnmatched, "chunk matches no output, dropped", slog.LevelWarn)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Drop(3, "tag", "app.web")
		}
	})
}
