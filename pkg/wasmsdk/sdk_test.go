package wasmsdk

import (
	"fmt"
	"testing"

	"github.com/floe-io/floe/internal/event"
)

func benchData(n int) []byte {
	var data []byte
	for i := range n {
		body := event.Map{
			{Key: "log", Value: fmt.Sprintf("2024-01-01T00:00:00Z INFO request %d served in 12ms", i)},
			{Key: "stream", Value: "stdout"},
			{Key: "status", Value: int64(200)},
		}
		data = event.AppendRaw(data, event.Time{Sec: 1700000000 + int64(i)}, nil, body.AppendMsgpack(nil))
	}
	return data
}

func BenchmarkProcessChunkPassthrough(b *testing.B) {
	data := benchData(1000)
	h := func(tag string, ev *Event, out *Output) error { out.Emit(ev); return nil }
	for b.Loop() {
		ProcessChunk(h, "t", data)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
}

// frames decodes ProcessChunk's output as "tag: body body …" lines, or the
// error; consecutive frames of one tag make one line. data is the input
// chunk, for the 'R' frames of the indexed path.
func frames(t *testing.T, out []byte, data ...[]byte) []string {
	t.Helper()
	var lines []string
	var idx []indexEntry
	if len(data) > 0 {
		idx = indexOf(t, data[0])
	}
	lastTag := ""
	for off := 0; off < len(out); {
		kind := out[off]
		n := int(le32(out[off+1:]))
		first := string(out[off+5 : off+5+n])
		off += 5 + n
		var evs []byte
		switch kind {
		case 'X':
			return append(lines, "error: "+first)
		case 'R':
			i, c := le32(out[off:]), le32(out[off+4:])
			off += 8
			if len(data) == 0 || c == 0 || int(i+c) > len(idx) {
				t.Fatalf("bad 'R' frame %d+%d (index of %d)", i, c, len(idx))
			}
			last := idx[i+c-1]
			evs = data[0][idx[i].Off : last.Off+last.Len]
		case 'E':
			m := int(le32(out[off:]))
			evs = out[off+4 : off+4+m]
			off += 4 + m
		default:
			t.Fatalf("frame kind %q", kind)
		}
		line := first + ":"
		if len(lines) > 0 && lastTag == first {
			line = lines[len(lines)-1]
			lines = lines[:len(lines)-1]
		}
		lastTag = first
		it := event.NewIter(evs)
		for it.Next() {
			d, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			line += " " + string(event.AppendJSON(nil, d.Body, event.DefaultJSON))
			if len(d.Meta) > 0 {
				line += string(event.AppendJSON(nil, d.Meta, event.DefaultJSON))
			}
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		lines = append(lines, line)
	}
	return lines
}

// indexOf builds the index the host hands a v2 guest (internal/plugins/
// filter/wasm builds the same bytes; its tests check the wasm side).
func indexOf(t testing.TB, data []byte) []indexEntry {
	var idx []indexEntry
	it := event.NewIter(data)
	for it.Next() {
		ev := it.Event()
		x := indexEntry{Off: uint32(ev.Offset), Len: uint32(len(ev.Raw)), Sec: ev.Time.Sec, Nsec: ev.Time.Nsec, Kind: uint32(ev.Kind())}
		x.BodyOff = x.Off + x.Len - uint32(len(ev.Body))
		x.BodyLen = uint32(len(ev.Body))
		if len(ev.Meta) > 0 {
			x.MetaOff, x.MetaLen = x.BodyOff-uint32(len(ev.Meta)), uint32(len(ev.Meta))
		}
		idx = append(idx, x)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	return idx
}

// both runs h on data by the scan (v1) and the index (v2) paths and checks
// they emit the same events.
func both(t *testing.T, h Handler, tag string, data []byte) []string {
	t.Helper()
	v1 := frames(t, ProcessChunk(h, tag, data))
	v2 := frames(t, processIndexed(h, tag, data, indexOf(t, data)), data)
	if fmt.Sprint(v1) != fmt.Sprint(v2) {
		t.Fatalf("scan path %q\nindex path %q", v1, v2)
	}
	return v1
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func chunkOf(bodies ...event.Map) []byte {
	var data []byte
	for i, b := range bodies {
		data = event.AppendRaw(data, event.Time{Sec: 1700000000 + int64(i)}, nil, b.AppendMsgpack(nil))
	}
	return data
}

func TestProcessChunk(t *testing.T) {
	data := chunkOf(event.Map{{Key: "n", Value: int64(1)}}, event.Map{{Key: "n", Value: int64(2)}}, event.Map{{Key: "n", Value: int64(3)}})
	h := func(tag string, ev *Event, out *Output) error {
		n, _ := ev.Get("n")
		switch n {
		case int64(1): // split in two, the copy re-tagged, with metadata
			c := ev.Clone()
			c.SetMetaKey("copy", true)
			ev.Add("half", "a")
			out.Emit(ev)
			out.EmitTag("other", c)
		case int64(2): // dropped
		default:
			ev.Set("n", "three")
			out.Emit(ev)
		}
		return nil
	}
	got := both(t, h, "in", data)
	want := []string{`in: {"n":1,"half":"a"}`, `other: {"n":1}{"copy":true}`, `in: {"n":"three"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	got = frames(t, ProcessChunk(func(string, *Event, *Output) error { return fmt.Errorf("nope") }, "in", data))
	if fmt.Sprint(got) != "[error: nope]" {
		t.Fatalf("handler error: %q", got)
	}
	got = frames(t, ProcessChunk(h, "in", data[:len(data)-1]))
	if len(got) != 1 || got[0][:6] != "error:" {
		t.Fatalf("truncated chunk: %q", got)
	}
}

// FuzzSkipValue: the flat skipper agrees with event.Skip on every value
// event.Skip accepts, and never runs past the input.
func FuzzSkipValue(f *testing.F) {
	f.Add(chunkOf(event.Map{{Key: "a", Value: []any{int64(1), "x", 1.5, nil, true, event.Map{{Key: "b", Value: []byte("z")}}}}}))
	f.Add([]byte{0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := skipValue(b, 0)
		if got > len(b) {
			t.Fatalf("skipValue ran past the input: %d > %d", got, len(b))
		}
		if want, err := event.Skip(b, 0); err == nil && got != want {
			t.Fatalf("skipValue = %d, event.Skip = %d", got, want)
		}
		var r event.RawEvent
		if end, err := nextEvent(b, 0, &r); err == nil {
			if ev, want, err := event.ParseEvent(b, 0); err != nil || want != end || ev.Time != r.Time || len(ev.Body) != len(r.Body) {
				t.Fatalf("nextEvent end %d time %v, ParseEvent %d %v %v", end, r.Time, want, ev.Time, err)
			}
		}
	})
}

// Untouched records are copied in runs: reordering, repeating, skipping and
// mixing them with changed ones and other tags must still give each emitted
// event once, in emission order.
func TestProcessChunkRuns(t *testing.T) {
	var bodies []event.Map
	for i := range 6 {
		bodies = append(bodies, event.Map{{Key: "n", Value: int64(i)}})
	}
	data := chunkOf(bodies...)
	h := func(tag string, ev *Event, out *Output) error {
		switch n := ev.Time().Sec - 1700000000; n {
		case 0, 1, 3:
			out.Emit(ev)
		case 2: // dropped: breaks the run
		case 4:
			out.Emit(ev)
			out.Emit(ev) // twice
			out.EmitTag("x", ev)
		case 5:
			out.Emit(ev)
			tm := ev.Time()
			tm.Nsec = 7
			ev.SetTime(tm) // changed time: encoded anew
			out.Emit(ev)
		}
		return nil
	}
	got := both(t, h, "in", data)
	want := []string{`in: {"n":0} {"n":1} {"n":3} {"n":4} {"n":4}`, `x: {"n":4}`, `in: {"n":5} {"n":5}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	var times []uint32
	out := ProcessChunk(h, "in", data)
	for _, tag := range []string{"in", "x", "in"} {
		n := int(le32(out[1:]))
		out = out[5+n:]
		m := int(le32(out))
		it := event.NewIter(out[4 : 4+m])
		for it.Next() {
			times = append(times, it.Event().Time.Nsec)
		}
		out = out[4+m:]
		_ = tag
	}
	if fmt.Sprint(times) != "[0 0 0 0 0 0 0 7]" {
		t.Fatalf("nanoseconds %v: the changed time was not kept", times)
	}
}

// The indexed path sends unchanged records back as references: a
// passthrough is one 'R' frame naming every event, a read-only look at a
// field does not count as a change, and group markers join the runs.
func TestProcessIndexedReferences(t *testing.T) {
	var data []byte
	data = event.AppendRaw(data, event.Time{Sec: event.GroupStartSec}, nil, []byte{0x80})
	for i := range 4 {
		meta := event.Map{{Key: "m", Value: int64(i)}}.AppendMsgpack(nil)
		data = event.AppendRaw(data, event.Time{Sec: 1700000000 + int64(i), Nsec: 5}, meta, event.Map{{Key: "lvl", Value: []string{"a", "b"}[i%2]}, {Key: "n", Value: int64(i)}}.AppendMsgpack(nil))
	}
	data = event.AppendRaw(data, event.Time{Sec: event.GroupEndSec}, nil, []byte{0x80})
	read := func(tag string, ev *Event, out *Output) error {
		lvl, _ := ev.GetString("lvl")
		if m, _ := ev.GetMeta("m"); m != int64(ev.Time().Sec-1700000000) {
			return fmt.Errorf("meta m = %v", m)
		}
		out.EmitTag(tag+"."+lvl, ev)
		return nil
	}
	pass := func(tag string, ev *Event, out *Output) error { out.Emit(ev); return nil }
	out := processIndexed(pass, "t", data, indexOf(t, data))
	want := append([]byte{'R', 1, 0, 0, 0, 't'}, 0, 0, 0, 0, 6, 0, 0, 0)
	if string(out) != string(want) {
		t.Fatalf("passthrough output % x, want % x", out, want)
	}
	got := both(t, read, "t", data)
	exp := `[t: {} t.a: {"lvl":"a","n":0}{"m":0} t.b: {"lvl":"b","n":1}{"m":1} t.a: {"lvl":"a","n":2}{"m":2} t.b: {"lvl":"b","n":3}{"m":3} t: {}]`
	if fmt.Sprint(got) != exp {
		t.Fatalf("got  %s\nwant %s", got, exp)
	}
	out = processIndexed(read, "t", data, indexOf(t, data))
	for off := 0; off < len(out); {
		if out[off] != 'R' {
			t.Fatalf("read-only handler: frame %q at %d, want only 'R' frames (no re-encoding)", out[off], off)
		}
		off += 5 + int(le32(out[off+1:])) + 8
	}
}

// Get on a body not decoded finds the value in place; it agrees with the
// decoded body, including pairs added with Add and repeated keys.
func TestLazyGet(t *testing.T) {
	body := event.Map{{Key: "a", Value: int64(1)}, {Key: "nest", Value: event.Map{{Key: "x", Value: []any{"y"}}}}, {Key: "s", Value: "str"}, {Key: "a", Value: int64(2)}}
	data := chunkOf(body)
	for _, key := range []string{"a", "nest", "s", "missing", "added", ""} {
		var lazy, full any
		var lok, fok bool
		h := func(tag string, ev *Event, out *Output) error {
			ev.Add("added", true)
			if ev.bodyDec {
				return fmt.Errorf("Add decoded the body")
			}
			lazy, lok = ev.Get(key)
			if ev.bodyDec {
				return fmt.Errorf("Get decoded the whole body")
			}
			full, fok = ev.Body().Get(key)
			return nil
		}
		if got := frames(t, ProcessChunk(h, "t", data)); len(got) != 0 {
			t.Fatal(got)
		}
		if fmt.Sprint(lazy, lok) != fmt.Sprint(full, fok) {
			t.Errorf("Get(%q) = %v %v, decoded body says %v %v", key, lazy, lok, full, fok)
		}
	}
}

func TestSetConfig(t *testing.T) {
	defer func() { onConfig = nil; _ = SetConfig([]byte("null")) }()
	var seen any
	OnConfig(func(cfg any) error {
		seen = cfg
		if m, ok := cfg.(Map); ok {
			if v, _ := m.Get("n"); v == int64(0) {
				return fmt.Errorf("n must be at least 1")
			}
		}
		return nil
	})
	if err := SetConfig([]byte(`{"n":3,"tags":["a","b"]}`)); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[{n 3} {tags [a b]}]" || fmt.Sprint(Config()) != fmt.Sprint(seen) || string(ConfigJSON()) != `{"n":3,"tags":["a","b"]}` {
		t.Fatalf("hook saw %v, Config() %v, ConfigJSON %s", seen, Config(), ConfigJSON())
	}
	if err := SetConfig([]byte(`{"n":0}`)); err == nil || err.Error() != "n must be at least 1" {
		t.Fatalf("refusing hook: %v", err)
	}
	if err := SetConfig([]byte(`{"n":`)); err == nil {
		t.Fatal("bad JSON accepted")
	}
	if err := SetConfig([]byte("null")); err != nil || Config() != nil || seen != nil {
		t.Fatalf("unset config: %v %v %v", err, Config(), seen)
	}
}

func BenchmarkProcessIndexedAddField(b *testing.B) {
	data := benchData(1000)
	idx := indexOf(b, data)
	h := func(tag string, ev *Event, out *Output) error { ev.Add("platform", "wasm"); out.Emit(ev); return nil }
	b.ReportAllocs()
	for b.Loop() {
		processIndexed(h, "t", data, idx)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
}

func BenchmarkProcessIndexedPassthrough(b *testing.B) {
	data := benchData(1000)
	idx := indexOf(b, data)
	h := func(tag string, ev *Event, out *Output) error { out.Emit(ev); return nil }
	b.ReportAllocs()
	for b.Loop() {
		processIndexed(h, "t", data, idx)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
}
