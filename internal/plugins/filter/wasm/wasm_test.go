package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/wasmhost"
	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

var (
	rtOnce sync.Once
	rt     *wasmhost.Runtime
	rtErr  error
)

// testRuntime is one runtime for the package's tests (compiling the Go
// guest takes a while; each module is compiled once).
func testRuntime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	// The compilation cache Check's shared runtime uses too (TestMain points
	// it at a temporary directory): each guest is compiled once per test
	// binary, which counts under the race detector.
	rtOnce.Do(func() {
		rt, rtErr = wasmhost.New(context.Background(), wasmhost.Options{CacheDir: wasmhost.DefaultCacheDir("")})
	})
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

func props(t testing.TB, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeFilter, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "wasm"}, config.Prop{Key: "match", Value: "*"})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i})
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindFilter, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

type env struct {
	logs *syncBuf
	reg  *telemetry.Registry
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func settings(name string) (plugin.Settings, *env) {
	e := &env{logs: &syncBuf{}, reg: telemetry.NewRegistry("test")}
	return plugin.Settings{
		Name:      name,
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Service:   plugin.Service{JSON: event.DefaultJSON},
		Telemetry: e.reg,
	}, e
}

func newFilter(t testing.TB, opts Options, kv ...string) (*Filter, *env) {
	t.Helper()
	set, e := settings("wasm.0")
	if opts.Runtime == nil {
		opts.Runtime = testRuntime(t)
	}
	f, err := NewWithOptions(context.Background(), set, props(t, kv...), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f, e
}

var t0 = event.Time{Sec: 1700000000, Nsec: 5}

// chunkOf builds a v2 chunk of JSON records, each with metadata {"m":i}.
func chunkOf(t testing.TB, tag string, records ...string) *chunk.Chunk {
	t.Helper()
	var data []byte
	for i, r := range records {
		body, err := event.AppendFromJSON(nil, []byte(r))
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		meta := event.Map{{Key: "m", Value: int64(i)}}.AppendMsgpack(nil)
		data = event.AppendRaw(data, event.Time{Sec: t0.Sec + int64(i), Nsec: t0.Nsec}, meta, body)
	}
	return &chunk.Chunk{Tag: tag, Type: chunk.Logs, Records: len(records), Data: data}
}

type rec struct {
	Time event.Time
	Meta string
	Body string
}

// decode renders the records of chunks (group markers included) as JSON.
func decode(t testing.TB, cs []*chunk.Chunk) []rec {
	t.Helper()
	var out []rec
	for _, c := range cs {
		it := event.NewIter(c.Data)
		n := 0
		for it.Next() {
			ev := it.Event()
			d, err := ev.Decode()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rec{Time: d.Time,
				Meta: string(event.AppendJSON(nil, d.Meta, event.DefaultJSON)),
				Body: string(event.AppendJSON(nil, d.Body, event.DefaultJSON))})
			if ev.Kind() == event.KindRecord {
				n++
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != c.Records {
			t.Errorf("chunk says %d records, has %d", c.Records, n)
		}
	}
	return out
}

func bodies(rs []rec) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Body)
	}
	return out
}

func run(t testing.TB, f *Filter, c *chunk.Chunk) []rec {
	t.Helper()
	orig := append([]byte(nil), c.Data...)
	out, err := f.FilterChunk(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, c.Data) {
		t.Fatal("FilterChunk modified its input")
	}
	return decode(t, out)
}

func equal(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n got  %q\n want %q", got, want)
	}
}

// The upstream -nostdlib C example (env malloc, sprintf, printf) runs
// unchanged with the default 8 KiB heap, and every record gets its fields:
// the module leaks 1 KiB a record, and the instance is recycled before its
// heap runs out.
func TestUpstreamCFilterNostdlib(t *testing.T) {
	f, e := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_filter_nostdlib"), "function_name", "c_filter")
	var records []string
	for i := range 50 {
		records = append(records, fmt.Sprintf(`{"message":"dummy","i":%d}`, i))
	}
	got := run(t, f, chunkOf(t, "dummy.local", records...))
	if len(got) != 50 {
		t.Fatalf("%d records out of 50", len(got))
	}
	for i, r := range got {
		want := fmt.Sprintf(`{"tag":"dummy.local","time":"%d.        5","message":"Hello, from C!","original":{"message":"dummy","i":%d}}`, t0.Sec+int64(i), i)
		if r.Body != want {
			t.Fatalf("record %d:\n got  %s\n want %s", i, r.Body, want)
		}
		if r.Time != (event.Time{Sec: t0.Sec + int64(i), Nsec: 5}) || r.Meta != fmt.Sprintf(`{"m":%d}`, i) {
			t.Fatalf("record %d: time %v meta %s not kept", i, r.Time, r.Meta)
		}
	}
	m := e.reg.Wasm("wasm.0")
	if m.Recycles.Load() == 0 {
		t.Error("no recycle although the module leaks its 8 KiB heap")
	}
	if m.Calls.Load() != 50 || m.RecordsIn.Load() != 50 || m.RecordsOut.Load() != 50 || m.Drops.Load() != 0 {
		t.Errorf("metrics: calls %d in %d out %d drops %d", m.Calls.Load(), m.RecordsIn.Load(), m.RecordsOut.Load(), m.Drops.Load())
	}
}

// A Go (wasip1) filter and a C (wasi-libc) filter chained on one tag.
func TestChainGoAndC(t *testing.T) {
	goF, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "go_filter"), "function_name", "go_add_field")
	cF, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_add_fields")
	in := chunkOf(t, "app.log", `{"message":"one","n":1}`, `{"message":"two","nested":{"a":[1,null,"x"]}}`, `{}`)
	mid, err := goF.FilterChunk(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var out []*chunk.Chunk
	for _, c := range mid {
		o, err := cF.FilterChunk(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o...)
	}
	got := decode(t, out)
	equal(t, bodies(got), []string{
		`{"lang":"c","message":"one","n":1,"go":"yes"}`,
		`{"lang":"c","message":"two","nested":{"a":[1,null,"x"]},"go":"yes"}`,
		`{"lang":"c","go":"yes"}`,
	})
	for i, r := range got {
		if r.Time.Sec != t0.Sec+int64(i) || r.Meta != fmt.Sprintf(`{"m":%d}`, i) {
			t.Errorf("record %d: time %v meta %s", i, r.Time, r.Meta)
		}
	}
}

func TestDropAndInvalid(t *testing.T) {
	path := wasmtest.Path(t, "c_wasi_filter")
	t.Run("NULL drops", func(t *testing.T) {
		f, e := newFilter(t, Options{}, "wasm_path", path, "function_name", "c_drop", "on_error", "keep")
		out, err := f.FilterChunk(context.Background(), chunkOf(t, "t", `{"a":1}`, `{"b":2}`))
		if err != nil || len(out) != 0 {
			t.Fatalf("got %v %v, want nothing", out, err)
		}
		if m := e.reg.Wasm("wasm.0"); m.Drops.Load() != 2 || m.Errors.Load() != 0 {
			t.Errorf("drops %d errors %d", m.Drops.Load(), m.Errors.Load())
		}
	})
	t.Run("invalid JSON dropped", func(t *testing.T) {
		f, e := newFilter(t, Options{}, "wasm_path", path, "function_name", "c_invalid_json")
		out, err := f.FilterChunk(context.Background(), chunkOf(t, "t", `{"a":1}`))
		if err != nil || len(out) != 0 {
			t.Fatalf("got %v %v, want nothing", out, err)
		}
		if m := e.reg.Wasm("wasm.0"); m.Drops.Load() != 1 || m.Errors.Load() != 1 {
			t.Errorf("drops %d errors %d", m.Drops.Load(), m.Errors.Load())
		}
		if !strings.Contains(e.logs.String(), "invalid JSON format") {
			t.Errorf("no error logged: %s", e.logs)
		}
	})
	// The stage running the filter learns which drops were failures
	// (filter_error) and which were the module's choice (filtered).
	t.Run("failures noted to the stage", func(t *testing.T) {
		for fn, want := range map[string]int{"c_drop": 0, "c_invalid_json": 2} {
			f, _ := newFilter(t, Options{}, "wasm_path", path, "function_name", fn)
			notes := new(telemetry.DropNotes)
			out, err := f.FilterChunk(telemetry.WithDropNotes(context.Background(), notes), chunkOf(t, "t", `{"a":1}`, `{"b":2}`))
			if err != nil || len(out) != 0 {
				t.Fatalf("%s: got %v %v, want nothing", fn, out, err)
			}
			if got := notes.Take(telemetry.DropFilterError); got != want {
				t.Errorf("%s: %d records noted as filter errors, want %d", fn, got, want)
			}
		}
		f, _ := newFilter(t, Options{}, "wasm_path", path, "function_name", "c_invalid_json", "on_error", "keep")
		notes := new(telemetry.DropNotes)
		if _, err := f.FilterChunk(telemetry.WithDropNotes(context.Background(), notes), chunkOf(t, "t", `{"a":1}`)); err != nil {
			t.Fatal(err)
		}
		if got := notes.Take(telemetry.DropFilterError); got != 0 {
			t.Errorf("on_error keep noted %d drops", got)
		}
	})
	t.Run("invalid JSON kept", func(t *testing.T) {
		f, _ := newFilter(t, Options{}, "wasm_path", path, "function_name", "c_invalid_json", "on_error", "keep")
		in := chunkOf(t, "t", `{"a":1}`)
		out, err := f.FilterChunk(context.Background(), in)
		if err != nil || len(out) != 1 || !bytes.Equal(out[0].Data, in.Data) {
			t.Fatalf("got %v %v, want the record unchanged", out, err)
		}
	})
}

// Records round-trip as Fluent Bit's tests expect: numbers, nulls in
// arrays, unicode, and group markers pass untouched.
func TestEchoRoundTripAndGroups(t *testing.T) {
	f, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_echo")
	var data []byte
	gs := event.Event{Time: event.Time{Sec: event.GroupStartSec}, Meta: event.Map{{Key: "schema", Value: "otlp"}}, Body: event.Map{{Key: "resource", Value: event.Map{}}}}
	data = gs.AppendMsgpack(data)
	data = append(data, chunkOf(t, "t", `{"int":10,"float":10.5,"trunc":120.0,"exp":3.54789e-3,"arr":[1,null,"world"],"s":"h\u00e9\n"}`).Data...)
	ge := event.Event{Time: event.Time{Sec: event.GroupEndSec}}
	data = ge.AppendMsgpack(data)
	// A v1 event becomes v2 with empty metadata.
	v1 := append([]byte{0x92}, t0.AppendMsgpack(nil)...)
	v1 = append(v1, event.Map{{Key: "v", Value: int64(1)}}.AppendMsgpack(nil)...)
	data = append(data, v1...)
	got := run(t, f, &chunk.Chunk{Tag: "t", Records: 2, Data: data})
	want := []rec{
		{Time: event.Time{Sec: event.GroupStartSec}, Meta: `{"schema":"otlp"}`, Body: `{"resource":{}}`},
		{Time: t0, Meta: `{"m":0}`, Body: `{"int":10,"float":10.5,"trunc":120.0,"exp":0.00354789,"arr":[1,null,"world"],"s":"h\u00e9\n"}`},
		{Time: event.Time{Sec: event.GroupEndSec}, Meta: `{}`, Body: `{}`},
		{Time: t0, Meta: `{}`, Body: `{"v":1}`},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

// In msgpack mode the body goes to the guest as is and the result is read
// by its encoding: 0x00 bytes (integer 0, lengths like 256) survive.
func TestMsgpackBinarySafe(t *testing.T) {
	long := strings.Repeat("x", 256)
	in := chunkOf(t, "t", fmt.Sprintf(`{"zero":0,"long":"%s","bin":"a\u0000b"}`, long))
	want := fmt.Sprintf(`{"zero":0,"long":"%s","bin":"a\u0000b"}`, long)
	t.Run("C passthrough", func(t *testing.T) {
		f, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_msgpack_passthrough", "event_format", "msgpack")
		equal(t, bodies(run(t, f, in)), []string{want})
	})
	t.Run("Go add", func(t *testing.T) {
		f, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "go_filter"), "function_name", "go_msgpack_add", "event_format", "MsgPack")
		equal(t, bodies(run(t, f, in)), []string{strings.TrimSuffix(want, "}") + `,"platform":"wasm"}`})
	})
}

func TestTrapRecycles(t *testing.T) {
	path := wasmtest.Path(t, "c_wasi_filter")
	for _, mode := range []string{"drop", "keep"} {
		t.Run(mode, func(t *testing.T) {
			f, e := newFilter(t, Options{}, "wasm_path", path, "function_name", "c_trap", "on_error", mode)
			got := bodies(run(t, f, chunkOf(t, "t", `{"a":"ok"}`, `{"a":"trap"}`, `{"a":"after"}`)))
			want := []string{`{"a":"ok"}`, `{"a":"after"}`}
			if mode == "keep" {
				want = []string{`{"a":"ok"}`, `{"a":"trap"}`, `{"a":"after"}`}
			}
			equal(t, got, want)
			m := e.reg.Wasm("wasm.0")
			if m.Traps.Load() != 1 || m.Recycles.Load() != 1 || m.Errors.Load() != 1 {
				t.Errorf("traps %d recycles %d errors %d", m.Traps.Load(), m.Recycles.Load(), m.Errors.Load())
			}
			if !strings.Contains(e.logs.String(), "Got exception running wasm code") || !strings.Contains(e.logs.String(), "c_wasi_filter.wasm") {
				t.Errorf("trap not logged with the module name: %s", e.logs)
			}
			// The next chunk runs on the fresh instance.
			equal(t, bodies(run(t, f, chunkOf(t, "t", `{"b":1}`))), []string{`{"b":1}`})
		})
	}
}

// An endless loop: the call ends at wasm_timeout, the record goes by
// on_error, the other records flow.
func TestEndlessLoopTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f, e := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_loop",
		"wasm_timeout", "0.3", "on_error", "keep")
	start := time.Now()
	got := bodies(run(t, f, chunkOf(t, "t", `{"a":1}`, `{"a":"loop"}`, `{"a":2}`)))
	took := time.Since(start)
	equal(t, got, []string{`{"a":1}`, `{"a":"loop"}`, `{"a":2}`})
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("chunk took %v with a %v timeout", took, timeout)
	}
	m := e.reg.Wasm("wasm.0")
	if m.Timeouts.Load() != 1 || m.Recycles.Load() != 1 {
		t.Errorf("timeouts %d recycles %d", m.Timeouts.Load(), m.Recycles.Load())
	}
	if !strings.Contains(e.logs.String(), "wasm call timed out") {
		t.Errorf("timeout not logged: %s", e.logs)
	}
	equal(t, bodies(run(t, f, chunkOf(t, "t", `{"b":1}`))), []string{`{"b":1}`})

	t.Run("drop", func(t *testing.T) {
		f, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_loop", "wasm_timeout", "0.1")
		equal(t, bodies(run(t, f, chunkOf(t, "t", `{"a":"loop"}`, `{"a":2}`))), []string{`{"a":2}`})
	})
}

// A guest that allocates until malloc fails hits the memory cap: memory.grow
// is refused, the guest gets NULL, the record is processed, and the
// instance is replaced.
func TestMemoryBomb(t *testing.T) {
	f, e := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_memory_bomb", "wasm_memory_limit", "8M")
	got := bodies(run(t, f, chunkOf(t, "t", `{"a":1}`, `{"a":2}`)))
	equal(t, got, []string{`{"a":1}`, `{"a":2}`})
	m := e.reg.Wasm("wasm.0")
	if m.Recycles.Load() != 2 {
		t.Errorf("recycles %d, want 2", m.Recycles.Load())
	}
	if pages := m.MemoryPages.Load(); pages*65536 > 8_000_000 || pages <= 0 {
		t.Errorf("memory pages %d", pages)
	}
}

func TestGuestOutputLogged(t *testing.T) {
	f, e := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_printf")
	run(t, f, chunkOf(t, "app.x", `{"a":1}`))
	logs := e.logs.String()
	if !strings.Contains(logs, `msg="hello from c app.x"`) || !strings.Contains(logs, "module=c_wasi_filter.wasm") ||
		!strings.Contains(logs, "wasm=wasm.0") || !strings.Contains(logs, "stream=stdout") {
		t.Fatalf("guest line not logged with the module name: %s", logs)
	}
}

func TestBadModules(t *testing.T) {
	cases := []struct {
		name string
		kv   []string
		want []string
	}{
		{"not wasm", []string{"wasm_path", wasmtest.Path(t, "not_wasm"), "function_name", "f"}, []string{"not_wasm.wasm", "not a WebAssembly"}},
		{"missing file", []string{"wasm_path", "/nonexistent/x.wasm", "function_name", "f"}, []string{"cannot access wasm program at /nonexistent/x.wasm"}},
		{"missing function", []string{"wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "nope"}, []string{"c_wasi_filter.wasm", `"nope" is not exported`, "c_echo"}},
		{"wrong signature", []string{"wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "malloc"}, []string{"c_wasi_filter.wasm", `"malloc" has signature (i32)->(i32), expected (i32,i32,i32,i32,i32,i32)->(i32)`}},
		{"unknown import", []string{"wasm_path", "testdata/unknown_import.wasm", "function_name", "filter"}, []string{"unknown_import.wasm", "imports env.floe_no_such_function, which Floe does not provide"}},
		{"import signature", []string{"wasm_path", "testdata/wrong_sig_import.wasm", "function_name", "filter"}, []string{"wrong_sig_import.wasm", "imports env.strlen with signature (i32,i32)->(i32), Floe provides (i32)->(i32)"}},
		{"accessible path", []string{"wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_echo", "accessible_paths", "., /nonexistent/dir"}, []string{"accessible_paths", "/nonexistent/dir"}},
		// Without function_name the module must be looked at first: one
		// exporting floe_filter_batch needs none (Floe's batch ABI).
		{"no function name", []string{"wasm_path", wasmtest.Path(t, "c_wasi_filter")}, []string{"no WASM 'function name' was given", "floe_filter_batch"}},
		{"memory limit", []string{"wasm_path", wasmtest.Path(t, "go_filter"), "function_name", "go_passthrough", "wasm_memory_limit", "64K"}, []string{"go_filter.wasm", "over the limit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, _ := settings("wasm.0")
			p := props(t, c.kv...)
			_, err := NewWithOptions(context.Background(), set, p, Options{Runtime: testRuntime(t)})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "test.conf:") {
				t.Errorf("error %q has no position", err)
			}
			if cerr := Check(context.Background(), p); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Check = %v, want the constructor's error", cerr)
			}
		})
	}
	if err := Check(context.Background(), props(t, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_echo")); err != nil {
		t.Errorf("Check of a good module: %v", err)
	}
}

// The pool under concurrent chunks (run with -race): every chunk gets its
// records back, in order, whatever instance served it.
func TestPoolHammer(t *testing.T) {
	for _, guest := range []struct{ path, fn string }{{"c_wasi_filter", "c_echo"}, {"go_filter", "go_passthrough"}} {
		t.Run(guest.path, func(t *testing.T) {
			f, e := newFilter(t, Options{PoolSize: 4}, "wasm_path", wasmtest.Path(t, guest.path), "function_name", guest.fn)
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 20 {
						var recs []string
						for j := range 10 {
							recs = append(recs, fmt.Sprintf(`{"g":%d,"i":%d,"j":%d}`, g, i, j))
						}
						out, err := f.FilterChunk(context.Background(), chunkOf(t, "t", recs...))
						if err != nil {
							errs <- err
							return
						}
						var got []string
						for _, c := range out {
							it := event.NewIter(c.Data)
							for it.Next() {
								v, _, _ := event.Value(it.Event().Body, 0)
								got = append(got, string(event.AppendJSON(nil, v, event.DefaultJSON)))
							}
						}
						if strings.Join(got, "") != strings.Join(recs, "") {
							errs <- fmt.Errorf("chunk %d/%d: got %v", g, i, got)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := e.reg.Wasm("wasm.0").Calls.Load(); n != 16*20*10 {
				t.Errorf("calls %d", n)
			}
			if pages := e.reg.Wasm("wasm.0").MemoryPages.Load(); pages <= 0 {
				t.Errorf("memory pages %d", pages)
			}
		})
	}
}

func TestMetricsJSON(t *testing.T) {
	f, e := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_echo")
	run(t, f, chunkOf(t, "t", `{"a":1}`))
	var top struct {
		Floe struct {
			Wasm map[string]map[string]int64 `json:"wasm"`
		} `json:"floe"`
	}
	if err := json.Unmarshal(e.reg.MetricsJSON(), &top); err != nil {
		t.Fatal(err)
	}
	m := top.Floe.Wasm["wasm.0"]
	if m["calls"] != 1 || m["records_in"] != 1 || m["records_out"] != 1 || m["memory_pages"] <= 0 || m["latency_nanos_total"] <= 0 {
		t.Errorf("metrics %v", m)
	}
}

// The argument block is reused call after call and replaced when a record
// outgrows it: records that grow and shrink, in both modes and through a
// module with its own malloc in C and in Go,
// come back whole and each one its own.
func TestArgumentBlockReusedAcrossSizes(t *testing.T) {
	var recs, want []string
	for i, n := range []int{10, 3000, 20, 70000, 5, 70001, 1} {
		r := fmt.Sprintf(`{"i":%d,"s":"%s"}`, i, strings.Repeat(string(rune('a'+i)), n))
		recs = append(recs, r)
		want = append(want, r)
	}
	in := chunkOf(t, "t", recs...)
	t.Run("C echo json", func(t *testing.T) {
		f, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_echo")
		equal(t, bodies(run(t, f, in)), want)
		equal(t, bodies(run(t, f, in)), want) // again, on the block the last chunk left
	})
	t.Run("C msgpack", func(t *testing.T) {
		f, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_msgpack_passthrough", "event_format", "msgpack")
		equal(t, bodies(run(t, f, in)), want)
	})
	t.Run("Go msgpack", func(t *testing.T) {
		f, _ := newFilter(t, Options{}, "wasm_path", wasmtest.Path(t, "go_filter"), "function_name", "go_msgpack_add", "event_format", "msgpack")
		var added []string
		for _, w := range want {
			added = append(added, strings.TrimSuffix(w, "}")+`,"platform":"wasm"}`)
		}
		equal(t, bodies(run(t, f, in)), added)
	})
}
