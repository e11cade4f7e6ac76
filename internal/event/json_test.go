package event

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestAppendJSONScalars(t *testing.T) {
	negNaN := math.Float64frombits(0xfff8000000000000) // x86's default NaN, printed "-nan" by glibc
	tests := []struct {
		name string
		v    any
		o    JSONOptions
		want string
	}{
		{"nil", nil, DefaultJSON, `null`},
		{"true", true, DefaultJSON, `true`},
		{"false", false, DefaultJSON, `false`},
		{"zero", int64(0), DefaultJSON, `0`},
		{"negative", int64(-42), DefaultJSON, `-42`},
		{"int64 min", int64(math.MinInt64), DefaultJSON, `-9223372036854775808`},
		{"int64 max", int64(math.MaxInt64), DefaultJSON, `9223372036854775807`},
		{"uint64 max", uint64(math.MaxUint64), DefaultJSON, `18446744073709551615`},
		{"int", 7, DefaultJSON, `7`},
		{"int32", int32(-7), DefaultJSON, `-7`},
		{"uint8", uint8(200), DefaultJSON, `200`},
		// floats: integral → %.1f, otherwise %.16g
		{"integral float", 120.0, DefaultJSON, `120.0`},
		{"zero float", 0.0, DefaultJSON, `0.0`},
		{"negative zero", math.Copysign(0, -1), DefaultJSON, `-0.0`},
		{"negative integral", -3.0, DefaultJSON, `-3.0`},
		{"fraction", 10.5, DefaultJSON, `10.5`},
		{"small fraction", 3.54789e-3, DefaultJSON, `0.00354789`},
		{"exponent form below 1e-4", 1.5e-5, DefaultJSON, `1.5e-05`},
		{"1e-4 stays fixed", 0.0001, DefaultJSON, `0.0001`},
		{"0.1", 0.1, DefaultJSON, `0.1`},
		{"0.1+0.2 at 16 digits", 0.1 + 0.2, DefaultJSON, `0.3`},
		{"one third", 1.0 / 3, DefaultJSON, `0.3333333333333333`},
		{"pi", math.Pi, DefaultJSON, `3.141592653589793`},
		{"big fraction", 123456789012.25, DefaultJSON, `123456789012.25`},
		{"1e15 integral", 1e15, DefaultJSON, `1000000000000000.0`},
		{"1e18 integral", 1e18, DefaultJSON, `1000000000000000000.0`},
		{"2^62", float64(1 << 62), DefaultJSON, `4611686018427387904.0`},
		{"-2^63 is (long long) exact", -math.Pow(2, 63), DefaultJSON, `-9223372036854775808.0`},
		{"2^63 overflows (long long)", math.Pow(2, 63), DefaultJSON, `9.223372036854776e+18`},
		{"1e20", 1e20, DefaultJSON, `1e+20`},
		{"-1e20", -1e20, DefaultJSON, `-1e+20`},
		{"1e300", 1e300, DefaultJSON, `1e+300`},
		{"max float", math.MaxFloat64, DefaultJSON, `1.797693134862316e+308`},
		{"smallest denormal", math.SmallestNonzeroFloat64, DefaultJSON, `4.940656458412465e-324`},
		{"NaN", math.NaN(), DefaultJSON, `nan`},
		{"negative NaN", negNaN, DefaultJSON, `-nan`},
		{"NaN to null", math.NaN(), JSONOptions{NaNToNull: true}, `null`},
		{"negative NaN to null", negNaN, JSONOptions{NaNToNull: true}, `null`},
		{"+Inf", math.Inf(1), DefaultJSON, `inf`},
		{"-Inf", math.Inf(-1), DefaultJSON, `-inf`},
		{"Inf is not NaN", math.Inf(1), JSONOptions{NaNToNull: true}, `inf`},
		{"float32 integral", float32(2), DefaultJSON, `2.0`},
		{"float32 fraction", float32(2.5), DefaultJSON, `2.5`},
		{"float32 widened", float32(0.1), DefaultJSON, `0.1000000014901161`},
		{"float32 NaN", float32(math.NaN()), DefaultJSON, `nan`},
		{"Time", Time{Sec: 10, Nsec: 500000000}, DefaultJSON, `10.5`},
		// strings and binaries
		{"empty string", "", DefaultJSON, `""`},
		{"bin is a string", []byte(`a"b`), DefaultJSON, `"a\"b"`},
		{"empty bin", []byte{}, DefaultJSON, `""`},
		// ext: \xNN of the payload bytes, lowercase, type not written,
		// backslash not escaped (as Fluent Bit prints it).
		{"ext", Ext{Type: 5, Data: []byte{0x01, 0xab, 0x7f}}, DefaultJSON, `"\x01\xab\x7f"`},
		{"ext empty", Ext{Type: 1}, DefaultJSON, `""`},
		{"raw", Raw{0x92, 0x01, 0xa1, 'x'}, DefaultJSON, `[1,"x"]`},
		{"unsupported type", struct{}{}, DefaultJSON, `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendJSON(nil, tt.v, tt.o)); got != tt.want {
				t.Errorf("AppendJSON(%#v) = %s, want %s", tt.v, got, tt.want)
			}
		})
	}
}

func TestAppendJSONStringEscapes(t *testing.T) {
	on := JSONOptions{EscapeUnicode: true}
	off := JSONOptions{}
	tests := []struct {
		name string
		in   string
		o    JSONOptions
		want string
	}{
		{"plain", "hello world", on, `"hello world"`},
		{"quote and backslash", `say "hi" \o/`, on, `"say \"hi\" \\o/"`},
		{"slash not escaped", "a/b</script>", on, `"a/b</script>"`},
		{"two-char escapes", "\n\r\t\b\f", on, `"\n\r\t\b\f"`},
		{"other C0 as \\u00xx lowercase", "\x00\x01\x0b\x0e\x1a\x1f", on, `"\u0000\u0001\u000b\u000e\u001a\u001f"`},
		{"DEL escaped", "a\x7fb", on, `"a\u007fb"`},
		{"DEL escaped without unicode escaping", "\x7f", off, `"\u007f"`},
		{"space and tilde kept", " ~", on, `" ~"`},
		{"latin-1 escaped", "é", on, `"\u00e9"`},
		{"BMP escaped lowercase", "€ 中", on, `"\u20ac \u4e2d"`},
		{"U+FFFF", "\uffff", on, `"\uffff"`},
		{"emoji surrogate pair", "😀", on, `"\ud83d\ude00"`},
		{"max code point", "\U0010FFFF", on, `"\udbff\udfff"`},
		{"mixed", "a\"é\n😀", on, `"a\"\u00e9\n\ud83d\ude00"`},
		{"raw utf8 when off", "é € 😀", off, `"é € 😀"`},
		{"controls still escaped when off", "é\n", off, `"é\n"`},
		// Invalid UTF-8, escaping on: each bad byte → U+E000+byte as raw UTF-8.
		{"invalid lead byte", "\xff123456", on, "\"\ue0ff123456\""},
		{"lone continuation byte", "a\x80b", on, "\"a\ue080b\""},
		{"broken 2-byte sequence", "\xc3(x", on, "\"\ue0c3(x\""},
		{"broken 3-byte sequence", "\xe2\x82(", on, "\"\ue0e2\ue082(\""},
		{"overlong", "\xc0\x80", on, "\"\ue0c0\ue080\""},
		{"surrogate encoded in UTF-8", "\xed\xa0\x80", on, "\"\ue0ed\ue0a0\ue080\""},
		{"beyond U+10FFFF", "\xf4\x90\x80\x80", on, "\"\ue0f4\ue090\ue080\ue080\""},
		// A lead byte whose sequence would run past the end is dropped.
		{"truncated at end", "ab\xe2\x82", on, "\"ab\ue082\""},
		{"lone lead at end", "x\xc3", on, `"x"`},
		{"6-byte lead near end", "\xfcab", on, `"ab"`},
		// Invalid UTF-8, escaping off: each bad byte → U+FFFD.
		{"invalid when off", "a\xffb", off, "\"a\ufffdb\""},
		{"truncated when off", "ab\xe2\x82", off, "\"ab\ufffd\ufffd\""},
		{"overlong when off", "\xc0\x80", off, "\"\ufffd\ufffd\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendJSONString(nil, tt.in, tt.o))
			if got != tt.want {
				t.Errorf("AppendJSONString(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if b := string(AppendJSON(nil, []byte(tt.in), tt.o)); b != tt.want {
				t.Errorf("bin rendering %q differs from str rendering %q", b, tt.want)
			}
			// Output is valid JSON that decodes back to the text (when the input was valid UTF-8).
			var s string
			if err := json.Unmarshal([]byte(got), &s); err != nil {
				t.Errorf("output %q is not valid JSON: %v", got, err)
			}
		})
	}
}

func TestAppendJSONContainers(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"empty map", Map{}, `{}`},
		{"nil map", Map(nil), `{}`},
		{"empty array", []any{}, `[]`},
		{"compact, ordered", Map{{"z", int64(1)}, {"a", []any{true, nil, 1.5}}, {"m", Map{{"n", "x"}}}}, `{"z":1,"a":[true,null,1.5],"m":{"n":"x"}}`},
		{"keys are escaped", Map{{"k\"é\n", int64(1)}}, `{"k\"\u00e9\n":1}`},
		{"duplicate: last wins, at its position", Map{{"a", int64(1)}, {"b", int64(2)}, {"a", int64(3)}}, `{"b":2,"a":3}`},
		{"duplicate: three times", Map{{"a", int64(1)}, {"a", int64(2)}, {"a", int64(3)}}, `{"a":3}`},
		{"duplicate first and only", Map{{"a", int64(1)}, {"a", int64(2)}, {"b", int64(3)}}, `{"a":2,"b":3}`},
		{"nested duplicates", []any{Map{{"x", int64(1)}, {"x", int64(2)}}}, `[{"x":2}]`},
	}
	// more than 8 keys takes the map-based path
	big := Map{}
	wantBig := []string{}
	for i := 0; i < 12; i++ {
		big = append(big, KV{string(rune('a' + i%5)), int64(i)})
	}
	// last occurrences: a=10 b=11 c=7 d=8 e=9, emitted in the order of those positions
	wantBig = append(wantBig, `"c":7`, `"d":8`, `"e":9`, `"a":10`, `"b":11`)
	tests = append(tests, struct {
		name string
		v    any
		want string
	}{"duplicates in a 12-key map", big, "{" + strings.Join(wantBig, ",") + "}"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendJSON(nil, tt.v, DefaultJSON)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestAppendJSONEventBody renders a decoded record the way the WASM filter
// and Vivo exporter hand it out.
func TestAppendJSONEventBody(t *testing.T) {
	b := hx(t, "92 92 d7 00 00000001 00000000 80 86"+
		"a3 6c6f67 a6 68c3a96c6c6f"+ // "log":"héllo"
		"a1 6e cb 405e000000000000"+ // "n":120.0
		"a1 66 ca 3f000000"+ // "f":0.5 (float32)
		"a1 62 c4 02 0a41"+ // "b": bin "\nA"
		"a1 65 d4 05 ff"+ // "e": ext
		"a1 6e c0") // duplicate "n": null wins
	raw, _, err := ParseEvent(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := raw.Decode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"log":"h\u00e9llo","f":0.5,"b":"\nA","e":"\xff","n":null}`
	if got := string(AppendJSON(nil, ev.Body, DefaultJSON)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	want = `{"log":"héllo","f":0.5,"b":"\nA","e":"\xff","n":null}`
	if got := string(AppendJSON(nil, ev.Body, JSONOptions{})); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestSortedKeys(t *testing.T) {
	got := SortedKeys(map[string]int{"b": 1, "a": 2, "c": 3})
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("SortedKeys = %v", got)
	}
}
