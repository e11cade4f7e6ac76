package grep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// ---- helpers ----

func kv(pairs ...any) event.Map { return plugintest.KV(pairs...) }

var groupStart, groupEnd = plugintest.GroupStart, plugintest.GroupEnd

func mkChunk(bodies ...any) *chunk.Chunk { return plugintest.Chunk(bodies...) }

func records(t *testing.T, out []*chunk.Chunk) []string {
	t.Helper()
	return plugintest.Bodies(t, out)
}

func props(lines ...string) *plugin.Props { return plugintest.Props(Spec(), lines...) }

func newFilter(t *testing.T, lines ...string) plugin.Filter {
	t.Helper()
	return plugintest.NewFilter(t, Spec(), lines...)
}

func run(t *testing.T, f plugin.Filter, c *chunk.Chunk) []*chunk.Chunk {
	t.Helper()
	return plugintest.Run(t, f, c)
}

// ---- tests ----

func TestGrep(t *testing.T) {
	logs := []any{kv("log", "aaa"), kv("log", "aab"), kv("log", "bbb"), kv("log", "ccc")}
	cases := []struct {
		name  string
		rules []string
		in    []any
		want  []string
	}{
		{"regex keeps matches", []string{"regex log aa"}, logs,
			[]string{`{"log":"aaa"}`, `{"log":"aab"}`}},
		{"regex is an unanchored search", []string{"regex log b$"}, logs,
			[]string{`{"log":"aab"}`, `{"log":"bbb"}`}},
		{"exclude drops matches", []string{"exclude log ^a"}, logs,
			[]string{`{"log":"bbb"}`, `{"log":"ccc"}`}},
		{"rule name is case-insensitive", []string{"Regex log ^c"}, logs,
			[]string{`{"log":"ccc"}`}},
		{"regex with spaces keeps the rest verbatim", []string{"regex log a b"},
			[]any{kv("log", "a b"), kv("log", "ab")}, []string{`{"log":"a b"}`}},
		{"extra separator becomes part of the regex", []string{"regex log  b"},
			[]any{kv("log", "a b"), kv("log", "ab")}, []string{`{"log":"a b"}`}},
		{"missing key never matches a regex", []string{"regex level x"},
			[]any{kv("log", "x"), kv("level", "x")}, []string{`{"level":"x"}`}},
		{"missing key never matches an exclude", []string{"exclude level x"},
			[]any{kv("log", "x"), kv("level", "x")}, []string{`{"log":"x"}`}},
		{"numbers, booleans, nil, binary and containers never match",
			[]string{"regex v ."},
			[]any{kv("v", int64(1)), kv("v", 1.5), kv("v", true), kv("v", nil), kv("v", []byte("bin")),
				kv("v", kv("a", "b")), kv("v", []any{"a"}), kv("v", "s")},
			[]string{`{"v":"s"}`}},
		{"last duplicate key wins", []string{"regex k ^2$"},
			[]any{kv("k", "1", "k", "2"), kv("k", "2", "k", "1")}, []string{`{"k":"1","k":"2"}`}},
		{"nested record accessor", []string{"exclude $kubernetes['labels']['app'] myapp"},
			[]any{
				kv("log", "1", "kubernetes", kv("labels", kv("app", "myapp"))),
				kv("log", "2", "kubernetes", kv("labels", kv("app", "other"))),
				kv("log", "3", "kubernetes", kv("labels", "none")),
				kv("log", "4"),
			},
			[]string{`{"log":"2","kubernetes":{"labels":{"app":"other"}}}`, `{"log":"3","kubernetes":{"labels":"none"}}`, `{"log":"4"}`}},
		{"array index", []string{"regex $a[1] ^y$"},
			[]any{kv("a", []any{"x", "y"}), kv("a", []any{"y"}), kv("a", []any{"y", "x"})},
			[]string{`{"a":["x","y"]}`}},
		{"subkeys on a scalar match the scalar (upstream quirk)", []string{"regex $log['x'] ^abc"},
			[]any{kv("log", "abc"), kv("log", kv("x", "zzz"))}, []string{`{"log":"abc"}`}},
		{"a plain key stops at a dot, as $log.level does upstream", []string{"regex log.level ^err"},
			[]any{kv("log.level", "error", "log", "x"), kv("log", "error")}, []string{`{"log":"error"}`}},
		{"nested key with dots inside quotes", []string{"regex $k['a.b'] ^1$"},
			[]any{kv("k", kv("a.b", "1")), kv("k", kv("a", kv("b", "1")))}, []string{`{"k":{"a.b":"1"}}`}},
		{"caret matches at line starts, as in Ruby", []string{"regex log ^b"},
			[]any{kv("log", "a\nb"), kv("log", "ab")}, []string{`{"log":"a\nb"}`}},
		{"/re/i ignores case", []string{"regex log /^ERR/i"},
			[]any{kv("log", "error"), kv("log", "warn")}, []string{`{"log":"error"}`}},
		{"/re/ is re", []string{"regex log /^a/"},
			[]any{kv("log", "a"), kv("log", "/a/")}, []string{`{"log":"a"}`}},
		{"/re/q is literal", []string{"regex log /a/q"},
			[]any{kv("log", "a"), kv("log", "x/a/q")}, []string{`{"log":"x/a/q"}`}},
		{"\\h is a hex digit", []string{`regex id ^\h+$`},
			[]any{kv("id", "c0ffee"), kv("id", "coffee")}, []string{`{"id":"c0ffee"}`}},

		// legacy mode, rules in order
		{"legacy: the first matching regex keeps at once", []string{"regex a x", "regex b y"},
			[]any{kv("a", "x", "b", "n"), kv("a", "n", "b", "y"), kv("a", "x", "b", "y")},
			[]string{`{"a":"x","b":"n"}`, `{"a":"x","b":"y"}`}},
		{"legacy: a matching regex skips later excludes", []string{"regex a x", "exclude b y"},
			[]any{kv("a", "x", "b", "y"), kv("a", "n", "b", "n")},
			[]string{`{"a":"x","b":"y"}`}},
		{"legacy: excludes first, then one regex", []string{"exclude b y", "exclude c z", "regex a x"},
			[]any{kv("a", "x", "b", "y"), kv("a", "x", "c", "z"), kv("a", "x"), kv("a", "n")},
			[]string{`{"a":"x"}`}},
		{"legacy: only excludes", []string{"exclude b y", "exclude c z"},
			[]any{kv("b", "y"), kv("c", "z"), kv("d", "w")}, []string{`{"d":"w"}`}},
		{"unknown logical_op is legacy", []string{"logical_op xor", "regex a x", "regex b y"},
			[]any{kv("a", "x", "b", "n")}, []string{`{"a":"x","b":"n"}`}},

		// AND / OR
		{"AND regex: all must match", []string{"logical_op AND", "regex a x", "regex b y"},
			[]any{kv("a", "x", "b", "n"), kv("a", "n", "b", "y"), kv("a", "x", "b", "y")},
			[]string{`{"a":"x","b":"y"}`}},
		{"OR regex: any may match", []string{"logical_op or", "regex a x", "regex b y"},
			[]any{kv("a", "x", "b", "n"), kv("a", "n", "b", "y"), kv("a", "n", "b", "n")},
			[]string{`{"a":"x","b":"n"}`, `{"a":"n","b":"y"}`}},
		{"AND exclude: drop when all match", []string{"logical_op and", "exclude a x", "exclude b y"},
			[]any{kv("a", "x", "b", "n"), kv("a", "x", "b", "y")},
			[]string{`{"a":"x","b":"n"}`}},
		{"OR exclude: drop when any matches", []string{"logical_op Or", "exclude a x", "exclude b y"},
			[]any{kv("a", "x", "b", "n"), kv("a", "n", "b", "y"), kv("a", "n", "b", "n")},
			[]string{`{"a":"n","b":"n"}`}},
		{"no rules keep everything", nil, logs,
			[]string{`{"log":"aaa"}`, `{"log":"aab"}`, `{"log":"bbb"}`, `{"log":"ccc"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilter(t, tc.rules...)
			got := records(t, run(t, f, mkChunk(tc.in...)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestGroupMarkersPassThrough(t *testing.T) {
	f := newFilter(t, "regex log ^keep")
	c := mkChunk(groupStart, kv("log", "keep 1"), kv("log", "drop"), groupEnd,
		groupStart, kv("log", "drop"), kv("log", "keep 2"), groupEnd)
	got := records(t, run(t, f, c))
	want := []string{"<start>", `{"log":"keep 1"}`, "<end>", "<start>", `{"log":"keep 2"}`, "<end>"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestKeptEventsAreByteIdentical(t *testing.T) {
	f := newFilter(t, "exclude log drop")
	keep1 := event.Event{Time: event.Time{Sec: 1, Nsec: 2}, Meta: kv("a", "b"), Body: kv("log", "x", "n", 1.25)}
	keep2 := event.Event{Time: event.Time{Sec: 3}, Body: kv("log", "y")}
	drop := event.Event{Time: event.Time{Sec: 4}, Body: kv("log", "drop")}
	c := mkChunk(keep1, drop, keep2)
	out := run(t, f, c)
	want := keep2.AppendMsgpack(keep1.AppendMsgpack(nil))
	if len(out) != 1 || !bytes.Equal(out[0].Data, want) || out[0].Records != 2 {
		t.Fatalf("got %+v", out)
	}
}

func TestUnchangedChunkIsPassedOn(t *testing.T) {
	f := newFilter(t, "regex log .")
	c := mkChunk(kv("log", "a"), kv("log", "b"))
	out := run(t, f, c)
	if len(out) != 1 || out[0] != c {
		t.Fatalf("want the input chunk itself, got %v", out)
	}
}

func TestEverythingDropped(t *testing.T) {
	f := newFilter(t, "regex log ^z")
	out := run(t, f, mkChunk(groupStart, kv("log", "a"), groupEnd))
	if out != nil {
		t.Fatalf("want no chunk, got %d", len(out))
	}
}

func TestV1Events(t *testing.T) {
	// [TIME, BODY] events, as older inputs write them.
	var data []byte
	for _, s := range []string{"a", "b"} {
		data = append(data, 0x92)
		data = event.Time{Sec: 10}.AppendMsgpack(data)
		data = kv("log", s).AppendMsgpack(data)
	}
	f := newFilter(t, "regex log b")
	got := records(t, run(t, f, &chunk.Chunk{Tag: "app.log", Type: chunk.Logs, Records: 2, Data: data}))
	if !slices.Equal(got, []string{`{"log":"b"}`}) {
		t.Errorf("got %v", got)
	}
}

func TestDecodeError(t *testing.T) {
	f := newFilter(t, "regex log b")
	c := mkChunk(kv("log", "a"))
	c.Data = c.Data[:len(c.Data)-1]
	if _, err := f.FilterChunk(context.Background(), c); err == nil {
		t.Fatal("want an error for a truncated chunk")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		rules []string
		key   string
		line  int
		msg   string
	}{
		{"bad regex", []string{"regex log ok", "regex log (unclosed"}, "regex", 11, "could not compile regex"},
		{"RE2 lacks look-ahead", []string{"exclude log a(?=b)"}, "exclude", 10, "RE2"},
		{"missing regex", []string{"regex log"}, "regex", 10, "expected KEY REGEX"},
		{"bad record accessor", []string{"regex $a[ x"}, "regex", 10, "invalid record accessor"},
		{"bad record accessor key", []string{"exclude $my-key x"}, "exclude", 10, "invalid record accessor"},
		{"AND mixes regex and exclude", []string{"logical_op AND", "regex a x", "exclude b y"}, "exclude", 12, "both 'regex' and 'exclude'"},
		{"OR mixes exclude and regex", []string{"exclude b y", "logical_op OR", "regex a x"}, "regex", 12, "both 'regex' and 'exclude'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Spec().NewFilter(context.Background(), plugin.Settings{}, props(tc.rules...))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a *config.Error, got %v", err)
			}
			if ce.Key != tc.key || ce.Line != tc.line || ce.File != "test.conf" || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("got %v; want key %s at line %d with %q", err, tc.key, tc.line, tc.msg)
			}
		})
	}
}

func TestSpecValidates(t *testing.T) {
	reg := plugin.NewRegistry().MustAdd(Spec())
	s := props("regex log a", "regex log b", "exclude x y", "logical_op OR", "match *").Section
	if errs := reg.ValidateSection(plugin.KindFilter, s); len(errs) != 0 {
		t.Fatalf("valid section rejected: %v", errs)
	}
	s = props("regexp log a", "match *").Section
	if errs := reg.ValidateSection(plugin.KindFilter, s); len(errs) != 1 || errs[0].Key != "regexp" {
		t.Fatalf("typo not reported: %v", errs)
	}
	if k, ok := Spec().Key("logical_op"); !ok || k.Default != "legacy" {
		t.Errorf("logical_op default = %q", k.Default)
	}
}

func BenchmarkGrep(b *testing.B) {
	var bodies []any
	for i := range 1000 {
		level := []string{"info", "warn", "error", "debug"}[i%4]
		bodies = append(bodies, kv(
			"log", fmt.Sprintf("2024-05-01T10:00:%02d %s request %d served in %dms", i%60, level, i, i%250),
			"stream", "stdout",
			"level", level,
			"kubernetes", kv("pod_name", fmt.Sprintf("app-%d", i%7), "namespace_name", "default",
				"labels", kv("app", []string{"web", "api", "worker"}[i%3])),
		))
	}
	c := mkChunk(bodies...)
	for _, bc := range []struct {
		name  string
		rules []string
	}{
		{"regex", []string{"regex log (error|warn)"}},
		{"exclude_nested", []string{"exclude $kubernetes['labels']['app'] ^worker$"}},
		{"and_3_rules", []string{"logical_op AND", "regex stream ^stdout$", "regex level ^(info|error)$", "regex $kubernetes['namespace_name'] default"}},
		{"keep_all", []string{"regex stream std"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := Spec().NewFilter(context.Background(), plugin.Settings{}, props(bc.rules...))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(c.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.FilterChunk(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
