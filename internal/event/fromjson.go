package event

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// JSONError reports malformed JSON with its byte offset.
type JSONError struct {
	Offset int
	Msg    string
}

func (e *JSONError) Error() string { return fmt.Sprintf("json at byte offset %d: %s", e.Offset, e.Msg) }

// AppendFromJSON converts one JSON value to MessagePack with Fluent Bit's
// flb_pack_json rules (numbers without '.', 'e' or 'E' become integers,
// others float64; object key order is kept) and appends it to dst. Trailing
// non-space input is an error.
func AppendFromJSON(dst, src []byte) ([]byte, error) {
	out, n, err := AppendFromJSONPrefix(dst, src)
	if err != nil {
		return dst, err
	}
	p := jsonParser{src: src, pos: n}
	p.ws()
	if p.pos != len(src) {
		return dst, p.errf("unexpected %q after value", src[p.pos])
	}
	return out, nil
}

// AppendFromJSONPrefix converts the JSON value at the start of src (after
// whitespace) as AppendFromJSON does and reports how many bytes of src it
// used; what follows the value is left alone. Inputs that read a stream of
// values use it to convert and find each value's end in one pass. The end of
// src inside the value is an error like any other: a caller that may still
// receive the rest must tell the two apart itself.
func AppendFromJSONPrefix(dst, src []byte) ([]byte, int, error) {
	p := jsonParser{src: src}
	p.ws()
	out, err := p.value(dst, 0)
	if err != nil {
		return dst, 0, err
	}
	return out, p.pos, nil
}

// MapFromJSON parses a JSON object into a Map.
func MapFromJSON(src []byte) (Map, error) {
	b, err := AppendFromJSON(nil, src)
	if err != nil {
		return nil, err
	}
	m, _, err := mapValue(b, 0, 0)
	if err != nil {
		p := jsonParser{src: src}
		p.ws()
		return nil, p.errf("not a JSON object")
	}
	return m, nil
}

type jsonParser struct {
	src     []byte
	pos     int
	scratch []byte // unescaped string being built
}

func (p *jsonParser) errf(format string, args ...any) error {
	return &JSONError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) ws() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, p.errf("nesting deeper than %d", maxDepth)
	}
	if p.pos >= len(p.src) {
		return b, p.errf("unexpected end of input")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(b, depth)
	case c == '[':
		return p.array(b, depth)
	case c == '"':
		return p.str(b)
	case c == 't':
		return AppendBool(b, true), p.lit("true")
	case c == 'f':
		return AppendBool(b, false), p.lit("false")
	case c == 'n':
		return AppendNil(b), p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(b)
	default:
		return b, p.errf("unexpected %q", c)
	}
}

func (p *jsonParser) lit(s string) error {
	if len(p.src)-p.pos < len(s) || string(p.src[p.pos:p.pos+len(s)]) != s {
		return p.errf("invalid literal")
	}
	p.pos += len(s)
	return nil
}

func (p *jsonParser) object(b []byte, depth int) ([]byte, error) {
	p.pos++ // {
	// Reserve a map32 header and patch the count at the end: the pair count
	// is unknown until the object closes.
	hdr := len(b)
	b = append(b, 0xdf, 0, 0, 0, 0)
	n := 0
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return fixHeader(b, hdr, 0, 0x80, 0xde, 0xdf), nil
	}
	for {
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return b, p.errf("expected object key")
		}
		var err error
		if b, err = p.str(b); err != nil {
			return b, err
		}
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return b, p.errf("expected ':'")
		}
		p.pos++
		p.ws()
		if b, err = p.value(b, depth+1); err != nil {
			return b, err
		}
		n++
		p.ws()
		if p.pos >= len(p.src) {
			return b, p.errf("unexpected end of object")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] == '}' {
			p.pos++
			return fixHeader(b, hdr, n, 0x80, 0xde, 0xdf), nil
		}
		return b, p.errf("expected ',' or '}'")
	}
}

func (p *jsonParser) array(b []byte, depth int) ([]byte, error) {
	p.pos++
	hdr := len(b)
	b = append(b, 0xdd, 0, 0, 0, 0)
	n := 0
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return fixHeader(b, hdr, 0, 0x90, 0xdc, 0xdd), nil
	}
	for {
		p.ws()
		var err error
		if b, err = p.value(b, depth+1); err != nil {
			return b, err
		}
		n++
		p.ws()
		if p.pos >= len(p.src) {
			return b, p.errf("unexpected end of array")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] == ']' {
			p.pos++
			return fixHeader(b, hdr, n, 0x90, 0xdc, 0xdd), nil
		}
		return b, p.errf("expected ',' or ']'")
	}
}

// fixHeader rewrites the 5-byte placeholder at hdr into the smallest header
// for n, moving the elements down when the header shrinks.
func fixHeader(b []byte, hdr, n int, fix, c16, c32 byte) []byte {
	var size int
	switch {
	case n <= 15:
		size = 1
	case n <= 0xffff:
		size = 3
	default:
		b[hdr] = c32
		binary.BigEndian.PutUint32(b[hdr+1:], uint32(n))
		return b
	}
	copy(b[hdr+size:], b[hdr+5:])
	b = b[:len(b)-(5-size)]
	if size == 1 {
		b[hdr] = fix | byte(n)
	} else {
		b[hdr] = c16
		binary.BigEndian.PutUint16(b[hdr+1:], uint16(n))
	}
	return b
}

func (p *jsonParser) number(b []byte) ([]byte, error) {
	start := p.pos
	isFloat := false
	neg := false
	if p.src[p.pos] == '-' {
		neg = true
		p.pos++
	}
	digits := 0
	var u uint64 // value of the first digits, exact while digits <= 19
	dots, frac, other := 0, 0, false
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c >= '0' && c <= '9':
			digits++
			u = u*10 + uint64(c-'0')
			if dots > 0 {
				frac++
			}
		case c == '.':
			isFloat = true
			dots++
		case c == 'e' || c == 'E' || ((c == '+' || c == '-') && isFloat):
			isFloat, other = true, true
		default:
			goto done
		}
		p.pos++
	}
done:
	if digits == 0 {
		return b, &JSONError{Offset: start, Msg: "invalid number"}
	}
	if !isFloat && digits <= 18 { // fits int64 without overflow checks
		if neg {
			return AppendInt(b, -int64(u)), nil
		}
		return AppendUint(b, u), nil
	}
	if isFloat && dots == 1 && !other && digits <= 15 {
		// A plain decimal of at most 15 digits: both u and 10^frac are exact
		// float64s, so one division rounds correctly, as ParseFloat would.
		f := float64(u) / pow10[frac]
		if neg {
			f = -f
		}
		return AppendFloat64(b, f), nil
	}
	text := string(p.src[start:p.pos])
	if !isFloat {
		if v, err := strconv.ParseInt(text, 10, 64); err == nil {
			return AppendInt(b, v), nil
		}
		if v, err := strconv.ParseUint(text, 10, 64); err == nil {
			return AppendUint(b, v), nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && f == 0 {
		return b, &JSONError{Offset: start, Msg: fmt.Sprintf("invalid number %q", text)}
	}
	return AppendFloat64(b, f), nil
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// str reads a JSON string and appends it to b as a MessagePack str.
func (p *jsonParser) str(b []byte) ([]byte, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes. Eight bytes at a time up to the first byte
	// that is a quote, a backslash or a control character.
	for p.pos+8 <= len(p.src) {
		w := binary.LittleEndian.Uint64(p.src[p.pos:])
		if m := specialBytes(w); m != 0 {
			p.pos += bits.TrailingZeros64(m) / 8
			break
		}
		p.pos += 8
	}
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '"' {
			b = appendStr(b, p.src[start:p.pos])
			p.pos++
			return b, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := append(p.scratch[:0], p.src[start:p.pos]...)
	defer func() { p.scratch = buf[:0] }()
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return appendStr(b, buf), nil
		case c < 0x20:
			return b, p.errf("control character in string")
		case c == '\\':
			if p.pos+1 >= len(p.src) {
				return b, p.errf("unterminated escape")
			}
			esc := p.pos
			e := p.src[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					p.pos = esc
					return b, p.errf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) && p.pos+6 <= len(p.src) && p.src[p.pos] == '\\' && p.src[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					if r2, ok := p.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							buf = utf8.AppendRune(buf, d)
							continue
						}
					}
					p.pos = save
				}
				buf = utf8.AppendRune(buf, r)
			default:
				p.pos = esc
				return b, p.errf("invalid escape \\%c", e)
			}
		default:
			buf = append(buf, c)
			p.pos++
		}
	}
	return b, p.errf("unterminated string")
}

// specialBytes has the high bit set in the lowest byte of w that is '"',
// '\\' or below 0x20 (and possibly in later bytes: only the lowest counts).
func specialBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := w ^ (ones * '"')
	bslash := w ^ (ones * '\\')
	return ((quote - ones) &^ quote & highs) | ((bslash - ones) &^ bslash & highs) | ((w - ones*0x20) &^ w & highs)
}

// hex4 reads the four hex digits of a \u escape.
func (p *jsonParser) hex4() (rune, bool) {
	if p.pos+4 > len(p.src) {
		return 0, false
	}
	var r rune
	for _, c := range p.src[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.pos += 4
	return r, true
}
