package otelwasm

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/wasmhost"
)

// The guests are internal/otelwasm's (built by its testdata/build.sh).
const guestDir = "../../../otelwasm/testdata/"

var (
	rtOnce sync.Once
	rtErr  error
	testRT *wasmhost.Runtime
)

func runtime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	rtOnce.Do(func() { testRT, rtErr = wasmhost.New(context.Background(), wasmhost.Options{}) })
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return testRT
}

func newFilter(t testing.TB, lines ...string) (*Filter, error) {
	t.Helper()
	return NewWithOptions(context.Background(), plugin.Settings{Name: "otelwasm.0"},
		plugintest.Props(Spec(), lines...), Options{Runtime: runtime(t)})
}

func mustFilter(t testing.TB, lines ...string) *Filter {
	t.Helper()
	f, err := newFilter(t, lines...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

// records decodes a filter's output: body rendered, and the OTLP attributes.
func records(t *testing.T, out []*chunk.Chunk) (bodies []string, attrs []event.Map) {
	t.Helper()
	for _, c := range out {
		it := event.NewIter(c.Data)
		n := 0
		for it.Next() {
			raw := it.Event()
			if raw.Kind() != event.KindRecord {
				continue
			}
			ev, err := raw.Decode()
			if err != nil {
				t.Fatal(err)
			}
			n++
			bodies = append(bodies, plugintest.Render(ev.Body))
			otlp, _ := ev.Meta.Get("otlp")
			om, _ := otlp.(event.Map)
			a, _ := om.Get("attributes")
			am, _ := a.(event.Map)
			attrs = append(attrs, am)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != c.Records {
			t.Fatalf("chunk says %d records, holds %d", c.Records, n)
		}
	}
	return bodies, attrs
}

func inputChunk(n int) *chunk.Chunk {
	var bodies []any
	for i := range n {
		if i%3 == 2 {
			bodies = append(bodies, event.Event{Time: event.Time{Sec: 1700000000}, Meta: plugintest.KV("env", "prod"),
				Body: plugintest.KV("msg", fmt.Sprintf("m%d", i))})
			continue
		}
		bodies = append(bodies, plugintest.KV("msg", fmt.Sprintf("m%d", i)))
	}
	c := plugintest.Chunk(bodies...)
	c.Records = n
	return c
}

// The acceptance test: a Go guest written against ABI v1 (attributes-style
// processor inserting an attribute) changes every log passing through.
func TestInsertAttributeEveryLog(t *testing.T) {
	for name, cfg := range map[string][]string{
		"json":   {`plugin_config {"actions":[{"key":"inserted","action":"insert","value":"hello-from-wasm"},{"key":"env","action":"insert","value":"dev"}]}`},
		"dotted": {"plugin_config.actions.0.key inserted", "plugin_config.actions.0.action insert", "plugin_config.actions.0.value hello-from-wasm", "plugin_config.actions.1.key env", "plugin_config.actions.1.action insert", "plugin_config.actions.1.value dev"},
	} {
		t.Run(name, func(t *testing.T) {
			f := mustFilter(t, append([]string{"path " + guestDir + "attrproc.wasm"}, cfg...)...)
			const n = 300
			out := plugintest.Run(t, f, inputChunk(n))
			bodies, attrs := records(t, out)
			if len(bodies) != n {
				t.Fatalf("got %d records, want %d", len(bodies), n)
			}
			seen := map[string]int{}
			for i, b := range bodies {
				seen[b]++
				if v, _ := attrs[i].Get("inserted"); v != "hello-from-wasm" {
					t.Fatalf("record %s: inserted=%v (attributes %s)", b, v, plugintest.Render(attrs[i]))
				}
				env, _ := attrs[i].Get("env")
				want := "dev"
				if strings.Contains(b, "m") && i%3 == 2 {
					want = "prod" // insert keeps an attribute already there
				}
				if env != want {
					t.Fatalf("record %s: env=%v, want %s", b, env, want)
				}
			}
			for i := range n {
				b := fmt.Sprintf(`{"msg":"m%d"}`, i)
				if seen[b] != 1 {
					t.Errorf("record %s seen %d times", b, seen[b])
				}
			}
		})
	}
}

func TestTracesChunkPassedAsOTLP(t *testing.T) {
	f := mustFilter(t, "path "+guestDir+"attrproc.wasm", `plugin_config {"actions":[{"key":"k","action":"insert","value":"v"}]}`)
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	spans.AppendEmpty().SetName("a")
	spans.AppendEmpty().SetName("b")
	data, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	out, err := f.FilterChunk(context.Background(), &chunk.Chunk{Tag: "t", Type: chunk.Traces, Records: 2, Data: data})
	if err != nil || len(out) != 1 || out[0].Records != 2 || out[0].Type != chunk.Traces {
		t.Fatalf("out=%v err=%v", out, err)
	}
	got, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(out[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 2; k++ {
		if v, _ := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(k).Attributes().Get("k"); v.Str() != "v" {
			t.Fatalf("span %d: k=%q", k, v.Str())
		}
	}
}

func TestOnError(t *testing.T) {
	for _, mode := range []string{"keep", "drop"} {
		f := mustFilter(t, "path "+guestDir+"attrproc.wasm", `plugin_config {"fail":"refused"}`, "on_error "+mode)
		in := inputChunk(4)
		out := plugintest.Run(t, f, in)
		if mode == "keep" && (len(out) != 1 || out[0] != in) {
			t.Fatalf("keep: want the input chunk unchanged, got %v", out)
		}
		if mode == "drop" && len(out) != 0 {
			t.Fatalf("drop: want nothing, got %d chunks", len(out))
		}
	}
}

func TestMissingMarkerRefusedAtStart(t *testing.T) {
	_, err := newFilter(t, "path "+guestDir+"nomarker.wasm")
	var ce *config.Error
	if err == nil || !strings.Contains(err.Error(), "abi_version_v1") || !asConfigErr(err, &ce) || ce.Key != "path" {
		t.Fatalf("want a refusal naming abi_version_v1 at key path, got %v", err)
	}
}

func asConfigErr(err error, target **config.Error) bool {
	ce, ok := err.(*config.Error)
	if ok {
		*target = ce
	}
	return ok
}

func TestConfigErrors(t *testing.T) {
	p := guestDir + "attrproc.wasm"
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{}, "no OTelWasm module path"},
		{[]string{"path " + p, "plugin_config {nope"}, "not a JSON value"},
		{[]string{"path " + p, "plugin_config {}", "plugin_config.a b"}, "both as a value and as keys"},
		{[]string{"path " + p, "plugin_config.a.2 x"}, "array index skips"},
		{[]string{"path " + p, "pluginconfig x"}, "unknown key"},
		{[]string{"path " + p, `plugin_config {"actions":[{"value":"x"}]}`}, "action without key"},
	} {
		_, err := newFilter(t, tc.lines...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want error containing %q, got %v", tc.lines, tc.want, err)
		}
	}
}

func TestPluginConfigShapes(t *testing.T) {
	sec := &config.Section{Type: "filter", File: "t.yaml"}
	sec.Props = []config.Prop{{Key: "name", Value: "otelwasm"}, {Key: "plugin_config.b.0", Value: "x"}, {Key: "plugin_config.b.1", Value: "7"}}
	sec.Groups = []*config.Group{{Name: "plugin_config", Props: []config.Prop{{Key: "a", Value: "true"}, {Key: "l", Value: "1"}, {Key: "l", Value: "two"}}}}
	got, err := pluginConfig(plugin.NewProps(Spec(), sec))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":true,"b":["x",7],"l":[1,"two"]}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// YAML: plugin_config as nested maps and lists, as an OTel collector
// config gives it, reaches the guest as the same JSON.
func TestYAMLPluginConfig(t *testing.T) {
	doc := `pipeline:
  filters:
    - name: otelwasm
      match: '*'
      path: ` + guestDir + `attrproc.wasm
      plugin_config:
        actions:
          - key: inserted
            action: insert
            value: hello-from-wasm
          - key: n
            action: upsert
            value: "7"
`
	cfg, err := config.ParseYAML("t.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := plugin.NewProps(Spec(), cfg.Filters[0])
	got, err := pluginConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"actions":[{"action":"insert","key":"inserted","value":"hello-from-wasm"},{"action":"upsert","key":"n","value":"7"}]}`; string(got) != want {
		t.Fatalf("plugin_config JSON %s, want %s", got, want)
	}
	f, err := NewWithOptions(context.Background(), plugin.Settings{Name: "otelwasm.0"}, p, Options{Runtime: runtime(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(context.Background())
	_, attrs := records(t, plugintest.Run(t, f, inputChunk(3)))
	for _, a := range attrs {
		if v, _ := a.Get("inserted"); v != "hello-from-wasm" {
			t.Fatalf("attributes %s", plugintest.Render(a))
		}
	}
}

// Chunks filtered at once share the pool: each comes back whole, changed.
func TestConcurrentChunks(t *testing.T) {
	f := mustFilter(t, "path "+guestDir+"attrproc.wasm", `plugin_config {"actions":[{"key":"inserted","action":"insert","value":"v"}]}`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.FilterChunk(context.Background(), inputChunk(20+g))
			if err != nil {
				errs <- err
				return
			}
			if len(out) != 1 || out[0].Records != 20+g {
				errs <- fmt.Errorf("goroutine %d: %d chunks", g, len(out))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
