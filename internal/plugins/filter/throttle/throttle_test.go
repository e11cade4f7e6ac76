package throttle

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

type clock struct{ t time.Time }

func newFilter(t *testing.T, lines ...string) (*Filter, *clock) {
	t.Helper()
	f := plugintest.NewFilter(t, Spec(), lines...).(*Filter)
	c := &clock{t: time.Unix(1700000000, 0)}
	f.now = func() time.Time { return c.t }
	return f, c
}

// send passes n records, numbered from first, and returns the numbers kept.
func send(t *testing.T, f *Filter, first, n int) []int64 {
	t.Helper()
	var bodies []any
	for i := range n {
		bodies = append(bodies, plugintest.KV("n", int64(first+i)))
	}
	out := plugintest.Run(t, f, plugintest.Chunk(bodies...))
	var kept []int64
	for _, s := range plugintest.Bodies(t, out) {
		var v int64
		for _, c := range strings.TrimSuffix(strings.TrimPrefix(s, `{"n":`), "}") {
			v = v*10 + int64(c-'0')
		}
		kept = append(kept, v)
	}
	return kept
}

func TestSlidingWindow(t *testing.T) {
	// Rate 5 over a window of 5 one-second panes: 25 records per window.
	f, clk := newFilter(t, "rate 5", "window 5", "interval 1s")
	kept := send(t, f, 0, 100)
	if len(kept) != 25 || kept[0] != 0 || kept[24] != 24 {
		t.Fatalf("first second: kept %d records (%v), want the first 25", len(kept), kept)
	}
	for s := 1; s <= 4; s++ {
		clk.t = clk.t.Add(time.Second)
		if kept := send(t, f, 100*s, 10); len(kept) != 0 {
			t.Fatalf("second %d: kept %v while the window is full", s, kept)
		}
	}
	// The first pane leaves the window: 25 more may pass.
	clk.t = clk.t.Add(time.Second)
	if kept := send(t, f, 500, 30); len(kept) != 25 || kept[0] != 500 {
		t.Fatalf("after the window: kept %d", len(kept))
	}
	// Idle far longer than the window: it is empty again.
	clk.t = clk.t.Add(time.Hour)
	if kept := send(t, f, 1000, 30); len(kept) != 25 {
		t.Fatalf("after idling: kept %d, want 25", len(kept))
	}
}

func TestSteadyRateUnderLimitPasses(t *testing.T) {
	f, clk := newFilter(t, "rate 10", "window 3", "interval 2s")
	for i := range 20 {
		if kept := send(t, f, i*9, 9); len(kept) != 9 {
			t.Fatalf("interval %d: kept %d of 9 at a rate under the limit", i, len(kept))
		}
		clk.t = clk.t.Add(2 * time.Second)
	}
}

func TestUnchangedChunkAndGroups(t *testing.T) {
	f, _ := newFilter(t, "rate 2", "window 1")
	c := plugintest.Chunk(plugintest.KV("a", 1))
	if out := plugintest.Run(t, f, c); len(out) != 1 || out[0] != c {
		t.Error("a chunk under the rate should pass on as is")
	}
	c = plugintest.Chunk(plugintest.GroupStart, plugintest.KV("a", 2), plugintest.KV("a", 3), plugintest.GroupEnd)
	if got := plugintest.Bodies(t, plugintest.Run(t, f, c)); strings.Join(got, " ") != `<start> {"a":2} <end>` {
		t.Errorf("got %v", got)
	}
	if out := plugintest.Run(t, f, plugintest.Chunk(plugintest.KV("a", 3))); out != nil {
		t.Errorf("everything dropped should give no chunk, got %d", len(out))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"rate 0", "rate"}, {"window 0", "window"}, {"interval 0", "interval"},
	} {
		spec := Spec()
		err := spec.Check(context.Background(), plugin.Settings{}, plugintest.Props(spec, tc.line))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.conf:") {
			t.Errorf("%s: err = %v", tc.line, err)
		}
	}
}
