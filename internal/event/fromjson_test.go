package event

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestFromJSONValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
		wire string // expected MessagePack, if checked
	}{
		{"int", `10`, int64(10), "0a"},
		{"zero", `0`, int64(0), "00"},
		{"negative zero is int 0", `-0`, int64(0), "00"},
		{"negative int", `-5`, int64(-5), "fb"},
		{"int 128 uses uint8", `128`, int64(128), "cc 80"},
		{"negative int16", `-300`, int64(-300), "d1 fed4"},
		{"float", `10.5`, 10.5, "cb 4025000000000000"},
		{"float with zero fraction stays float", `10.0`, 10.0, "cb 4024000000000000"},
		{"exponent is float", `1e3`, 1000.0, "cb 408f400000000000"},
		{"capital exponent", `2E2`, 200.0, ""},
		{"signed exponent", `-1.5e-3`, -0.0015, ""},
		{"exponent plus", `1e+2`, 100.0, ""},
		{"18 digits fast path", `999999999999999999`, int64(999999999999999999), ""},
		{"int64 max", `9223372036854775807`, int64(math.MaxInt64), "cf 7fffffffffffffff"},
		{"int64 min", `-9223372036854775808`, int64(math.MinInt64), "d3 8000000000000000"},
		{"above int64 is uint64", `9223372036854775808`, uint64(math.MaxInt64 + 1), "cf 8000000000000000"},
		{"uint64 max", `18446744073709551615`, uint64(math.MaxUint64), "cf ffffffffffffffff"},
		{"above uint64 is float", `18446744073709551616`, 18446744073709551616.0, ""},
		{"below int64 is float", `-9223372036854775809`, -9223372036854775809.0, ""},
		{"huge int is float", `123456789012345678901234567890`, 1.2345678901234568e29, ""},
		{"overflowing float is inf", `1e400`, math.Inf(1), ""},
		{"underflowing float is 0", `1e-400`, 0.0, ""},
		{"true", `true`, true, "c3"},
		{"false", `false`, false, "c2"},
		{"null", `null`, nil, "c0"},
		{"string", `"abc"`, "abc", "a3 616263"},
		{"empty string", `""`, "", "a0"},
		{"utf8 string kept", `"héllo 😀"`, "héllo 😀", ""},
		{"escapes", `"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t", ""},
		{"unicode escape", `"\u00e9\u20AC"`, "é€", ""},
		{"NUL escape", `"a\u0000b"`, "a\x00b", ""},
		{"surrogate pair", `"\ud83d\ude00"`, "😀", ""},
		{"uppercase surrogate pair", `"\uD83D\uDE00x"`, "😀x", ""},
		{"lone high surrogate", `"\ud83dx"`, "\ufffdx", ""},
		{"high surrogate then non-surrogate escape", `"\ud83d\u0041"`, "\ufffdA", ""},
		{"lone low surrogate", `"\ude00"`, "\ufffd", ""},
		{"escape after plain text", `"abc\ndef"`, "abc\ndef", ""},
		{"empty object", `{}`, Map{}, "80"},
		{"empty array", `[]`, []any{}, "90"},
		{"whitespace everywhere", " \t\r\n{ \"a\" :\n[ 1 , 2 ] }\n ", Map{{"a", []any{int64(1), int64(2)}}}, "81 a161 92 01 02"},
		{"key order kept", `{"z":1,"a":2,"m":3}`, Map{{"z", int64(1)}, {"a", int64(2)}, {"m", int64(3)}}, "83 a17a 01 a161 02 a16d 03"},
		{"duplicate keys kept", `{"a":1,"a":2}`, Map{{"a", int64(1)}, {"a", int64(2)}}, ""},
		{"nested", `{"a":{"b":[1,{"c":[]},"x"]},"d":null}`, Map{{"a", Map{{"b", []any{int64(1), Map{{"c", []any{}}}, "x"}}}}, {"d", nil}}, ""},
		{"escaped key", `{"k\"\u00e9":1}`, Map{{"k\"é", int64(1)}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendFromJSON([]byte{0xc0}, []byte(tt.in)) // appends after existing bytes
			if err != nil {
				t.Fatalf("AppendFromJSON(%s): %v", tt.in, err)
			}
			if b[0] != 0xc0 {
				t.Fatal("existing bytes changed")
			}
			b = b[1:]
			if tt.wire != "" {
				if want := hx(t, tt.wire); !bytes.Equal(b, want) {
					t.Errorf("wire = % x, want % x", b, want)
				}
			}
			got, next, err := Value(b, 0)
			if err != nil || next != len(b) {
				t.Fatalf("Value: %v (next %d of %d)", err, next, len(b))
			}
			if !valueEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if _, err := oracleDecodeBytes(b); err != nil {
				t.Errorf("msgpack/v5 cannot read the output: %v", err)
			}
		})
	}
}

func TestFromJSONLargeContainers(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 255, 256, 65535, 65536, 70000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var arr, obj strings.Builder
			arr.WriteString(`{"arr":[`)
			obj.WriteString(`{`)
			for i := 0; i < n; i++ {
				if i > 0 {
					arr.WriteByte(',')
					obj.WriteByte(',')
				}
				arr.WriteString(strconv.Itoa(i))
				obj.WriteString(`"k` + strconv.Itoa(i) + `":[` + strconv.Itoa(i) + `]`)
			}
			arr.WriteString(`],"after":"x"}`)
			obj.WriteString(`}`)

			m, err := MapFromJSON([]byte(arr.String()))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := m.Get("arr")
			if l := len(a.([]any)); l != n {
				t.Fatalf("array has %d elements, want %d", l, n)
			}
			for i, v := range a.([]any) {
				if v != int64(i) {
					t.Fatalf("arr[%d] = %v", i, v)
				}
			}
			if v, _ := m.Get("after"); v != "x" {
				t.Errorf("value after the array: %v (header patching broke the layout)", v)
			}

			b, err := AppendFromJSON(nil, []byte(obj.String()))
			if err != nil {
				t.Fatal(err)
			}
			wantHdr := AppendMapHeader(nil, n)
			if !bytes.HasPrefix(b, wantHdr) {
				t.Errorf("object header % x, want % x", head(b), wantHdr)
			}
			o, err := oracleDecodeBytes(b)
			if err != nil {
				t.Fatalf("msgpack/v5: %v", err)
			}
			om := o.(Map)
			if len(om) != n {
				t.Fatalf("object has %d pairs, want %d", len(om), n)
			}
			for i, kv := range om {
				if kv.Key != "k"+strconv.Itoa(i) || !valueEqual(kv.Value, []any{int64(i)}) {
					t.Fatalf("pair %d = %v", i, kv)
				}
			}
		})
	}
}

func TestFromJSONDeepNesting(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	b, err := AppendFromJSON(nil, []byte(nest(maxDepth+1)))
	if err != nil {
		t.Fatalf("depth %d: %v", maxDepth+1, err)
	}
	if _, _, err := Value(b, 0); err != nil {
		t.Errorf("the converted value cannot be decoded: %v", err)
	}
	_, err = AppendFromJSON(nil, []byte(nest(maxDepth+2)))
	if err == nil {
		t.Fatal("accepted nesting beyond the limit")
	}
	if off := jsonErrOffset(t, err); off != maxDepth+1 {
		t.Errorf("offset %d, want %d", off, maxDepth+1)
	}
}

func TestFromJSONErrors(t *testing.T) {
	tests := []struct {
		in  string
		off int
	}{
		{``, 0},
		{`   `, 3},
		{`{"a":}`, 5},
		{`{"a" 1}`, 5},
		{`{"a":1,}`, 7},
		{`{"a":1 "b":2}`, 7},
		{`{,}`, 1},
		{`{1:2}`, 1},
		{`{"a":1`, 6},
		{`[1,2`, 4},
		{`[1,]`, 3},
		{`[1 2]`, 3},
		{`{"a":tru}`, 5},
		{`nul`, 0},
		{`falsy`, 0},
		{`falsex`, 5},
		{`"abc`, 4},
		{`"a\`, 2},
		{`{"a":"\x"}`, 6},
		{`"\u12g4"`, 1},
		{`"\u12"`, 1},
		{"\"a\x01b\"", 2},
		{"\"a\nb\"", 2},
		{`{"a":1} x`, 8},
		{`{"a":1}}`, 7},
		{`1 2`, 2},
		{`-`, 0},
		{`-x`, 0},
		{`1.2.3`, 0},
		{`1e`, 0},
		{`{"a":+1}`, 5},
		{`{"a":.5}`, 5},
		{`'a'`, 0},
	}
	for _, tt := range tests {
		dst := []byte{1, 2}
		out, err := AppendFromJSON(dst, []byte(tt.in))
		if err == nil {
			t.Errorf("AppendFromJSON(%q) succeeded: % x", tt.in, out)
			continue
		}
		if off := jsonErrOffset(t, err); off != tt.off {
			t.Errorf("AppendFromJSON(%q): offset %d, want %d (%v)", tt.in, off, tt.off, err)
		}
		if !bytes.Equal(out, []byte{1, 2}) {
			t.Errorf("AppendFromJSON(%q) returned % x on error, want dst unchanged", tt.in, out)
		}
		if json.Valid([]byte(tt.in)) {
			t.Errorf("test bug: %q is valid JSON", tt.in)
		}
	}
}

func TestMapFromJSON(t *testing.T) {
	m, err := MapFromJSON([]byte(`{"log":"x","n":1}`))
	if err != nil || !valueEqual(m, Map{{"log", "x"}, {"n", int64(1)}}) {
		t.Errorf("MapFromJSON = %#v, %v", m, err)
	}
	for _, in := range []string{`[1]`, `  "s"`, `1`, `null`} {
		_, err := MapFromJSON([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("MapFromJSON(%q) = %v, want 'not a JSON object'", in, err)
			continue
		}
		if off := jsonErrOffset(t, err); off != len(in)-len(strings.TrimLeft(in, " ")) {
			t.Errorf("MapFromJSON(%q) offset %d", in, off)
		}
	}
	if _, err := MapFromJSON([]byte(`{"a":`)); err == nil {
		t.Error("MapFromJSON accepted broken JSON")
	}
}

// TestFromJSONAgreesWithEncodingJSON compares structure and values with
// encoding/json (numbers compared as float64, which both must agree on).
func TestFromJSONAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{"log":"GET /index.html 200","kubernetes":{"pod":"web-1","labels":{"app":"web"}},"ts":1.5,"n":[1,-2,3.25e2]}`,
		`{"a":"\u00e9\ud83d\ude00\n","b":[[],{},[{}]],"c":null,"d":true}`,
		`{"big":12345678901234567890,"neg":-12345,"tiny":1e-300}`,
	}
	for _, d := range docs {
		m, err := MapFromJSON([]byte(d))
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		var ref any
		if err := json.Unmarshal([]byte(d), &ref); err != nil {
			t.Fatal(err)
		}
		if !sameAsStdJSON(m, ref) {
			t.Errorf("%s: got %#v, encoding/json %#v", d, m, ref)
		}
	}
}

// sameAsStdJSON compares a decoded value with encoding/json's view of it.
func sameAsStdJSON(v, ref any) bool {
	switch v := v.(type) {
	case Map:
		r, ok := ref.(map[string]any)
		if !ok || len(r) != len(v) {
			return false
		}
		for _, kv := range v {
			if !sameAsStdJSON(kv.Value, r[kv.Key]) {
				return false
			}
		}
		return true
	case []any:
		r, ok := ref.([]any)
		if !ok || len(r) != len(v) {
			return false
		}
		for i := range v {
			if !sameAsStdJSON(v[i], r[i]) {
				return false
			}
		}
		return true
	case int64:
		return ref == float64(v)
	case uint64:
		return ref == float64(v)
	case float64:
		return ref == v
	}
	return v == ref
}

// Plain decimals take a shortcut past strconv; they must decode to the very
// same float64 (bit for bit, signed zeros included) as ParseFloat gives.
func TestDecimalShortcutMatchesParseFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	texts := []string{"0.0", "-0.0", "1.", "-.5", "0.1", "0.3", "123.4", "999999999999999.", "9007199254740993.0",
		"0.000000000000001", "-123456789012.345", "1.5e3", "1.2.3", "00.25", "12345678901234.56"}
	for range 200000 {
		digits := 1 + rng.IntN(16)
		var sb strings.Builder
		if rng.IntN(2) == 0 {
			sb.WriteByte('-')
		}
		dot := 1 + rng.IntN(digits)
		for i := range digits {
			if i == dot {
				sb.WriteByte('.')
			}
			sb.WriteByte(byte('0' + rng.IntN(10)))
		}
		if dot == digits {
			sb.WriteString(".0")
		}
		texts = append(texts, sb.String())
	}
	for _, text := range texts {
		got, err := AppendFromJSON(nil, []byte(text))
		want, perr := strconv.ParseFloat(text, 64)
		if perr != nil {
			if err == nil {
				t.Errorf("%s: converted to % x, ParseFloat refuses it: %v", text, got, perr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", text, err)
			continue
		}
		if exp := AppendFloat64(nil, want); !bytes.Equal(got, exp) {
			t.Errorf("%s: % x, want % x (%v)", text, got, exp, want)
		}
	}
}
