package wasm

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/floe-io/floe/internal/event"
)

// randValue appends a random MessagePack value: every kind the renderer
// meets, including the ones it leaves to the general path.
func randValue(r *rand.Rand, b []byte, depth int) []byte {
	k := r.IntN(16)
	if depth >= 3 && k >= 12 {
		k = r.IntN(12)
	}
	switch k {
	case 0:
		return event.AppendNil(b)
	case 1:
		return event.AppendBool(b, r.IntN(2) == 0)
	case 2:
		return event.AppendInt(b, r.Int64N(1<<r.IntN(63))-int64(r.IntN(2))<<r.IntN(63))
	case 3:
		return event.AppendUint(b, r.Uint64()>>r.IntN(64))
	case 4:
		fs := []float64{0, math.Copysign(0, -1), 1.5, 120, 1e300, 3.54789e-3, math.NaN(), math.Inf(1), math.Inf(-1), r.NormFloat64()}
		return event.AppendFloat64(b, fs[r.IntN(len(fs))])
	case 5:
		return event.AppendFloat32(b, float32(r.NormFloat64()))
	case 6, 7:
		return event.AppendString(b, randString(r))
	case 8:
		return event.AppendBytes(b, []byte(randString(r)))
	case 9:
		return event.AppendExt(b, int8(r.IntN(3)), []byte(randString(r)))
	case 10:
		// big strings: str16 / str32 headers
		if r.IntN(20) == 0 {
			return event.AppendString(b, string(bytes.Repeat([]byte("ab\x00é"), r.IntN(20000))))
		}
		return event.AppendString(b, string(bytes.Repeat([]byte("é"), r.IntN(100))))
	case 11:
		return append(b, 0xc1) // never used: the general path reports the error
	case 12, 13:
		n := r.IntN(6)
		if r.IntN(10) == 0 {
			n = r.IntN(40)
		}
		b = event.AppendArrayHeader(b, n)
		for range n {
			b = randValue(r, b, depth+1)
		}
		return b
	}
	return randMap(r, b, depth)
}

func randMap(r *rand.Rand, b []byte, depth int) []byte {
	n := r.IntN(6)
	if r.IntN(8) == 0 {
		n = r.IntN(36)
	}
	if depth >= 3 {
		n = min(n, 2)
	}
	b = event.AppendMapHeader(b, n)
	keys := []string{"a", "b", "log", "message", "é", "k\"ey", "dup"}
	for range n {
		switch r.IntN(10) {
		case 0:
			b = randValue(r, b, depth+1) // any kind of key
		case 1:
			b = event.AppendBytes(b, []byte(keys[r.IntN(len(keys))]))
		default:
			if r.IntN(3) == 0 {
				b = event.AppendString(b, keys[r.IntN(len(keys))])
			} else {
				b = event.AppendString(b, randString(r))
			}
		}
		b = randValue(r, b, depth+1)
	}
	return b
}

func randString(r *rand.Rand) string {
	parts := []string{"x", "hello", "\"", "\\", "\n", "\t", "\x01", "\x7f", "/", "é", "€", "😀", "\xff", "\xe2\x82", "\xc3", "日本"}
	var s []byte
	for range r.IntN(8) {
		s = append(s, parts[r.IntN(len(parts))]...)
	}
	return string(s)
}

func TestBodyJSONMatchesEventAppendJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fast, total := 0, 0
	n := 20000
	if raceEnabled { // no concurrency here; keep the race run short
		n = 2000
	}
	for _, o := range []event.JSONOptions{event.DefaultJSON, {}, {EscapeUnicode: true, NaNToNull: true}} {
		for i := range n {
			body := randMap(r, nil, 0)
			if i%7 == 0 {
				body = body[:r.IntN(len(body)+1)] // truncated
			}
			compareJSON(t, body, o)
			if _, _, ok := fastJSON(nil, body, 0, o, 0); ok {
				fast++
			}
			total++
		}
	}
	if fast < total/4 || fast > total*9/10 {
		t.Errorf("the fast path rendered %d of %d bodies: both paths should be exercised", fast, total)
	}
	t.Logf("fast path: %d of %d", fast, total)
}

func compareJSON(t *testing.T, body []byte, o event.JSONOptions) {
	t.Helper()
	prefix := []byte("prefix")
	got, err := appendBodyJSON(append([]byte(nil), prefix...), body, o)
	v, _, werr := event.Value(body, 0)
	if (err != nil) != (werr != nil) {
		t.Fatalf("% x: error %v, event.Value %v", body, err, werr)
	}
	if err != nil {
		if string(got) != "prefix" {
			t.Fatalf("% x: output left after an error: %q", body, got)
		}
		return
	}
	want := event.AppendJSON(append([]byte(nil), prefix...), v, o)
	if !bytes.Equal(got, want) {
		t.Fatalf("% x:\n got  %s\n want %s", body, got, want)
	}
}

func FuzzBodyJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		f.Add(randMap(r, nil, 0))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		compareJSON(t, body, event.DefaultJSON)
	})
}
