package multiline

import (
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var kv = plugintest.KV

const dockerID = "dc37eb08b4242c41757d4cd995d983d1cdda4589193755a22fcf47a638317da0"

// piece is a record as Docker's fluentd log driver sends a split line
// (Fluent Bit's documentation example).
func piece(id, ordinal, last, log string) event.Map {
	return kv("source", "stdout", "log", log, "partial_message", "true", "partial_id", id,
		"partial_ordinal", ordinal, "partial_last", last,
		"container_id", "a96998303938eab6087a7f8487ca40350f2c252559bc6047569a0b11b936f0f2", "container_name", "/hopeful_taussig")
}

func joined(log string) string {
	return `{"source":"stdout","container_id":"a96998303938eab6087a7f8487ca40350f2c252559bc6047569a0b11b936f0f2",` +
		`"container_name":"/hopeful_taussig","log":"` + log + `"}`
}

func bodies(t *testing.T, out []*chunk.Chunk) []string {
	t.Helper()
	var got []string
	for _, c := range out {
		got = append(got, plugintest.Bodies(t, []*chunk.Chunk{c})...)
	}
	return got
}

// A line split in three pieces over two chunks comes out as one record
// with the first piece's time, the partial_* keys gone and the text joined;
// records that are not pieces pass in their place.
func TestPartialMessageJoinsDockerPieces(t *testing.T) {
	f, _ := newFilter(t, "mode partial_message", "multiline.key_content log")
	first := plugintest.Chunk(kv("log", "before"), piece(dockerID, "1", "false", "aaa"), piece(dockerID, "2", "false", "bbb"))
	out := plugintest.Run(t, f, first)
	if got := bodies(t, out); len(got) != 1 || got[0] != `{"log":"before"}` {
		t.Fatalf("first chunk: %q", got)
	}
	second := plugintest.Chunk(piece(dockerID, "3", "true", "ccc"), kv("log", "after"))
	out = plugintest.Run(t, f, second)
	got := bodies(t, out)
	if len(got) != 2 || got[0] != joined("aaabbbccc") || got[1] != `{"log":"after"}` {
		t.Fatalf("second chunk:\n%s", strings.Join(got, "\n"))
	}
	ev, _, err := event.ParseEvent(out[0].Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Time.Sec != 1700000001 {
		t.Errorf("joined record time %v, want the first piece's (1700000001)", ev.Time)
	}
	if string(ev.Meta) != "\x80" {
		t.Errorf("joined record metadata %x, want empty as upstream", ev.Meta)
	}
	if f.FlushPending(t.Context(), time.Now().Add(time.Hour), true) != nil {
		t.Error("a completed line is still held")
	}
}

func TestPartialMessageLinesKeptApart(t *testing.T) {
	f, _ := newFilter(t, "mode partial_message", "multiline.key_content log")
	c := plugintest.Chunk(piece("a", "1", "false", "a1"), piece("b", "1", "false", "b1"), piece("a", "2", "true", "a2"))
	if got := bodies(t, plugintest.Run(t, f, c)); len(got) != 1 || got[0] != joined("a1a2") {
		t.Fatalf("got %q", got)
	}
	// The same id under another tag or from another input is another line.
	other := plugintest.Chunk(piece("b", "2", "true", "X"))
	other.Source = "forward.1"
	if got := bodies(t, plugintest.Run(t, f, other)); len(got) != 1 || got[0] != joined("X") {
		t.Fatalf("other input: %q", got)
	}
	c = plugintest.Chunk(piece("b", "2", "TRUE", "b2"))
	if got := bodies(t, plugintest.Run(t, f, c)); len(got) != 1 || got[0] != joined("b1b2") {
		t.Fatalf("got %q", got)
	}
}

// A line whose last piece never comes is passed on, as far as it got, once
// flush_ms passed since its latest piece.
func TestPartialMessageReleasedAfterFlushMs(t *testing.T) {
	f, clk := newFilter(t, "mode partial_message", "multiline.key_content log", "flush_ms 500")
	plugintest.Run(t, f, plugintest.Chunk(piece("a", "1", "false", "one"), piece("z", "1", "false", "zed")))
	clk.t = clk.t.Add(400 * time.Millisecond)
	plugintest.Run(t, f, plugintest.Chunk(piece("a", "2", "false", "two")))
	if out := f.FlushPending(t.Context(), clk.t.Add(200*time.Millisecond), false); len(bodies(t, out)) != 1 ||
		bodies(t, out)[0] != joined("zed") {
		t.Fatalf("after 600ms: %q, want only the line idle for 600ms", bodies(t, out))
	}
	out := f.FlushPending(t.Context(), clk.t.Add(600*time.Millisecond), false)
	if got := bodies(t, out); len(got) != 1 || got[0] != joined("onetwo") || out[0].Source != "" || out[0].Tag != plugintest.Tag {
		t.Fatalf("got %q", got)
	}
	if out := f.FlushPending(t.Context(), clk.t.Add(time.Hour), true); len(out) != 0 {
		t.Errorf("released twice: %q", bodies(t, out))
	}
}

func TestPartialMessageNonPiecesPassUnchanged(t *testing.T) {
	f, _ := newFilter(t, "mode partial_message", "multiline.key_content log")
	in := plugintest.Chunk(
		kv("log", "plain"),
		kv("log", "no id", "partial_message", "true"),
		kv("log", "not partial", "partial_message", "false", "partial_id", "x"),
		kv("msg", "no content key", "partial_message", "true", "partial_id", "y"),
		kv("log", int64(5), "partial_message", "true", "partial_id", "z"),
	)
	out := plugintest.Run(t, f, in)
	if len(out) != 1 || out[0] != in {
		t.Fatalf("a chunk without pieces was rebuilt: %q", bodies(t, out))
	}
}
