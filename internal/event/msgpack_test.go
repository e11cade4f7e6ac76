package event

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestAppendIntWireForm(t *testing.T) {
	// msgpack-c packs with the smallest form; non-negative values use the
	// unsigned forms. The expected bytes are the MessagePack spec's.
	tests := []struct {
		v    int64
		want string
	}{
		{0, "00"},
		{127, "7f"},
		{128, "cc 80"},
		{255, "cc ff"},
		{256, "cd 0100"},
		{65535, "cd ffff"},
		{65536, "ce 00010000"},
		{math.MaxUint32, "ce ffffffff"},
		{math.MaxUint32 + 1, "cf 0000000100000000"},
		{math.MaxInt64, "cf 7fffffffffffffff"},
		{-1, "ff"},
		{-32, "e0"},
		{-33, "d0 df"},
		{-128, "d0 80"},
		{-129, "d1 ff7f"},
		{-32768, "d1 8000"},
		{-32769, "d2 ffff7fff"},
		{math.MinInt32, "d2 80000000"},
		{math.MinInt32 - 1, "d3 ffffffff7fffffff"},
		{math.MinInt64, "d3 8000000000000000"},
	}
	for _, tt := range tests {
		got := AppendInt(nil, tt.v)
		if want := hx(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("AppendInt(%d) = % x, want % x", tt.v, got, want)
		}
		// msgpack/v5's EncodeInt is also minimal: both must agree.
		ref, err := msgpack.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		var i64 int64
		if err := msgpack.Unmarshal(got, &i64); err != nil || i64 != tt.v {
			t.Errorf("msgpack/v5 reads % x as %d (%v), want %d (v5 itself writes % x)", got, i64, err, tt.v, ref)
		}
	}
	if got := AppendUint(nil, math.MaxUint64); !bytes.Equal(got, hx(t, "cf ffffffffffffffff")) {
		t.Errorf("AppendUint(max) = % x", got)
	}
}

// TestValueDecodesEveryWireForm encodes with msgpack/v5 (an independent
// encoder, forced to each wire form) and checks what Value returns.
func TestValueDecodesEveryWireForm(t *testing.T) {
	enc := func(f func(e *msgpack.Encoder) error) []byte {
		var buf bytes.Buffer
		if err := f(msgpack.NewEncoder(&buf)); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	str := func(n int) string { return strings.Repeat("x", n) }
	bin := func(n int) []byte { return bytes.Repeat([]byte{0xab}, n) }
	tests := []struct {
		name string
		in   []byte
		want any
	}{
		{"nil", enc(func(e *msgpack.Encoder) error { return e.EncodeNil() }), nil},
		{"false", enc(func(e *msgpack.Encoder) error { return e.EncodeBool(false) }), false},
		{"true", enc(func(e *msgpack.Encoder) error { return e.EncodeBool(true) }), true},
		{"fixint 0", enc(func(e *msgpack.Encoder) error { return e.EncodeInt(0) }), int64(0)},
		{"fixint 127", enc(func(e *msgpack.Encoder) error { return e.EncodeInt(127) }), int64(127)},
		{"negative fixint -1", enc(func(e *msgpack.Encoder) error { return e.EncodeInt(-1) }), int64(-1)},
		{"negative fixint -32", enc(func(e *msgpack.Encoder) error { return e.EncodeInt(-32) }), int64(-32)},
		{"uint8 0", enc(func(e *msgpack.Encoder) error { return e.EncodeUint8(0) }), int64(0)},
		{"uint8 255", enc(func(e *msgpack.Encoder) error { return e.EncodeUint8(255) }), int64(255)},
		{"uint16 65535", enc(func(e *msgpack.Encoder) error { return e.EncodeUint16(65535) }), int64(65535)},
		{"uint32 max", enc(func(e *msgpack.Encoder) error { return e.EncodeUint32(math.MaxUint32) }), int64(math.MaxUint32)},
		{"uint64 small", enc(func(e *msgpack.Encoder) error { return e.EncodeUint64(1) }), int64(1)},
		{"uint64 MaxInt64", enc(func(e *msgpack.Encoder) error { return e.EncodeUint64(math.MaxInt64) }), int64(math.MaxInt64)},
		{"uint64 MaxInt64+1", enc(func(e *msgpack.Encoder) error { return e.EncodeUint64(math.MaxInt64 + 1) }), uint64(math.MaxInt64 + 1)},
		{"uint64 max", enc(func(e *msgpack.Encoder) error { return e.EncodeUint64(math.MaxUint64) }), uint64(math.MaxUint64)},
		{"int8 -128", enc(func(e *msgpack.Encoder) error { return e.EncodeInt8(-128) }), int64(-128)},
		{"int8 5", enc(func(e *msgpack.Encoder) error { return e.EncodeInt8(5) }), int64(5)},
		{"int16 min", enc(func(e *msgpack.Encoder) error { return e.EncodeInt16(math.MinInt16) }), int64(math.MinInt16)},
		{"int32 min", enc(func(e *msgpack.Encoder) error { return e.EncodeInt32(math.MinInt32) }), int64(math.MinInt32)},
		{"int64 min", enc(func(e *msgpack.Encoder) error { return e.EncodeInt64(math.MinInt64) }), int64(math.MinInt64)},
		{"int64 max", enc(func(e *msgpack.Encoder) error { return e.EncodeInt64(math.MaxInt64) }), int64(math.MaxInt64)},
		{"float32", enc(func(e *msgpack.Encoder) error { return e.EncodeFloat32(1.5) }), float32(1.5)},
		{"float32 NaN", enc(func(e *msgpack.Encoder) error { return e.EncodeFloat32(float32(math.NaN())) }), float32(math.NaN())},
		{"float64", enc(func(e *msgpack.Encoder) error { return e.EncodeFloat64(-2.25) }), -2.25},
		{"float64 +Inf", enc(func(e *msgpack.Encoder) error { return e.EncodeFloat64(math.Inf(1)) }), math.Inf(1)},
		{"str 0", enc(func(e *msgpack.Encoder) error { return e.EncodeString("") }), ""},
		{"str 31", enc(func(e *msgpack.Encoder) error { return e.EncodeString(str(31)) }), str(31)},
		{"str 32", enc(func(e *msgpack.Encoder) error { return e.EncodeString(str(32)) }), str(32)},
		{"str 255", enc(func(e *msgpack.Encoder) error { return e.EncodeString(str(255)) }), str(255)},
		{"str 256", enc(func(e *msgpack.Encoder) error { return e.EncodeString(str(256)) }), str(256)},
		{"str 65535", enc(func(e *msgpack.Encoder) error { return e.EncodeString(str(65535)) }), str(65535)},
		{"str 65536", enc(func(e *msgpack.Encoder) error { return e.EncodeString(str(65536)) }), str(65536)},
		{"str utf8", enc(func(e *msgpack.Encoder) error { return e.EncodeString("héllo 😀") }), "héllo 😀"},
		{"bin 0", enc(func(e *msgpack.Encoder) error { return e.EncodeBytes([]byte{}) }), []byte{}},
		{"bin 255", enc(func(e *msgpack.Encoder) error { return e.EncodeBytes(bin(255)) }), bin(255)},
		{"bin 256", enc(func(e *msgpack.Encoder) error { return e.EncodeBytes(bin(256)) }), bin(256)},
		{"bin 65536", enc(func(e *msgpack.Encoder) error { return e.EncodeBytes(bin(65536)) }), bin(65536)},
		{"array", enc(func(e *msgpack.Encoder) error { return e.Encode([]any{1, "a", nil}) }), []any{int64(1), "a", nil}},
		{"array16", enc(func(e *msgpack.Encoder) error { return e.Encode(make([]any, 16)) }), make([]any, 16)},
		{"array32", enc(func(e *msgpack.Encoder) error { return e.Encode(make([]any, 65536)) }), make([]any, 65536)},
		{"map keeps order", enc(func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(3)
			for _, k := range []string{"z", "a", "m"} {
				_ = e.EncodeString(k)
				_ = e.EncodeInt(int64(k[0]))
			}
			return nil
		}), Map{{"z", int64('z')}, {"a", int64('a')}, {"m", int64('m')}}},
	}
	for _, n := range []int{1, 2, 4, 8, 16, 0, 3, 17, 255, 256, 65536} {
		data := bin(n)
		tests = append(tests, struct {
			name string
			in   []byte
			want any
		}{
			"ext " + strconv.Itoa(n),
			enc(func(e *msgpack.Encoder) error {
				if err := e.EncodeExtHeader(42, n); err != nil {
					return err
				}
				_, err := e.Writer().Write(data)
				return err
			}),
			Ext{Type: 42, Data: data},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append(tt.in, 0xc0) // a following value must not be consumed
			got, next, err := Value(in, 0)
			if err != nil {
				t.Fatalf("Value(% x): %v", head(tt.in), err)
			}
			if !valueEqual(got, tt.want) {
				t.Errorf("Value(% x) = %#v, want %#v", head(tt.in), got, tt.want)
			}
			if next != len(tt.in) {
				t.Errorf("next = %d, want %d", next, len(tt.in))
			}
			end, err := Skip(in, 0)
			if err != nil || end != len(tt.in) {
				t.Errorf("Skip = %d, %v; want %d", end, err, len(tt.in))
			}
			// and back: AppendValue output must be read by msgpack/v5 as the same value
			re := AppendValue(nil, got)
			back, err := oracleDecodeBytes(re)
			if err != nil {
				t.Fatalf("msgpack/v5 cannot read AppendValue output % x: %v", head(re), err)
			}
			if !valueEqual(back, tt.want) {
				t.Errorf("msgpack/v5 reads AppendValue output as %#v, want %#v", back, tt.want)
			}
		})
	}
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

func TestAppendHeaders(t *testing.T) {
	tests := []struct {
		n          int
		arr, mapHd string
	}{
		{0, "90", "80"},
		{15, "9f", "8f"},
		{16, "dc 0010", "de 0010"},
		{65535, "dc ffff", "de ffff"},
		{65536, "dd 00010000", "df 00010000"},
	}
	for _, tt := range tests {
		if got := AppendArrayHeader(nil, tt.n); !bytes.Equal(got, hx(t, tt.arr)) {
			t.Errorf("AppendArrayHeader(%d) = % x, want %s", tt.n, got, tt.arr)
		}
		if got := AppendMapHeader(nil, tt.n); !bytes.Equal(got, hx(t, tt.mapHd)) {
			t.Errorf("AppendMapHeader(%d) = % x, want %s", tt.n, got, tt.mapHd)
		}
	}
	exts := []struct {
		n    int
		want string
	}{
		{1, "d4 07"}, {2, "d5 07"}, {4, "d6 07"}, {8, "d7 07"}, {16, "d8 07"},
		{0, "c7 00 07"}, {3, "c7 03 07"}, {255, "c7 ff 07"}, {256, "c8 0100 07"}, {65536, "c9 00010000 07"},
	}
	for _, tt := range exts {
		got := AppendExt(nil, 7, make([]byte, tt.n))
		if want := hx(t, tt.want); !bytes.HasPrefix(got, want) || len(got) != len(want)+tt.n {
			t.Errorf("AppendExt(len %d) = % x..., want %s", tt.n, head(got), tt.want)
		}
	}
}

// TestAppendValueOracle checks that msgpack/v5 reads what AppendValue writes.
func TestAppendValueOracle(t *testing.T) {
	vals := []any{
		nil, true, false,
		int64(0), int64(-1), int64(-32), int64(-33), int64(127), int64(128), int64(math.MinInt64), int64(math.MaxInt64),
		uint64(math.MaxUint64), float32(3.25), math.Pi, math.Inf(-1),
		"", strings.Repeat("é", 40), []byte("raw"),
		[]any{int64(1), []any{}, Map{}},
		Map{{"b", int64(1)}, {"a", Map{{"nested", []any{"x", 2.5}}}}},
		Ext{Type: -5, Data: []byte{1, 2, 3}},
	}
	for _, v := range vals {
		b := AppendValue(nil, v)
		got, err := oracleDecodeBytes(b)
		if err != nil {
			t.Errorf("msgpack/v5 cannot read %#v as % x: %v", v, b, err)
			continue
		}
		if !valueEqual(got, v) {
			t.Errorf("msgpack/v5 read %#v back as %#v", v, got)
		}
		own, next, err := Value(b, 0)
		if err != nil || next != len(b) || !valueEqual(own, v) {
			t.Errorf("Value(AppendValue(%#v)) = %#v, %d, %v", v, own, next, err)
		}
	}
	// Go integer kinds other than int64 and Time/Raw.
	kinds := []struct {
		in   any
		want any
	}{
		{int(-3), int64(-3)}, {int8(-3), int64(-3)}, {int16(300), int64(300)}, {int32(-70000), int64(-70000)},
		{uint(7), int64(7)}, {uint8(200), int64(200)}, {uint16(60000), int64(60000)}, {uint32(math.MaxUint32), int64(math.MaxUint32)},
		{Time{Sec: 1, Nsec: 2}, Ext{Type: 0, Data: []byte{0, 0, 0, 1, 0, 0, 0, 2}}},
		{Raw{0x92, 0x01, 0x02}, []any{int64(1), int64(2)}},
	}
	for _, k := range kinds {
		got, _, err := Value(AppendValue(nil, k.in), 0)
		if err != nil || !valueEqual(got, k.want) {
			t.Errorf("AppendValue(%T %v) decodes as %#v, %v; want %#v", k.in, k.in, got, err, k.want)
		}
	}
}

func TestValueErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		off  int
	}{
		{"empty", "", 0},
		{"reserved c1", "c1", 0},
		{"truncated uint16", "cd 01", 0},
		{"truncated float64", "cb 0000", 0},
		{"truncated fixstr", "a3 6162", 1},
		{"truncated str8 length", "d9", 1},
		{"truncated str16 payload", "da 0005 6162", 3},
		{"str32 length beyond input", "db 7fffffff 61", 1},
		{"array beyond input", "dd 7fffffff 01", 1},
		{"array element missing", "92 01", 0},
		{"bad array element", "93 01 c1 02", 2},
		{"map value missing", "81 a161", 3},
		{"map32 length beyond input", "df 00010000 01", 1},
		{"map32 pairs beyond input", "df 00000003 01", 0},
		{"bad element in map", "82 a161 01 a162 c1", 6},
		{"truncated ext", "d7 00 0102", 1},
		{"ext8 payload truncated", "c7 05 01 0102", 2},
		{"ext8 type byte missing", "c7 05", 2},
		{"ext16 type byte missing", "c8 0005", 3},
		{"ext32 type byte missing", "c9 00000001", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hx(t, tt.in)
			_, _, err := Value(b, 0)
			if err == nil {
				t.Fatalf("Value(% x) succeeded", b)
			}
			if got := decodeErrOffset(t, err); got != tt.off {
				t.Errorf("Value error offset = %d (%v), want %d", got, err, tt.off)
			}
			// Skip and Value must agree on malformed input.
			end, serr := Skip(b, 0)
			if serr == nil || end != 0 {
				t.Fatalf("Skip(% x) = %d, %v; want 0 and an error", b, end, serr)
			}
			if off := decodeErrOffset(t, serr); off < 0 || off > len(b) {
				t.Errorf("Skip error offset %d outside the input (%v)", off, serr)
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	deep := func(n int) []byte {
		b := bytes.Repeat([]byte{0x91}, n)
		return append(b, 0xc0)
	}
	if _, _, err := Value(deep(maxDepth), 0); err != nil {
		t.Errorf("Value at depth %d: %v", maxDepth, err)
	}
	if _, err := Skip(deep(maxDepth), 0); err != nil {
		t.Errorf("Skip at depth %d: %v", maxDepth, err)
	}
	_, _, err := Value(deep(maxDepth+2), 0)
	if err == nil {
		t.Fatal("Value accepted nesting beyond the limit")
	}
	if off := decodeErrOffset(t, err); off != maxDepth+1 {
		t.Errorf("depth error offset %d, want %d", off, maxDepth+1)
	}
	if _, err := Skip(deep(maxDepth+2), 0); err == nil {
		t.Error("Skip accepted nesting beyond the limit")
	}
}

func TestNonStringKeys(t *testing.T) {
	// Records almost always have string keys; others get a text form.
	b := hx(t, "84 01 a161 c0 a162 c4 02 6869 a163 92 01 02 a164")
	m, _, err := Value(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Map{{"1", "a"}, {"null", "b"}, {"hi", "c"}, {"[1,2]", "d"}}
	if !valueEqual(m, want) {
		t.Errorf("got %#v, want %#v", m, want)
	}
}

func TestNestedNonStringKeys(t *testing.T) {
	// key = {1:"a", "q\"":[true]} → nested non-string keys raw, strings escaped once
	b := hx(t, "81 82 01 a161 a2 7122 91 c3 c0")
	m, _, err := Value(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Map{{`{1:"a","q\"":[true]}`, nil}}); !valueEqual(m, want) {
		t.Errorf("got %#v, want %#v", m, want)
	}
}

// TestMapKeyTextIsLinear: maps used as keys of maps used as keys... must not
// make the key text grow exponentially (a 60-byte input used to need ~1 GB).
func TestMapKeyTextIsLinear(t *testing.T) {
	const depth = 300
	b := bytes.Repeat([]byte{0x81}, depth)
	b = append(b, 0xa1, '"')
	b = append(b, bytes.Repeat([]byte{0xc0}, depth)...)
	v, _, err := Value(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if k := v.(Map)[0].Key; len(k) > 10*len(b) {
		t.Errorf("key text is %d bytes for a %d-byte input", len(k), len(b))
	}
	it := NewIter(cat(hx(t, "92 01"), b))
	if !it.Next() {
		t.Fatal(it.Err())
	}
	if _, err := it.Event().Decode(); err != nil {
		t.Fatal(err)
	}
}

// AppendStringBytes encodes as AppendString does, at every header size.
func TestAppendStringBytes(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		if got, want := AppendStringBytes(nil, []byte(s)), AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("len %d: header %x, want %x", n, got[:min(5, len(got))], want[:min(5, len(want))])
		}
	}
}
