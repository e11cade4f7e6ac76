package sinkutil

import (
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

func TestTemplate(t *testing.T) {
	for _, c := range []struct{ tmpl, tag, want, err string }{
		{"$TAG", "a.b.c", "a.b.c", ""},
		{"logs.$TAG[0].$TAG[2]/x", "a.b.c", "logs.a.c/x", ""},
		{"fixed", "a", "fixed", ""},
		{"$TAG[3]", "a.b", "", "has no part $TAG[3]"},
		{"$TAGS", "t", "tS", ""},
	} {
		tp, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		got, err := tp.Expand(c.tag)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q on %q: got %q, %v; want error %q", c.tmpl, c.tag, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q on %q: got %q, %v; want %q", c.tmpl, c.tag, got, err, c.want)
		}
	}
	for _, bad := range []string{"$TAG[", "$TAG[x]", "$TAG[-1]"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"$TAG", "a.$TAG[1].b", "$TAG[", "$TAG[99999999999999999999]", "x$TAG$TAG[0]"} {
		f.Add(s, "a.b.c")
	}
	f.Fuzz(func(t *testing.T, tmpl, tag string) {
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			return
		}
		got, err := tp.Expand(tag)
		if err == nil && !strings.Contains(tmpl, "$TAG") && got != tmpl {
			t.Fatalf("template without $TAG %q expanded to %q", tmpl, got)
		}
	})
}

func TestChunkKeyStable(t *testing.T) {
	c := plugintest.Chunk(plugintest.KV("a", int64(1)))
	k1, k2 := ChunkKey(c), ChunkKey(&chunk.Chunk{Tag: c.Tag, Data: append([]byte(nil), c.Data...)})
	if k1 != k2 || !strings.HasPrefix(k1, "sha256:") {
		t.Fatalf("keys of the same bytes differ: %q %q", k1, k2)
	}
	c.ID = "in:7>out"
	if ChunkKey(c) != "in:7>out" || RecordID(ChunkKey(c), 3) != "in:7>out/3" {
		t.Fatalf("got %q", RecordID(ChunkKey(c), 3))
	}
}

// Split keeps every record once, in order, and repeats the group start
// marker in a piece that begins inside a group.
func TestSplit(t *testing.T) {
	var data []byte
	rec := func(n int64) {
		e := event.Event{Time: event.Time{Sec: 1}, Body: plugintest.KV("n", n)}
		data = e.AppendMsgpack(data)
	}
	rec(0)
	gs := event.Event{Time: event.Time{Sec: event.GroupStartSec}, Body: plugintest.KV("res", "r")}
	data = gs.AppendMsgpack(data)
	rec(1)
	rec(2)
	rec(3)
	ge := event.Event{Time: event.Time{Sec: event.GroupEndSec}}
	data = ge.AppendMsgpack(data)
	rec(4)
	pieces, err := Split(data, 2, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var firsts []int
	var seen []int64
	for _, p := range pieces {
		firsts = append(firsts, p.First)
		it := event.NewIter(p.Data)
		groups := 0
		for it.Next() {
			ev := it.Event()
			if ev.Kind() == event.KindGroupStart {
				groups++
				continue
			}
			if ev.Kind() != event.KindRecord {
				continue
			}
			d, _ := ev.Decode()
			v, _ := d.Body.Get("n")
			seen = append(seen, v.(int64))
		}
		if p.First == 2 && groups != 1 {
			t.Errorf("piece from record 2 (inside the group) has %d group starts, want 1", groups)
		}
	}
	if want := []int{0, 2, 4}; len(firsts) != 3 || firsts[0] != 0 || firsts[1] != 2 || firsts[2] != 4 {
		t.Errorf("pieces start at %v, want %v", firsts, want)
	}
	if len(seen) != 5 {
		t.Fatalf("records %v, want 0..4 once", seen)
	}
	for i, n := range seen {
		if n != int64(i) {
			t.Fatalf("records %v, want 0..4 in order", seen)
		}
	}
	if _, err := Split([]byte{0x92, 0xc1}, 0, 0, nil); err == nil {
		t.Error("broken MessagePack split without error")
	}
}
