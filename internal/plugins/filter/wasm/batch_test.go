package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// example is the committed module of examples/wasm/<name>.
func example(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "examples", "wasm", name, name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("example module: %v (run examples/wasm/build.sh)", err)
	}
	return p
}

func TestBatchSplitOneIntoThree(t *testing.T) {
	f, _ := newFilter(t, Options{}, "wasm_path", example(t, "split_lines"))
	if !f.batch {
		t.Fatal("module exporting floe_filter_batch not run with the batch ABI")
	}
	c := chunkOf(t, "app", `{"log":"first\nsecond\r\nthird\n","pod":"web"}`, `{"log":"alone","pod":"db"}`)
	out, err := f.FilterChunk(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Tag != "app" || out[0].Records != 4 || out[0].Type != chunk.Logs {
		t.Fatalf("want one chunk of 4 records tagged app, got %+v", out)
	}
	got := decode(t, out)
	equal(t, bodies(got), []string{
		`{"log":"first","pod":"web","line":1}`,
		`{"log":"second","pod":"web","line":2}`,
		`{"log":"third","pod":"web","line":3}`,
		`{"log":"alone","pod":"db"}`,
	})
	for i, r := range got {
		wantSec, wantMeta := t0.Sec, `{"m":0}`
		if i == 3 {
			wantSec, wantMeta = t0.Sec+1, `{"m":1}`
		}
		if r.Time != (event.Time{Sec: wantSec, Nsec: t0.Nsec}) || r.Meta != wantMeta {
			t.Errorf("record %d: time %v meta %s, want %d.%d %s", i, r.Time, r.Meta, wantSec, t0.Nsec, wantMeta)
		}
	}
	m := f.Metrics()
	if m.RecordsIn.Load() != 2 || m.RecordsOut.Load() != 4 || m.Calls.Load() != 1 {
		t.Errorf("metrics: in %d out %d calls %d, want 2 4 1 (one call per chunk)", m.RecordsIn.Load(), m.RecordsOut.Load(), m.Calls.Load())
	}
}

func TestBatchDrop(t *testing.T) {
	f, _ := newFilter(t, Options{PoolSize: 1}, "wasm_path", example(t, "sample"))
	var recs []string
	for i := range 25 {
		recs = append(recs, fmt.Sprintf(`{"i":%d}`, i))
	}
	got := bodies(run(t, f, chunkOf(t, "s", recs...)))
	equal(t, got, []string{`{"i":0}`, `{"i":10}`, `{"i":20}`})
	// The count carries over to the next chunk of the same instance.
	got = bodies(run(t, f, chunkOf(t, "s", recs[:10]...)))
	equal(t, got, []string{`{"i":5}`})
	if d := f.Metrics().Drops.Load(); d != 22+9 {
		t.Errorf("drops = %d, want 31", d)
	}
	// Every record dropped: no chunk at all.
	out, err := f.FilterChunk(context.Background(), chunkOf(t, "s", recs[:4]...))
	if err != nil || len(out) != 0 {
		t.Fatalf("want no output, got %v %v", out, err)
	}
}

func TestBatchRetag(t *testing.T) {
	f, _ := newFilter(t, Options{}, "wasm_path", example(t, "route_by_level"))
	c := chunkOf(t, "app", `{"level":"ERROR","n":1}`, `{"level":"info","n":2}`, `{"n":3}`, `{"level":"error","n":4}`)
	out, err := f.FilterChunk(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range out {
		got = append(got, fmt.Sprintf("%s:%d:%s", o.Tag, o.Records, strings.Join(bodies(decode(t, []*chunk.Chunk{o})), " ")))
		if o.Type != chunk.Logs {
			t.Errorf("chunk %s: type %q", o.Tag, o.Type)
		}
	}
	equal(t, got, []string{
		`app.error:2:{"level":"ERROR","n":1} {"level":"error","n":4}`,
		`app.info:1:{"level":"info","n":2}`,
		`app.unknown:1:{"n":3}`,
	})
}

func TestBatchRedactParseAdd(t *testing.T) {
	cases := []struct {
		guest string
		in    []string
		want  []string
	}{
		{"redact_email", []string{`{"msg":"mail bob.smith@example.com or ann@x.org now","n":[{"to":"a@b.io"}],"k":1}`, `{"msg":"no address"}`},
			[]string{`{"msg":"mail [email redacted] or [email redacted] now","n":[{"to":"[email redacted]"}],"k":1}`, `{"msg":"no address"}`}},
		{"parse_json", []string{`{"log":"{\"b\":2,\"a\":{\"c\":1.5}}","s":"x"}`, `{"log":"[1]"}`, `{"log":"{bad"}`},
			[]string{`{"s":"x","b":2,"a":{"c":1.5}}`, `{"log":"[1]","parse_error":"not a JSON object"}`, `{"log":"{bad","parse_error":"json at byte offset 1: expected object key"}`}},
		{"add_field", []string{`{"a":1}`, `{}`}, []string{`{"a":1,"platform":"wasm"}`, `{"platform":"wasm"}`}},
		{"passthrough", []string{`{"a":"\u0000bin"}`}, []string{`{"a":"\u0000bin"}`}},
		{"raw_passthrough", []string{`{"a":1}`, `{"b":2}`}, []string{`{"a":1}`, `{"b":2}`}},
	}
	for _, tc := range cases {
		t.Run(tc.guest, func(t *testing.T) {
			f, _ := newFilter(t, Options{}, "wasm_path", example(t, tc.guest))
			equal(t, bodies(run(t, f, chunkOf(t, "t", tc.in...))), tc.want)
		})
	}
}

func TestBatchABISelection(t *testing.T) {
	// abi fluentbit ignores the batch export and wants function_name.
	set, _ := settings("wasm.0")
	_, err := NewWithOptions(context.Background(), set, props(t, "wasm_path", example(t, "passthrough"), "abi", "fluentbit"), Options{Runtime: testRuntime(t)})
	if err == nil || !strings.Contains(err.Error(), "function name") {
		t.Errorf("abi fluentbit without function_name: %v", err)
	}
	// abi batch on a Fluent Bit module names the missing export.
	_, err = NewWithOptions(context.Background(), set, props(t, "wasm_path", wasmtest.Path(t, "go_filter"), "abi", "batch"), Options{Runtime: testRuntime(t)})
	if err == nil || !strings.Contains(err.Error(), "floe_filter_batch") {
		t.Errorf("abi batch on a Fluent Bit module: %v", err)
	}
}

// TestBatchBadOutput: what a broken guest could return is refused with
// the byte offset, never a panic.
func TestBatchBadOutput(t *testing.T) {
	ev := event.AppendRaw(nil, t0, nil, event.Map{{Key: "a", Value: int64(1)}}.AppendMsgpack(nil))
	frame := func(kind byte, tag string, data []byte) []byte {
		b := []byte{kind}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(tag)))
		b = append(b, tag...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	ok := append(frame('E', "x", ev), frame('E', "y", nil)...)
	ok = append(ok, frame('E', "x", ev)...)
	cs, err := parseFrames(ok, nil)
	if err != nil || len(cs) != 1 || cs[0].Tag != "x" || cs[0].Records != 2 {
		t.Fatalf("good frames: %+v %v", cs, err)
	}
	for _, tc := range []struct {
		buf  []byte
		want string
	}{
		{frame('E', "x", ev[:len(ev)-1]), "invalid events"},
		{frame('Q', "x", ev), "unknown kind 0x51"},
		{frame('E', "x", ev)[:12], "runs past the end"}, {frame('E', "x", ev)[:8], "truncated events length"},
		{[]byte{'E', 1}, "truncated tag length"},
		{append([]byte{'X', 4, 0, 0, 0}, "boom"...), "guest error: boom"},
	} {
		if _, err := parseFrames(tc.buf, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.buf, err, tc.want)
		}
	}
}

func FuzzBatchOutput(f *testing.F) {
	ev := event.AppendRaw(nil, t0, nil, event.Map{{Key: "a", Value: "b"}}.AppendMsgpack(nil))
	b := []byte{'E', 1, 0, 0, 0, 't'}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ev)))
	f.Add(append(b, ev...))
	f.Add([]byte{'X', 1, 0, 0, 0, 'e'})
	f.Fuzz(func(t *testing.T, buf []byte) {
		cs, err := parseFrames(buf, nil)
		if err != nil {
			return
		}
		for _, c := range cs {
			n := 0
			it := event.NewIter(c.Data)
			for it.Next() {
				if it.Event().Kind() == event.KindRecord {
					n++
				}
			}
			if it.Err() != nil || n != c.Records {
				t.Fatalf("accepted chunk %q: %d records counted, %d said, %v", c.Tag, n, c.Records, it.Err())
			}
		}
	})
}

// A pkg/wasmsdk guest speaks v2 (the host's index, 'R' frames): its
// passthrough hands back the input's own bytes, group markers included but
// not counted; a hand-written v1 guest keeps working beside it.
func TestBatchV2Passthrough(t *testing.T) {
	f, _ := newFilter(t, Options{}, "wasm_path", example(t, "passthrough"))
	if !f.batch || !f.batchV2 || f.batchFn != batchFilterV2Name {
		t.Fatalf("SDK guest: batch %v v2 %v fn %s, want the v2 entry point", f.batch, f.batchV2, f.batchFn)
	}
	c := chunkOf(t, "app", `{"a":1}`, `{"b":"x"}`, `{"c":[1,2]}`)
	data := event.AppendRaw(nil, event.Time{Sec: event.GroupStartSec}, nil, []byte{0x80})
	data = append(data, c.Data...)
	data = event.AppendRaw(data, event.Time{Sec: event.GroupEndSec}, nil, []byte{0x80})
	c.Data, c.Records = data, 0 // Records unknown: the index counts them
	out, err := f.FilterChunk(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Tag != "app" || out[0].Records != 3 || string(out[0].Data) != string(data) {
		t.Fatalf("want the input chunk back (3 records), got %+v", out)
	}
	if &out[0].Data[0] != &data[0] {
		t.Error("passthrough output copied the input instead of sharing it")
	}
	if m := f.Metrics(); m.RecordsIn.Load() != 3 || m.RecordsOut.Load() != 3 || m.Drops.Load() != 0 {
		t.Errorf("metrics in %d out %d drops %d, want 3 3 0", m.RecordsIn.Load(), m.RecordsOut.Load(), m.Drops.Load())
	}

	v1, _ := newFilter(t, Options{}, "wasm_path", example(t, "raw_passthrough"))
	if !v1.batch || v1.batchV2 {
		t.Fatalf("v1 guest: batch %v v2 %v", v1.batch, v1.batchV2)
	}
	equal(t, bodies(run(t, v1, chunkOf(t, "t", `{"a":1}`))), []string{`{"a":1}`})
}

// 'R' frames: runs of input events by index, mixed with 'E' frames of the
// same tag in order; out of range or from a v1 guest they are refused.
func TestBatchRefFrames(t *testing.T) {
	in := chunkOf(t, "in", `{"n":0}`, `{"n":1}`, `{"n":2}`)
	var x chunkIndex
	if err := x.build(in.Data); err != nil {
		t.Fatal(err)
	}
	if len(x.wire) != 3*indexEntrySize || x.records() != 3 {
		t.Fatalf("index: %d bytes, %d records", len(x.wire), x.records())
	}
	ref := func(tag string, first, count uint32) []byte {
		b := []byte{'R'}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(tag)))
		b = append(b, tag...)
		b = binary.LittleEndian.AppendUint32(b, first)
		return binary.LittleEndian.AppendUint32(b, count)
	}
	ev := event.AppendRaw(nil, t0, nil, event.Map{{Key: "new", Value: true}}.AppendMsgpack(nil))
	e := []byte{'E', 1, 0, 0, 0, 'a'}
	e = binary.LittleEndian.AppendUint32(e, uint32(len(ev)))
	e = append(e, ev...)
	buf := append(ref("a", 2, 1), e...)
	buf = append(buf, ref("b", 0, 2)...)
	buf = append(buf, ref("a", 0, 1)...)
	cs, err := parseFrames(buf, &x)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, fmt.Sprintf("%s:%d:%s", c.Tag, c.Records, strings.Join(bodies(decode(t, []*chunk.Chunk{c})), " ")))
	}
	equal(t, got, []string{`a:3:{"n":2} {"new":true} {"n":0}`, `b:2:{"n":0} {"n":1}`})
	if string(in.Data) != string(chunkOf(t, "in", `{"n":0}`, `{"n":1}`, `{"n":2}`).Data) {
		t.Fatal("parsing 'R' frames changed the input chunk")
	}
	for _, tc := range []struct {
		buf  []byte
		x    *chunkIndex
		want string
	}{
		{ref("a", 0, 1), nil, "'R' frame from a v1 guest"},
		{ref("a", 2, 2), &x, "input events 2..3, the chunk has 3"},
		{ref("a", 0xffffffff, 2), &x, "the chunk has 3"},
		{ref("a", 0, 1)[:10], &x, "truncated 'R' frame"},
	} {
		if _, err := parseFrames(tc.buf, tc.x); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("% x: error %v, want %q", tc.buf, err, tc.want)
		}
	}
}

// plugin_config reaches a batch guest through floe_configure: sample keeps
// 1 in n; a value the guest refuses, or plugin_config for a module that
// takes none, fails start-up with the reason.
func TestBatchPluginConfig(t *testing.T) {
	var recs []string
	for i := range 7 {
		recs = append(recs, fmt.Sprintf(`{"i":%d}`, i))
	}
	for _, tc := range []struct {
		kv   []string
		want []string
	}{
		{[]string{"plugin_config", `{"n": 3}`}, []string{`{"i":0}`, `{"i":3}`, `{"i":6}`}},
		{[]string{"plugin_config.n", "2"}, []string{`{"i":0}`, `{"i":2}`, `{"i":4}`, `{"i":6}`}},
		{nil, []string{`{"i":0}`}}, // default n 10
	} {
		f, _ := newFilter(t, Options{PoolSize: 1}, append([]string{"wasm_path", example(t, "sample")}, tc.kv...)...)
		equal(t, bodies(run(t, f, chunkOf(t, "s", recs...))), tc.want)
	}
	set, _ := settings("wasm.0")
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"wasm_path", example(t, "sample"), "plugin_config", `{"n": 0}`}, "the module refused plugin_config: sample: plugin_config n must be an integer of at least 1, not 0"},
		{[]string{"wasm_path", example(t, "sample"), "plugin_config", `{"n": `}, "plugin_config: not a JSON value"},
		{[]string{"wasm_path", example(t, "raw_passthrough"), "plugin_config", `{"n": 1}`}, "does not export floe_configure"},
		{[]string{"wasm_path", wasmtest.Path(t, "go_filter"), "function_name", "go_passthrough", "plugin_config.n", "1"}, "Fluent Bit ABI modules take no configuration"},
		{[]string{"wasm_path", example(t, "sample"), "sample_rate", "3"}, `sample_rate: unknown key for filter plugin "wasm"`},
	} {
		_, err := NewWithOptions(context.Background(), set, props(t, tc.kv...), Options{Runtime: testRuntime(t)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.kv, err, tc.want)
		}
	}
}
