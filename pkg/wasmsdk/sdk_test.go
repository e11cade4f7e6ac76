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

// frames decodes ProcessChunk's output as "tag: body body …" lines, or the error.
func frames(t *testing.T, out []byte) []string {
	t.Helper()
	var lines []string
	for off := 0; off < len(out); {
		kind := out[off]
		n := int(le32(out[off+1:]))
		first := string(out[off+5 : off+5+n])
		off += 5 + n
		if kind == 'X' {
			return append(lines, "error: "+first)
		}
		m := int(le32(out[off:]))
		data := out[off+4 : off+4+m]
		off += 4 + m
		line := first + ":"
		it := event.NewIter(data)
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
	got := frames(t, ProcessChunk(h, "in", data))
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
		switch n := ev.Time.Sec - 1700000000; n {
		case 0, 1, 3:
			out.Emit(ev)
		case 2: // dropped: breaks the run
		case 4:
			out.Emit(ev)
			out.Emit(ev) // twice
			out.EmitTag("x", ev)
		case 5:
			out.Emit(ev)
			ev.Time.Nsec = 7 // changed time: encoded anew
			out.Emit(ev)
		}
		return nil
	}
	got := frames(t, ProcessChunk(h, "in", data))
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
