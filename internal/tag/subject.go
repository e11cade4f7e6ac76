package tag

import (
	"errors"
	"fmt"
	"strings"
)

// Subject escaping
//
// A tag becomes the tail of a NATS subject ("floe.in." + ToSubject(tag)). The
// mapping keeps '.' as the token separator, so "app.x" travels as the two
// tokens "app" and "x" and NATS wildcards can pre-filter. Within a token:
//
//   - bytes 0x21..0x7E other than '*', '>' and '%' are copied unchanged;
//   - every other byte — space, tab and the other control bytes, DEL, any byte
//     >= 0x80 (so UTF-8 and invalid UTF-8 alike), '*', '>' and the escape
//     character '%' itself — is written as '%' followed by two upper-case hex
//     digits ("my app" → "my%20app", "a*" → "a%2A", "é" → "%C3%A9");
//   - an empty token (empty tag, leading or trailing dot, "a..b") is written
//     as the lone marker token "%" ("" → "%", "a..b" → "a.%.b", ".x" → "%.x").
//
// The result is a valid NATS subject tail made only of printable ASCII, with
// no empty tokens and no wildcard characters. The mapping is token-local and
// canonical: ToSubject is injective, FromSubject(ToSubject(t)) == t for every
// string t, and FromSubject accepts exactly the strings ToSubject produces, so
// ToSubject(FromSubject(s)) == s whenever FromSubject succeeds.

// ErrInvalidSubject is wrapped by the errors of [FromSubject].
var ErrInvalidSubject = errors.New("tag: invalid subject")

const escapeChar = '%'

const upperHex = "0123456789ABCDEF"

// mustEscape[c] reports whether byte c cannot appear raw inside a token.
// '.' is not listed: it is always the separator and never part of a token.
var mustEscape = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c <= ' ' || c >= 0x7f || c == '*' || c == '>' || c == escapeChar
	}
	return t
}()

// isPlain reports whether s needs no escaping: non-empty, no empty token and no
// byte that must be escaped. Such a string is its own subject.
func isPlain(s string) bool {
	prevDot := true // an empty string or a leading dot is an empty token
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if prevDot {
				return false
			}
			prevDot = true
			continue
		}
		if mustEscape[c] {
			return false
		}
		prevDot = false
	}
	return !prevDot
}

// ToSubject returns the NATS subject tail that carries tag (see the escaping
// scheme above). A tag that needs no escaping, such as "kube.var.log.app", is
// returned unchanged without allocating.
func ToSubject(tag string) string {
	if isPlain(tag) {
		return tag
	}
	// Exact size first, so the builder allocates once.
	n := len(tag)
	prevDot := true
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		switch {
		case c == '.':
			if prevDot {
				n++ // empty token marker
			}
			prevDot = true
			continue
		case mustEscape[c]:
			n += 2
		}
		prevDot = false
	}
	if prevDot {
		n++
	}

	var b strings.Builder
	b.Grow(n)
	start := true // at the start of a token
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if c == '.' {
			if start {
				b.WriteByte(escapeChar)
			}
			b.WriteByte('.')
			start = true
			continue
		}
		start = false
		if mustEscape[c] {
			b.WriteByte(escapeChar)
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0x0f])
			continue
		}
		b.WriteByte(c)
	}
	if start {
		b.WriteByte(escapeChar)
	}
	return b.String()
}

// FromSubject returns the tag carried by a subject tail produced by
// [ToSubject]. It is strict: empty tokens, raw bytes that ToSubject would have
// escaped, malformed or lower-case escapes, and escapes of bytes that need no
// escaping are errors wrapping [ErrInvalidSubject]. A subject that needs no
// decoding is returned unchanged without allocating.
func FromSubject(s string) (string, error) {
	if isPlain(s) {
		return s, nil
	}
	if s == "" {
		return "", fmt.Errorf("%w: empty subject", ErrInvalidSubject)
	}
	var b strings.Builder
	b.Grow(len(s)) // decoding never lengthens
	tokStart := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '.':
			if i == tokStart {
				return "", invalidSubject(s, i, "empty token")
			}
			b.WriteByte('.')
			i++
			tokStart = i
		case c == escapeChar:
			// A lone "%" token is the empty-token marker.
			if i == tokStart && (i+1 == len(s) || s[i+1] == '.') {
				i++
				continue
			}
			if i+3 > len(s) {
				return "", invalidSubject(s, i, "truncated escape")
			}
			hi, lo := unhex(s[i+1]), unhex(s[i+2])
			if hi < 0 || lo < 0 {
				return "", invalidSubject(s, i, "escape is not two upper-case hex digits")
			}
			d := byte(hi<<4 | lo)
			if !mustEscape[d] {
				return "", invalidSubject(s, i, "escape of a byte that needs none")
			}
			b.WriteByte(d)
			i += 3
		case mustEscape[c]:
			return "", invalidSubject(s, i, "unescaped byte")
		default:
			b.WriteByte(c)
			i++
		}
	}
	if tokStart == len(s) {
		return "", invalidSubject(s, len(s), "empty token")
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func invalidSubject(s string, at int, why string) error {
	return fmt.Errorf("%w %q: %s at byte %d", ErrInvalidSubject, s, why, at)
}

// SubjectFilter returns a NATS subject filter tail that accepts at least every
// subject ToSubject(t) for which Match(pattern, t) holds, so it can narrow a
// consumer before the exact [Match] decision.
//
// A pattern without '*' yields exactly ToSubject(pattern). Otherwise the
// tokens before the token holding the first '*' are literal and kept, and
// everything from there on becomes ">": "app.*" → "app.>", "*" → ">",
// "*.log" → ">", "kube.var.log.app*" → "kube.var.log.>". This is sound because
// whatever a tag holds after the literal prefix and its dot encodes to at least
// one token (an empty remainder encodes to "%"). Fluent Bit's '*' crosses dots,
// so the NATS single-token wildcard "*" is never used.
func SubjectFilter(pattern string) string {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return ToSubject(pattern)
	}
	dot := strings.LastIndexByte(pattern[:star], '.')
	if dot < 0 {
		return ">"
	}
	return ToSubject(pattern[:dot]) + ".>"
}
