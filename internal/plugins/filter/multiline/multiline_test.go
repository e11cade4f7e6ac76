package multiline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// Fluent Bit's documentation example (filter multiline, test.log).
var javaTrace = []string{
	`Dec 14 06:41:08 Exception in thread "main" java.lang.RuntimeException: Something has gone wrong, aborting!`,
	`    at com.myproject.module.MyProject.badMethod(MyProject.java:22)`,
	`    at com.myproject.module.MyProject.oneMoreMethod(MyProject.java:18)`,
	`    at com.myproject.module.MyProject.anotherMethod(MyProject.java:14)`,
	`    at com.myproject.module.MyProject.someMethod(MyProject.java:10)`,
	`    at com.myproject.module.MyProject.main(MyProject.java:6)`,
}

var pythonTrace = []string{
	`Traceback (most recent call last):`,
	`  File "/base/data/home/runtimes/python27/python27_lib/versions/third_party/webapp2-2.5.2/webapp2.py", line 1535, in __call__`,
	`    rv = self.handle_exception(request, response, e)`,
	`  File "/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py", line 17, in start`,
	`    return get()`,
	`  File "/base/data/home/apps/s~nearfieldspy/1.378705245900539993/nearfieldspy.py", line 5, in get`,
	`    raise Exception('spam', 'eggs')`,
	`Exception: ('spam', 'eggs')`,
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newFilter(t *testing.T, lines ...string) (*Filter, *clock) {
	t.Helper()
	f := plugintest.NewFilter(t, Spec(), lines...).(*Filter)
	c := &clock{t: time.Unix(1700000000, 0)}
	f.now = c.now
	return f, c
}

// lines makes one chunk of {"log": line, "stream": "stdout"} records.
func lines(ls ...string) *chunk.Chunk {
	var bodies []any
	for _, l := range ls {
		bodies = append(bodies, plugintest.KV("log", l, "stream", "stdout"))
	}
	return plugintest.Chunk(bodies...)
}

func logs(t *testing.T, out []*chunk.Chunk) []string {
	t.Helper()
	var got []string
	for _, c := range out {
		if c.Records == 0 {
			continue
		}
		it := event.NewIter(c.Data)
		n := 0
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			n++
			v, _ := ev.Body.Get("log")
			s, _ := v.(string)
			if st, _ := ev.Body.Get("stream"); st != "stdout" {
				t.Errorf("record %q lost its other keys: %v", s, plugintest.Render(ev.Body))
			}
			got = append(got, s)
		}
		if n != c.Records {
			t.Errorf("chunk says %d records, holds %d", c.Records, n)
		}
	}
	return got
}

func join(ls []string) string { return strings.Join(ls, "\n") + "\n" }

func TestTracesSplitAcrossThreeChunks(t *testing.T) {
	f, clk := newFilter(t, "multiline.key_content log", "multiline.parser java,python")
	// The traces are cut in three chunks, mid-trace each time.
	c1 := lines(append([]string{"single line..."}, javaTrace[:3]...)...)
	c2 := lines(append(append([]string{}, javaTrace[3:]...), pythonTrace[:4]...)...)
	c3 := lines(append(append([]string{}, pythonTrace[4:]...), "another line...")...)
	var got []string
	for _, c := range []*chunk.Chunk{c1, c2, c3} {
		got = append(got, logs(t, plugintest.Run(t, f, c))...)
		clk.t = clk.t.Add(100 * time.Millisecond)
	}
	want := []string{"single line...", join(javaTrace), join(pythonTrace), "another line..."}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %d records:\n%q\nwant:\n%q", len(got), got, want)
	}
	if out := f.FlushPending(context.Background(), clk.t.Add(time.Hour), true); len(out) != 0 {
		t.Errorf("nothing should be held, got %q", logs(t, out))
	}
}

func TestHeldRecordFlushedAfterFlushMs(t *testing.T) {
	f, clk := newFilter(t, "multiline.key_content log", "multiline.parser java", "flush_ms 500")
	out := plugintest.Run(t, f, lines(javaTrace...))
	if got := logs(t, out); len(got) != 0 {
		t.Fatalf("an open trace should be held, got %q", got)
	}
	if out := f.FlushPending(context.Background(), clk.t.Add(499*time.Millisecond), false); len(out) != 0 {
		t.Fatalf("flushed before flush_ms: %q", logs(t, out))
	}
	out = f.FlushPending(context.Background(), clk.t.Add(500*time.Millisecond), false)
	if got := logs(t, out); len(got) != 1 || got[0] != join(javaTrace) {
		t.Fatalf("after flush_ms got %q", got)
	}
	if out[0].Tag != plugintest.Tag || out[0].Type != chunk.Logs {
		t.Errorf("flushed chunk tag/type %q/%q", out[0].Tag, out[0].Type)
	}
	// The joined record has the first line's time.
	ev, _, _ := event.ParseEvent(out[0].Data, 0)
	if ev.Time.Sec != 1700000000 {
		t.Errorf("time %v, want the first line's", ev.Time)
	}
}

func TestStatePerTagAndInput(t *testing.T) {
	f, clk := newFilter(t, "multiline.key_content log", "multiline.parser java")
	a := lines(javaTrace[:2]...)
	b := lines(javaTrace[:2]...)
	b.Tag = "other"
	plugintest.Run(t, f, a)
	if _, err := f.FilterChunk(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	a2 := lines(javaTrace[2:]...)
	a2.Source = "tail.1" // another input with the same tag: its own stream
	// Continuation lines of another input start nothing and pass on alone.
	if got := logs(t, plugintest.Run(t, f, a2)); len(got) != len(javaTrace)-2 || got[0] != javaTrace[2] {
		t.Fatalf("tail.1's lines: %q", got)
	}
	out := f.FlushPending(context.Background(), clk.t, true)
	var got []string
	for _, c := range out {
		for _, l := range logs(t, []*chunk.Chunk{c}) {
			got = append(got, c.Tag+"/"+c.Source+":"+l)
		}
	}
	if len(got) != 2 {
		t.Fatalf("got %q, want the two open traces of app.log and other", got)
	}
	for _, g := range got {
		if !strings.HasSuffix(g, join(javaTrace[:2])) || !(strings.HasPrefix(g, "app.log/:") || strings.HasPrefix(g, "other/:")) {
			t.Errorf("unexpected %q", g)
		}
	}
}

func TestBufferOffJoinsWithinChunk(t *testing.T) {
	f, _ := newFilter(t, "multiline.key_content log", "multiline.parser java", "buffer off")
	got := logs(t, plugintest.Run(t, f, lines(javaTrace[:3]...)))
	got = append(got, logs(t, plugintest.Run(t, f, lines(javaTrace[3:]...)))...)
	if len(got) != 4 || got[0] != join(javaTrace[:3]) {
		t.Fatalf("got %q: want the first chunk's lines joined, the rest alone", got)
	}
}

func TestPassThrough(t *testing.T) {
	f, _ := newFilter(t, "multiline.key_content log", "multiline.parser python")
	c := plugintest.Chunk(plugintest.KV("msg", "no log key"), plugintest.KV("log", int64(3)),
		plugintest.KV("log", "plain", "stream", "stdout"))
	out := plugintest.Run(t, f, c)
	got := plugintest.Bodies(t, out)
	want := `{"msg":"no log key"} {"log":3} {"log":"plain","stream":"stdout"}`
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v", got)
	}
	// Unjoined records are copied byte for byte (metadata included).
	if string(out[0].Data) != string(c.Data) {
		t.Error("unjoined records were re-encoded")
	}
}

func TestUserParserAndDocker(t *testing.T) {
	secs := []*config.Section{{Type: "multiline_parser", File: "p.conf", Line: 1, Props: []config.Prop{
		{Key: "name", Value: "multiline-regex-test"},
		{Key: "type", Value: "regex"},
		{Key: "flush_timeout", Value: "1000"},
		{Key: "rule", Value: `"start_state" "/([a-zA-Z]+ \d+ \d+\:\d+\:\d+)(.*)/" "cont"`},
		{Key: "rule", Value: `"cont" "/^\s+at.*/" "cont"`},
	}}}
	spec := Spec()
	f, err := spec.NewFilter(context.Background(), plugin.Settings{MultilineParsers: secs},
		plugintest.Props(spec, "multiline.key_content log", "multiline.parser multiline-regex-test"))
	if err != nil {
		t.Fatal(err)
	}
	got := logs(t, plugintest.Run(t, f, lines(append(append([]string{}, javaTrace...), "Dec 14 06:41:09 next")...)))
	if len(got) != 1 || got[0] != join(javaTrace) {
		t.Fatalf("got %q", got)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		lines []string
		want  string
	}{
		{[]string{"multiline.key_content log"}, "at least one multiline.parser"},
		{[]string{"multiline.parser java"}, "multiline.key_content is required"},
		{[]string{"multiline.key_content log", "multiline.parser jaba"}, `unknown multiline parser "jaba"`},
		{[]string{"multiline.key_content log", "multiline.parser java", "mode partial_message"}, "cannot be used with mode partial_message"},
		{[]string{"mode partial_message"}, "multiline.key_content is required"},
		{[]string{"mode partial_message", "multiline.key_content log", "flush_ms -1"}, "flush_ms"},
		{[]string{"multiline.key_content log", "multiline.parser java", "flush_ms 0"}, "flush_ms"},
	}
	for _, tc := range cases {
		spec := Spec()
		err := spec.Check(context.Background(), plugin.Settings{}, plugintest.Props(spec, tc.lines...))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.conf:") {
			t.Errorf("%v: err = %v, want a positioned error containing %q", tc.lines, err, tc.want)
		}
	}
}
