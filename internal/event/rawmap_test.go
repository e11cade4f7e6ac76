package event

import (
	"bytes"
	"fmt"
	"testing"
)

// mapOf builds a Map of n pairs k0..k(n-1) with int values.
func mapOf(n int) Map {
	m := make(Map, n)
	for i := range m {
		m[i] = KV{fmt.Sprintf("k%d", i), int64(i)}
	}
	return m
}

// MapSet and MapRemove on the encoded form give the bytes Map.Set and
// removing a pair give, across the header-size boundaries.
func TestRawMapEditsMatchMap(t *testing.T) {
	for _, n := range []int{0, 1, 14, 15, 16, 17, 65534, 65535, 65536} {
		m := mapOf(n)
		prefix := []byte{0x01, 0x02}
		enc := m.AppendMsgpack(append([]byte(nil), prefix...))

		// Append a new key.
		got, err := MapSet(append([]byte(nil), enc...), len(prefix), "new", AppendString(nil, "v"))
		if err != nil {
			t.Fatalf("n=%d set new: %v", n, err)
		}
		want := m.Clone()
		want.Set("new", "v")
		if w := want.AppendMsgpack(append([]byte(nil), prefix...)); !bytes.Equal(got, w) {
			t.Fatalf("n=%d set new: bytes differ (len %d vs %d)", n, len(got), len(w))
		}
		if n == 0 {
			continue
		}

		// Replace an existing key's value with a longer one.
		key := fmt.Sprintf("k%d", n/2)
		got, err = MapSet(append([]byte(nil), enc...), len(prefix), key, AppendString(nil, "a longer value"))
		if err != nil {
			t.Fatalf("n=%d replace: %v", n, err)
		}
		want = m.Clone()
		want.Set(key, "a longer value")
		if w := want.AppendMsgpack(append([]byte(nil), prefix...)); !bytes.Equal(got, w) {
			t.Fatalf("n=%d replace: bytes differ", n)
		}

		// Remove the pair.
		b := append([]byte(nil), enc...)
		p, found, end, err := MapFind(b, len(prefix), key)
		if err != nil || !found || end != len(b) {
			t.Fatalf("n=%d find %s: found %v end %d of %d, %v", n, key, found, end, len(b), err)
		}
		if s, ok := MapStringAt(b, p.Key); !ok || string(s) != key {
			t.Fatalf("n=%d: key at %d is %q", n, p.Key, s)
		}
		got, err = MapRemove(b, len(prefix), p)
		if err != nil {
			t.Fatalf("n=%d remove: %v", n, err)
		}
		want = append(m[:n/2:n/2], m[n/2+1:]...)
		if w := want.AppendMsgpack(append([]byte(nil), prefix...)); !bytes.Equal(got, w) {
			t.Fatalf("n=%d remove: bytes differ", n)
		}
	}
}

// The first pair with a key is the one found and replaced, as Map.Index
// does; non-string keys are stepped over.
func TestMapFindFirstAndNonStringKeys(t *testing.T) {
	b := AppendMapHeader(nil, 3)
	b = AppendInt(b, 7) // a non-string key
	b = AppendString(b, "x")
	b = AppendString(b, "dup")
	b = AppendInt(b, 1)
	b = AppendString(b, "dup")
	b = AppendInt(b, 2)
	p, found, _, err := MapFind(b, 0, "dup")
	if err != nil || !found {
		t.Fatalf("found %v, %v", found, err)
	}
	v, _, _ := Value(b, p.Value)
	if v != int64(1) {
		t.Fatalf("first dup holds %v", v)
	}
	got, err := MapSet(b, 0, "dup", AppendInt(nil, 9))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := mapValue(got, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m[1].Value != int64(9) || m[2].Value != int64(2) {
		t.Fatalf("after set: %v", m)
	}
}

// Malformed or trailing input is an error naming the offset, never a panic.
func TestRawMapErrors(t *testing.T) {
	if _, _, _, err := MapFind([]byte{0x92, 0x01, 0x02}, 0, "k"); err == nil {
		t.Fatal("an array was taken for a map")
	}
	if _, _, _, err := MapFind([]byte{0x81, 0xa1, 'k'}, 0, "k"); err == nil {
		t.Fatal("a truncated map was read")
	}
	b := append(mapOf(1).AppendMsgpack(nil), 0xc0)
	if _, err := MapSet(b, 0, "k", []byte{0xc0}); err == nil {
		t.Fatal("MapSet on a map that is not the last value")
	}
}

func FuzzMapSet(f *testing.F) {
	f.Add(mapOf(3).AppendMsgpack(nil), "k1")
	f.Add(mapOf(15).AppendMsgpack(nil), "new")
	f.Add([]byte{0xde, 0x00, 0x01, 0xa1, 'k', 0xc0}, "k")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		if _, _, _, err := MapFind(b, 0, key); err != nil {
			return // malformed: refused, not a panic
		}
		m, _, err := mapValue(b, 0, 0)
		if err != nil {
			return
		}
		// Re-encoded, every key is a str, as in records from text.
		enc := m.AppendMsgpack(nil)
		got, err := MapSet(append([]byte(nil), enc...), 0, key, AppendString(nil, "v"))
		if err != nil {
			t.Fatalf("MapSet refused a valid map: %v", err)
		}
		m.Set(key, "v")
		if want := m.AppendMsgpack(nil); !bytes.Equal(got, want) {
			t.Fatalf("MapSet gave % x, Map.Set % x", got, want)
		}
	})
}
