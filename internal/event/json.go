package event

import (
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// JSONOptions are Fluent Bit's service keys that change msgpack→JSON rendering.
type JSONOptions struct {
	// EscapeUnicode writes non-ASCII as \uXXXX (json.escape_unicode, on by default in Fluent Bit).
	EscapeUnicode bool
	// NaNToNull writes NaN as null instead of nan (json.convert_nan_to_null).
	NaNToNull bool
}

// DefaultJSON is Fluent Bit's default rendering.
var DefaultJSON = JSONOptions{EscapeUnicode: true}

// AppendJSON renders a decoded value with Fluent Bit's msgpack2json rules:
// integral floats as %.1f, others as %.16g, bin as a string, ext as \xNN
// escapes, compact output, and for duplicate map keys only the last one.
func AppendJSON(b []byte, v any, o JSONOptions) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case float64:
		return AppendJSONFloat(b, v, o)
	case float32:
		return AppendJSONFloat(b, float64(v), o)
	case string:
		return appendJSONStr(b, v, o)
	case []byte:
		return appendJSONStr(b, v, o)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSON(b, e, o)
		}
		return append(b, ']')
	case Map:
		return appendJSONMap(b, v, o)
	case Ext:
		// Fluent Bit prints each payload byte with "\\x%02x" straight into
		// the output, without JSON escaping (so the result is not strict
		// JSON). The ext type is not written.
		b = append(b, '"')
		for _, c := range v.Data {
			b = append(b, '\\', 'x', hexLower[c>>4], hexLower[c&15])
		}
		return append(b, '"')
	case Time:
		return AppendJSONFloat(b, v.Float(), o)
	case Raw:
		if dv, _, err := Value(v, 0); err == nil {
			return AppendJSON(b, dv, o)
		}
	}
	return appendJSONStr(b, "", o)
}

func appendJSONMap(b []byte, m Map, o JSONOptions) []byte {
	b = append(b, '{')
	first := true
	var seen map[string]int
	if len(m) > 8 {
		seen = make(map[string]int, len(m))
		for i, kv := range m {
			seen[kv.Key] = i
		}
	}
	for i, kv := range m {
		if laterDuplicate(m, i, seen) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = AppendJSONString(b, kv.Key, o)
		b = append(b, ':')
		b = AppendJSON(b, kv.Value, o)
	}
	return append(b, '}')
}

func laterDuplicate(m Map, i int, last map[string]int) bool {
	if last != nil {
		return last[m[i].Key] != i
	}
	for j := i + 1; j < len(m); j++ {
		if m[j].Key == m[i].Key {
			return true
		}
	}
	return false
}

// AppendJSONFloat renders a float as Fluent Bit does: "%.1f" when
// f == (double)(long long)f (x86-64 semantics: only values in [-2^63, 2^63)
// qualify), else "%.16g"; NaN prints as glibc does ("nan", "-nan") unless
// NaNToNull; infinities as "inf"/"-inf".
func AppendJSONFloat(b []byte, f float64, o JSONOptions) []byte {
	switch {
	case math.IsNaN(f):
		if o.NaNToNull {
			return append(b, "null"...)
		}
		if math.Signbit(f) {
			return append(b, "-nan"...)
		}
		return append(b, "nan"...)
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63:
		return strconv.AppendFloat(b, f, 'f', 1, 64)
	}
	return strconv.AppendFloat(b, f, 'g', 16, 64)
}

const hexLower = "0123456789abcdef"

// utf8SeqLen is Fluent Bit's flb_utf8_len: the sequence length announced by
// a lead byte, including the historic 5- and 6-byte forms.
func utf8SeqLen(c byte) int {
	switch {
	case c < 0xc0:
		return 1
	case c < 0xe0:
		return 2
	case c < 0xf0:
		return 3
	case c < 0xf8:
		return 4
	case c < 0xfc:
		return 5
	}
	return 6
}

// AppendJSONString writes s as a JSON string with Fluent Bit's escaping
// (flb_utils_write_str): `"` `\` \n \r \t \b \f as two-character escapes,
// other C0 controls and DEL as \u00xx, `/` as is. Bytes from 0x80 up:
//
//   - EscapeUnicode on: a valid UTF-8 sequence becomes \uxxxx (a lowercase
//     surrogate pair above U+FFFF); each byte of an invalid sequence becomes
//     the private-use code point U+E000+byte, written as raw UTF-8; a lead
//     byte whose announced length runs past the end of the string is dropped.
//   - EscapeUnicode off: valid UTF-8 is copied, each invalid byte becomes
//     U+FFFD.
func AppendJSONString(b []byte, s string, o JSONOptions) []byte {
	return appendJSONStr(b, s, o)
}

func appendJSONStr[S string | []byte](b []byte, s S, o JSONOptions) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending plain ASCII
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default: // other C0 controls and DEL
				b = append(b, '\\', 'u', '0', '0', hexLower[c>>4], hexLower[c&15])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		if len(s)-i >= utf8.UTFMax {
			r, size = utf8.DecodeRune([]byte(s[i : i+utf8.UTFMax]))
		} else {
			r, size = utf8.DecodeRune([]byte(s[i:]))
		}
		valid := !(r == utf8.RuneError && size == 1)
		switch {
		case !o.EscapeUnicode && valid:
			b = append(b, s[i:i+size]...)
		case !o.EscapeUnicode:
			b = append(b, "\uFFFD"...)
		case i+utf8SeqLen(c) > len(s):
			// truncated sequence at the end: Fluent Bit skips the lead byte
			size = 1
		case valid && r > 0xffff:
			r -= 0x10000
			b = appendU(b, 0xd800+(r>>10))
			b = appendU(b, 0xdc00+(r&0x3ff))
		case valid:
			b = appendU(b, r)
		default:
			b = utf8.AppendRune(b, 0xe000+rune(c))
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexLower[(r>>12)&15], hexLower[(r>>8)&15], hexLower[(r>>4)&15], hexLower[r&15])
}

// SortedKeys is a helper for callers that need deterministic output from Go maps.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
