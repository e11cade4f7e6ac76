package filter

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/plugins/filter/grep"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// runCounted runs the stage as `floe run` does: metrics in a registry, a
// JSON log at level.
func runCounted(t *testing.T, filters []Filter, level slog.Level) (jetstream.JetStream, *telemetry.Registry, *syncBuffer) {
	t.Helper()
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	if err := jsx.EnsureTopology(context.Background(), js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry("test")
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	s := New(js, Config{Filters: filters, Metrics: reg.Stage("filter"), Logger: log, Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, context.Background()) }()
	t.Cleanup(func() { cancel(); <-done })
	return js, reg, logs
}

func waitDropped(t *testing.T, reg *telemetry.Registry, plugin, reason string, want uint64) {
	t.Helper()
	waitCount(t, "dropped "+plugin+" "+reason, reg.Dropped("filter", plugin, reason), want)
}

// Records grep rejects are counted as "filtered", intentional, so logged at
// debug level only, and Fluent Bit's drop_records agrees.
func TestGrepDropsCountedAsFiltered(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			fm := &telemetry.FilterMetrics{}
			js, reg, logs := runCounted(t, []Filter{{Name: "grep.0", Matcher: matcher(t, "*"),
				Filter: plugintest.NewFilter(t, grep.Spec(), "exclude level ^debug$"), Metrics: fm}}, level)
			data := events(
				event.Map{{Key: "level", Value: "debug"}, {Key: "n", Value: int64(1)}},
				event.Map{{Key: "level", Value: "info"}, {Key: "n", Value: int64(2)}},
				event.Map{{Key: "level", Value: "debug"}, {Key: "n", Value: int64(3)}},
			)
			publish(t, js, &chunk.Chunk{ID: "g1", Tag: "app.web", Records: 3, Data: data})
			if got := next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("app.web")).Header.Get(chunk.HeaderRecords); got != "1" {
				t.Fatalf("kept %s records, want 1", got)
			}
			waitDropped(t, reg, "grep.0", telemetry.DropFiltered, 2)
			if fm.DropRecords.Load() != 2 {
				t.Errorf("fluentbit_filter_drop_records_total = %d, want 2", fm.DropRecords.Load())
			}
			if got := reg.Dropped("filter", "grep.0", telemetry.DropFilterError).Load(); got != 0 {
				t.Errorf("filter_error = %d, want 0", got)
			}
			var debug, loud int
			for _, l := range logs.lines(t) {
				if l["reason"] != telemetry.DropFiltered {
					continue
				}
				if l["level"] == "DEBUG" && l["filter"] == "grep.0" && l["tag"] == "app.web" && l["records"] == 2.0 {
					debug++
				} else {
					loud++
				}
			}
			if loud != 0 {
				t.Errorf("intentional filtering logged above debug level:\n%v", logs.lines(t))
			}
			if want := map[bool]int{true: 1, false: 0}[level == slog.LevelDebug]; debug != want {
				t.Errorf("%d debug lines for the drop at level %s, want %d", debug, level, want)
			}
		})
	}
}

// noteFailing drops records whose "fail" key is true as failures (noting
// them, as the WASM filter does with on_error drop) and those whose "skip"
// key is true as intended.
type noteFailing struct{}

func (noteFailing) FilterChunk(ctx context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	return plugin.ApplyRecords(c, func(ev *event.Event) (bool, error) {
		if v, _ := ev.Body.Get("fail"); v == true {
			telemetry.NoteDrop(ctx, telemetry.DropFilterError, 1)
			return false, nil
		}
		v, _ := ev.Body.Get("skip")
		return v != true, nil
	})
}

func TestFilterErrorsCountedApartFromFiltering(t *testing.T) {
	js, reg, logs := runCounted(t, []Filter{{Name: "wasm.0", Matcher: matcher(t, "*"), Filter: noteFailing{}}}, slog.LevelInfo)
	data := events(
		event.Map{{Key: "fail", Value: true}},
		event.Map{{Key: "skip", Value: true}},
		event.Map{{Key: "fail", Value: true}},
		event.Map{{Key: "ok", Value: true}},
	)
	publish(t, js, &chunk.Chunk{ID: "w1", Tag: "app.x", Records: 4, Data: data})
	next(t, js, jsx.StreamFiltered, jsx.FilteredSubject("app.x"))
	waitDropped(t, reg, "wasm.0", telemetry.DropFilterError, 2)
	waitDropped(t, reg, "wasm.0", telemetry.DropFiltered, 1)
	var warned bool
	for _, l := range logs.lines(t) {
		if l["reason"] == telemetry.DropFilterError && l["level"] == "WARN" && l["records"] == 2.0 && l["filter"] == "wasm.0" {
			warned = true
		}
	}
	if !warned {
		t.Errorf("filter errors not logged at warning level:\n%v", logs.lines(t))
	}
}

// A chunk whose MessagePack does not decode, published raw to the stage's
// subject, is set aside and counted as malformed against the filter that
// tried to read it.
func TestMalformedChunkCounted(t *testing.T) {
	js, reg, _ := runCounted(t, []Filter{{Name: "grep.0", Matcher: matcher(t, "*"),
		Filter: plugintest.NewFilter(t, grep.Spec(), "exclude level ^debug$")}}, slog.LevelInfo)
	// Raw: no Floe headers at all, so the tag is empty and the count unknown.
	if _, err := js.Publish(context.Background(), jsx.InSubject("app.raw"), []byte{0x92, 0xc1, 0xc1}); err != nil {
		t.Fatal(err)
	}
	waitDropped(t, reg, "grep.0", telemetry.DropMalformedChunk, 1)
	// With the records header: all of them are lost to the pipeline.
	good := events(event.Map{{Key: "level", Value: "info"}})
	bad := append(append([]byte{}, good...), 0x92, 0xd7)
	publish(t, js, &chunk.Chunk{ID: "bad", Tag: "app.bad", Records: 5, Data: bad})
	waitDropped(t, reg, "grep.0", telemetry.DropMalformedChunk, 6)
	next(t, js, jsx.StreamDLQ, jsx.DLQSubject("filter", "app.bad"))
	if !strings.Contains(string(reg.MetricsJSON()), `"filter":{"grep.0":{"filtered":0,"filter_error":0,"malformed_chunk":6}}`) {
		t.Errorf("not in /api/v1/metrics: %s", reg.MetricsJSON())
	}
}
