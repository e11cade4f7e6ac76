package rewritetag

import (
	"context"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var kv = plugintest.KV

// render lists each output chunk as "tag(source,emits): bodies".
func render(t *testing.T, out []*chunk.Chunk) []string {
	t.Helper()
	var got []string
	for _, c := range out {
		var bodies []string
		it := event.NewIter(c.Data)
		n := 0
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind() == event.KindRecord {
				n++
			}
			bodies = append(bodies, plugintest.Render(ev.Body))
		}
		if n != c.Records {
			t.Errorf("chunk %s says %d records, holds %d", c.Tag, c.Records, n)
		}
		got = append(got, c.Tag+"("+c.Source+","+string(rune('0'+c.Emits))+"): "+strings.Join(bodies, " "))
	}
	return got
}

func TestRules(t *testing.T) {
	cases := []struct {
		name  string
		tag   string
		rules []string
		in    []any
		want  []string
	}{
		{
			// Fluent Bit's documentation example (dummy input, Tag test_tag).
			name:  "documented example",
			tag:   "test_tag",
			rules: []string{`rule $tool ^(fluent)$ from.$TAG.new.$tool.$sub['s1']['s2'].out false`, "emitter_name re_emitted"},
			in:    []any{kv("tool", "fluent", "sub", kv("s1", kv("s2", "bit")))},
			want:  []string{`from.test_tag.new.fluent.bit.out(re_emitted,1): {"tool":"fluent","sub":{"s1":{"s2":"bit"}}}`},
		},
		{
			name:  "tag parts and captures, keep",
			tag:   "kube.var.log.containers.app",
			rules: []string{`rule $log ^(\w+)\s(\w+)$ $TAG[4].$2.$1.$0 true`},
			in:    []any{kv("log", "hello world"), kv("log", "no match here")},
			want: []string{
				`kube.var.log.containers.app(,0): {"log":"hello world"} {"log":"no match here"}`,
				`app.world.hello.hello world(emitter_for_rewrite_tag.0,1): {"log":"hello world"}`,
			},
		},
		{
			name:  "first matching rule wins; unmatched stay",
			tag:   "app",
			rules: []string{`rule $level ^error$ alerts false`, `rule $level ^(error|warn)$ warnings false`},
			in:    []any{kv("level", "error"), kv("level", "warn"), kv("level", "info"), kv("level", int64(3)), kv("other", "error")},
			want: []string{
				`app(,0): {"level":"info"} {"level":3} {"other":"error"}`,
				`alerts(emitter_for_rewrite_tag.0,1): {"level":"error"}`,
				`warnings(emitter_for_rewrite_tag.0,1): {"level":"warn"}`,
			},
		},
		{
			name:  "every record re-routed, nothing kept",
			tag:   "app",
			rules: []string{`rule $k . to.$k false`},
			in:    []any{kv("k", "a"), kv("k", "b"), kv("k", "a")},
			want: []string{
				`to.a(emitter_for_rewrite_tag.0,1): {"k":"a"} {"k":"a"}`,
				`to.b(emitter_for_rewrite_tag.0,1): {"k":"b"}`,
			},
		},
		{
			name:  "missing tag part and key expand to nothing; an empty tag stays",
			tag:   "a.b",
			rules: []string{`rule $k ^x$ $TAG[5]$nokey false`},
			in:    []any{kv("k", "x")},
			want:  []string{`a.b(,0): {"k":"x"}`},
		},
		{
			name:  "the same tag leaves the record in place once",
			tag:   "app.web",
			rules: []string{`rule $k ^x$ $TAG true`},
			in:    []any{kv("k", "x")},
			want:  []string{`app.web(,0): {"k":"x"}`},
		},
		{
			name:  "numbers in the new tag",
			tag:   "app",
			rules: []string{`rule $msg . code.$status.$ok false`},
			in:    []any{kv("msg", "m", "status", int64(503), "ok", false)},
			want:  []string{`code.503.false(emitter_for_rewrite_tag.0,1): {"msg":"m","status":503,"ok":false}`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := plugintest.NewFilter(t, Spec(), tc.rules...)
			c := plugintest.Chunk(tc.in...)
			c.Tag = tc.tag
			out := plugintest.Run(t, f, c)
			got := render(t, out)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestReEmittedBytesAndUnchangedChunk(t *testing.T) {
	f := plugintest.NewFilter(t, Spec(), `rule $k ^x$ new false`)
	c := plugintest.Chunk(kv("k", "x"))
	out := plugintest.Run(t, f, c)
	if len(out) != 1 || string(out[0].Data) != string(c.Data) {
		t.Error("a re-emitted record must keep its time and metadata byte for byte")
	}
	c2 := plugintest.Chunk(kv("k", "y"))
	c2.Emits = 2
	if out := plugintest.Run(t, f, c2); len(out) != 1 || out[0] != c2 {
		t.Error("a chunk with no match should pass on as is")
	}
	c2 = plugintest.Chunk(kv("k", "x"))
	c2.Emits = 2
	if out := plugintest.Run(t, f, c2); out[0].Emits != 3 {
		t.Errorf("emits = %d, want the incoming count plus one", out[0].Emits)
	}
	if f.(plugin.Emitter).EmitterName() != "emitter_for_rewrite_tag.0" {
		t.Errorf("emitter name %q", f.(plugin.Emitter).EmitterName())
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		lines []string
		want  string
	}{
		{nil, "at least one rule"},
		{[]string{"rule $k x y"}, "want 4 fields"},
		{[]string{"rule $k (x new false"}, "rule regex"},
		{[]string{"rule $k x new maybe"}, "not a boolean"},
		{[]string{"rule $k x new.$TAG[a] false"}, "$TAG[n] needs a number"},
		{[]string{"rule $k x new false", "rule $k[ x new false"}, "rule key"},
	}
	for _, tc := range cases {
		spec := Spec()
		err := spec.Check(context.Background(), plugin.Settings{Name: "rewrite_tag.0"}, plugintest.Props(spec, tc.lines...))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.conf:") {
			t.Errorf("%v: err = %v, want a positioned error containing %q", tc.lines, err, tc.want)
		}
	}
}

func BenchmarkRewriteTag(b *testing.B) {
	f := plugintest.NewFilter(b, Spec(), `rule $level ^(error)$ alerts.$TAG.$1 true`)
	var in []any
	for i := range 100 {
		level := "info"
		if i%10 == 0 {
			level = "error"
		}
		in = append(in, kv("log", "GET /index.html 200", "level", level, "k8s", kv("pod", "web-1")))
	}
	c := plugintest.Chunk(in...)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.FilterChunk(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
}
