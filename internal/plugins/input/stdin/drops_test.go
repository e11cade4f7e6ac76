package stdin

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

// newCounted builds a stdin input with a metrics registry and a JSON log at
// info level, as `floe run` has.
func newCounted(t *testing.T, in []byte, readSize int) (*Stdin, *telemetry.Registry, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	reg := telemetry.NewRegistry("test")
	set := plugin.Settings{Name: "stdin.0", Telemetry: reg,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	s, err := newStdin(set, props(t), &chunkReader{b: in, n: readSize})
	if err != nil {
		t.Fatal(err)
	}
	return s, reg, logs
}

func logLines(t *testing.T, logs *logBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
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

// Every kind of bad input is counted under its reason and its first
// occurrence logged with where it is in the input, however reads split it.
func TestDropsCountedAndLocated(t *testing.T) {
	in := `{"ok": 1}
not json at all
{"ok": 2}
123
"a string"
[1, 2, 3]
{"broken": "value
{"ok": 3}
{"cut": "off`
	for _, n := range []int{3, 16000} {
		t.Run(fmt.Sprintf("reads_of_%d", n), func(t *testing.T) {
			s, reg, logs := newCounted(t, []byte(in), n)
			evs := runAll(t, s, &plugintest.Writer{})
			if len(evs) != 3 {
				t.Fatalf("%d events kept, want 3", len(evs))
			}
			for reason, want := range map[string]uint64{
				telemetry.DropNotJSON: 2, telemetry.DropNotRecord: 2, telemetry.DropInvalidEvent: 1,
				telemetry.DropIncomplete: 1, telemetry.DropTooLong: 0,
			} {
				if got := reg.Dropped("ingest", "stdin.0", reason).Load(); got != want {
					t.Errorf("floe_dropped_records_total{reason=%q} = %d, want %d", reason, got, want)
				}
			}
			// The first drop of each reason is logged at once with its place.
			first := map[string]map[string]any{}
			for _, l := range logLines(t, logs) {
				if r, ok := l["reason"].(string); ok && first[r] == nil {
					first[r] = l
				}
			}
			for reason, text := range map[string]string{
				telemetry.DropNotJSON:      "not json at all",
				telemetry.DropNotRecord:    "123",
				telemetry.DropInvalidEvent: "[1, 2, 3]",
				telemetry.DropIncomplete:   `{"cut": "off`,
			} {
				l := first[reason]
				if l == nil {
					t.Errorf("no log line for reason %s:\n%s", reason, logs)
					continue
				}
				off := strings.Index(in, text)
				line := strings.Count(in[:off], "\n") + 1
				// The sample is the bad text as far as it was read when the
				// problem showed: all of it with whole-line reads.
				sample, _ := l["text"].(string)
				if n < len(in) && sample != "" && strings.HasPrefix(text, sample) {
					sample = text
				}
				if l["level"] != "WARN" || sample != text || l["offset"] != float64(off) || l["line"] != float64(line) {
					t.Errorf("reason %s logged as %v; want level WARN, text %q, offset %d, line %d", reason, l, text, off, line)
				}
			}
			// The second not_json drop comes in the summary at end of input.
			var summary map[string]any
			for _, l := range logLines(t, logs) {
				if l["reason"] == telemetry.DropNotJSON && strings.Contains(l["msg"].(string), "more records") {
					summary = l
				}
			}
			if summary == nil || summary["records"] != 1.0 || summary["line"] != 7.0 ||
				summary["offset"] != float64(strings.Index(in, `{"broken"`)) {
				t.Errorf("not_json summary = %v\n%s", summary, logs)
			}
		})
	}
}

// A flood of bad lines is counted one by one but logged in a few lines.
func TestDropFloodRateLimited(t *testing.T) {
	const bad = 20000
	var b strings.Builder
	for i := 0; i < bad; i++ {
		fmt.Fprintf(&b, "garbage line %d\n{\"n\":%d}\n", i, i)
	}
	s, reg, logs := newCounted(t, []byte(b.String()), 16000)
	evs := runAll(t, s, &plugintest.Writer{})
	if len(evs) != bad {
		t.Fatalf("%d events kept, want %d", len(evs), bad)
	}
	if got := reg.Dropped("ingest", "stdin.0", telemetry.DropNotJSON).Load(); got != bad {
		t.Errorf("not_json = %d, want %d", got, bad)
	}
	var dropLines int
	var logged float64
	for _, l := range logLines(t, logs) {
		if l["reason"] == telemetry.DropNotJSON {
			dropLines++
			logged += l["records"].(float64)
		}
	}
	// First line at once, a summary per 10 s while it lasts, one at the end.
	if dropLines < 1 || dropLines > 5 {
		t.Errorf("%d log lines for %d drops, want a handful:\n%.2000s", dropLines, bad, logs)
	}
	if logged != bad {
		t.Errorf("log lines account for %v records, want %d", logged, bad)
	}
	if js := string(reg.MetricsJSON()); !strings.Contains(js, `"dropped":{"ingest":{"stdin.0":{"not_json":20000,`) {
		t.Errorf("the count is not in /api/v1/metrics: %s", js)
	}
}
