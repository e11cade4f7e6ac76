package parser

import (
	"fmt"
	"strings"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// This file ports src/flb_parser_decoder.c and src/flb_unescape.c.

type decBackend int

const (
	decJSON decBackend = iota
	decEscaped
	decEscapedUTF8
)

type decAction int

const (
	actNone decAction = iota
	actTryNext
	actDoNext
)

type decRule struct {
	as      bool // Decode_Field_As (replace the value) rather than Decode_Field (append keys)
	backend decBackend
	action  decAction
}

// decoder holds every rule for one field, in configuration order.
type decoder struct {
	key   string
	rules []decRule
}

// newDecoders reads the Decode_Field / Decode_Field_As properties
// ("DECODER FIELD [ACTION]").
func newDecoders(s *config.Section, name string, warnf func(key, format string, args ...any)) ([]*decoder, error) {
	var list []*decoder
	for _, prop := range s.Props {
		key := strings.ToLower(prop.Key)
		if key != "decode_field" && key != "decode_field_as" {
			continue
		}
		bad := func(format string, args ...any) error {
			return &config.Error{File: prop.File, Line: prop.Line, Key: key,
				Msg: fmt.Sprintf("parser %q: ", name) + fmt.Sprintf(format, args...)}
		}
		parts := recordaccessor.Split(prop.Value, 3)
		if len(parts) < 2 {
			return nil, bad("expected 'DECODER FIELD [ACTION]', got %q", prop.Value)
		}
		r := decRule{as: key == "decode_field_as"}
		switch strings.ToLower(parts[0]) {
		case "json":
			r.backend = decJSON
		case "escaped":
			r.backend = decEscaped
		case "escaped_utf8":
			r.backend = decEscapedUTF8
		default:
			return nil, bad("unknown decoder %q (json, escaped or escaped_utf8)", parts[0])
		}
		if len(parts) >= 3 {
			switch strings.ToLower(parts[2]) {
			case "try_next":
				r.action = actTryNext
			case "do_next":
				r.action = actDoNext
			default:
				warnf(key, "parser %q: unknown decoder action %q (try_next or do_next); ignored", name, parts[2])
			}
		}
		var d *decoder
		for _, e := range list {
			if e.key == parts[1] {
				d = e
				break
			}
		}
		if d == nil {
			d = &decoder{key: parts[1]}
			list = append(list, d)
		}
		d.rules = append(d.rules, r)
	}
	return list, nil
}

// decode applies the decoders to the string values of m, as
// flb_parser_decoder_do: per field, rules run in order until one succeeds
// (or fails) without an action asking for the next; Decode_Field_As
// replaces the value, Decode_Field appends the keys of the decoded JSON map
// at the end of the record. m is modified in place.
func (p *Parser) decode(m event.Map) event.Map {
	var extra event.Map
	for i := range m {
		s, ok := m[i].Value.(string)
		if !ok {
			continue
		}
		var d *decoder
		for _, e := range p.decoders {
			if e.key == m[i].Key {
				d = e
				break
			}
		}
		if d == nil {
			continue
		}
		data := s
		var asVal, outVal any
		decoded, decodedAs, asString, outObject := false, false, true, false
		for _, r := range d.rules {
			if !r.as && r.action == actDoNext && decoded {
				continue
			}
			if decodedAs && !asString {
				continue
			}
			v, object, ok := r.run(data)
			if !ok {
				if r.action == actTryNext || r.action == actDoNext {
					continue
				}
				break
			}
			if r.as {
				asVal, decodedAs, asString = v, true, !object
				if !object {
					data = v.(string)
				}
			} else {
				outVal, outObject, decoded = v, object, true
			}
			if r.action == actDoNext {
				continue
			}
			break
		}
		if decodedAs {
			m[i].Value = asVal
		}
		if decoded && outObject {
			// Upstream merges the decoded map's pairs; a string result is
			// refused ("string type is not allowed").
			if mm, ok := outVal.(event.Map); ok {
				extra = append(extra, mm...)
			}
		}
	}
	return append(m, extra...)
}

// run applies one decoder backend. object reports a structured result.
func (r decRule) run(s string) (v any, object, ok bool) {
	switch r.backend {
	case decJSON:
		u := unescape(s)
		if u == "" || (u[0] != '{' && u[0] != '[') {
			return nil, false, false
		}
		b, err := event.AppendFromJSON(nil, []byte(u))
		if err != nil {
			return nil, false, false
		}
		val, _, err := event.Value(b, 0)
		if err != nil {
			return nil, false, false
		}
		return val, true, true
	case decEscaped:
		return unescape(s), false, true
	default:
		u := unescapeUTF8([]byte(s))
		return string(u), false, true
	}
}

// unescape is flb_unescape_string: \n \a \b \t \v \f \r and \\ become their
// character; any other escaped character stands for itself. (Upstream turns
// a lone backslash at the very end into a NUL byte; Floe drops it.)
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			break
		}
		switch n := s[i+1]; n {
		case 'n':
			b.WriteByte('\n')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		default:
			b.WriteByte(n)
		}
		i++
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// unescapeUTF8 is flb_unescape_string_utf8: JSON escapes, \a \v, octal
// (\ooo), \xHH, \uHHHH and \UHHHHHHHH (code points written as UTF-8, even
// surrogates; values past U+10FFFF as their low byte), any other escaped
// character itself. The input ends at its first NUL.
func unescapeUTF8(in []byte) []byte {
	if i := strings.IndexByte(string(in), 0); i >= 0 {
		in = in[:i]
	}
	out := make([]byte, 0, len(in))
	sz := len(in)
	at := func(i int) byte {
		if i < len(in) {
			return in[i]
		}
		return 0
	}
	for i := 0; i < len(in); {
		var ch uint32
		n := 1
		if in[i] == '\\' {
			next := at(i + 1)
			switch next {
			case '"', '\'', '\\', '/':
				ch, n = uint32(next), 2
			case 'n':
				ch, n = '\n', 2
			case 'r':
				ch, n = '\r', 2
			case 't':
				ch, n = '\t', 2
			case 'b':
				ch, n = '\b', 2
			case 'f':
				ch, n = '\f', 2
			default:
				var k int
				ch, k = readEscape(in[i+1:])
				n = k + 1
			}
		} else {
			ch = uint32(in[i])
			if in[i] >= 0x80 {
				ch = 0xffffff00 | ch // C's signed char, sign-extended
			}
		}
		i += n
		var tmp [4]byte
		w := encodeCodePoint(tmp[:], ch)
		if w > sz-len(out) {
			break // "Crossing over string boundary"
		}
		out = append(out, tmp[:w]...)
	}
	return out
}

// readEscape is u8_read_escape_sequence: s follows a backslash. It returns
// the code point and the number of bytes of s used.
func readEscape(s []byte) (uint32, int) {
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	c := at(0)
	ch := uint32(c)
	if c >= 0x80 {
		ch = 0xffffff00 | ch
	}
	i := 1
	hex := func(max int) {
		v, dno := uint32(0), 0
		for dno < max {
			d, ok := hexDigit(at(i))
			if !ok {
				break
			}
			v = v<<4 | uint32(d)
			i++
			dno++
		}
		if dno > 0 {
			ch = v
		}
	}
	switch {
	case c == 'n':
		ch = '\n'
	case c == 't':
		ch = '\t'
	case c == 'r':
		ch = '\r'
	case c == 'b':
		ch = '\b'
	case c == 'f':
		ch = '\f'
	case c == 'v':
		ch = '\v'
	case c == 'a':
		ch = '\a'
	case isOctal(c):
		i = 0
		v := uint32(0)
		for dno := 0; dno < 3; dno++ {
			v = v<<3 | uint32(at(i)-'0')
			i++
			if !isOctal(at(i)) {
				break
			}
		}
		ch = v
	case c == 'x':
		hex(2)
	case c == 'u':
		hex(4)
	case c == 'U':
		hex(8)
	}
	return ch, i
}

// encodeCodePoint is u8_wc_toutf8, writing a value past U+10FFFF as its
// low byte, as flb_unescape_string_utf8 does.
func encodeCodePoint(dst []byte, ch uint32) int {
	switch {
	case ch < 0x80:
		dst[0] = byte(ch)
		return 1
	case ch < 0x800:
		dst[0] = byte(ch>>6) | 0xC0
		dst[1] = byte(ch&0x3F) | 0x80
		return 2
	case ch < 0x10000:
		dst[0] = byte(ch>>12) | 0xE0
		dst[1] = byte((ch>>6)&0x3F) | 0x80
		dst[2] = byte(ch&0x3F) | 0x80
		return 3
	case ch < 0x110000:
		dst[0] = byte(ch>>18) | 0xF0
		dst[1] = byte((ch>>12)&0x3F) | 0x80
		dst[2] = byte((ch>>6)&0x3F) | 0x80
		dst[3] = byte(ch&0x3F) | 0x80
		return 4
	}
	dst[0] = byte(ch)
	return 1
}
