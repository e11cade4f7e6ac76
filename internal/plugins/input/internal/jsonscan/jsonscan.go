// Package jsonscan finds where JSON values end in a stream of bytes, so that
// inputs reading JSON from pipes and sockets (stdin, tcp, udp) can cut the
// stream into values before converting each one.
package jsonscan

import (
	"errors"
	"fmt"
)

// ErrIncomplete means the input ended inside a JSON value.
var ErrIncomplete = errors.New("incomplete JSON value")

// SyntaxError is malformed JSON at byte offset Off of the buffer.
type SyntaxError struct {
	Off int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.Off, e.Msg) }

const maxDepth = 512

// IsWS reports whether c is JSON whitespace.
func IsWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipWS returns the index of the first non-whitespace byte of b at or after i.
func SkipWS(b []byte, i int) int {
	for i < len(b) && IsWS(b[i]) {
		i++
	}
	return i
}

// Value finds the end of the JSON value starting at b[i]. It checks the
// structure (brackets, strings, commas, colons, literals) so that malformed
// input is detected at the first bad byte, and reports ErrIncomplete when b
// ends before the value does. A number at the very end of b is incomplete
// unless atEOF, as more digits may follow. Numbers and escapes are only
// checked loosely here; the conversion checks them fully.
func Value(b []byte, i int, atEOF bool) (int, error) {
	return scan(b, i, atEOF, 0)
}

func scan(b []byte, i int, atEOF bool, depth int) (int, error) {
	if depth > maxDepth {
		return 0, &SyntaxError{i, "nesting too deep"}
	}
	if i >= len(b) {
		return 0, ErrIncomplete
	}
	switch c := b[i]; {
	case c == '{':
		i = SkipWS(b, i+1)
		if i >= len(b) {
			return 0, ErrIncomplete
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) {
				return 0, ErrIncomplete
			}
			if b[i] != '"' {
				return 0, &SyntaxError{i, "expected an object key"}
			}
			var err error
			if i, err = scanString(b, i); err != nil {
				return 0, err
			}
			i = SkipWS(b, i)
			if i >= len(b) {
				return 0, ErrIncomplete
			}
			if b[i] != ':' {
				return 0, &SyntaxError{i, "expected ':'"}
			}
			i = SkipWS(b, i+1)
			if i, err = scan(b, i, atEOF, depth+1); err != nil {
				return 0, err
			}
			i = SkipWS(b, i)
			if i >= len(b) {
				return 0, ErrIncomplete
			}
			switch b[i] {
			case ',':
				i = SkipWS(b, i+1)
			case '}':
				return i + 1, nil
			default:
				return 0, &SyntaxError{i, "expected ',' or '}'"}
			}
		}
	case c == '[':
		i = SkipWS(b, i+1)
		if i >= len(b) {
			return 0, ErrIncomplete
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = scan(b, i, atEOF, depth+1); err != nil {
				return 0, err
			}
			i = SkipWS(b, i)
			if i >= len(b) {
				return 0, ErrIncomplete
			}
			switch b[i] {
			case ',':
				i = SkipWS(b, i+1)
			case ']':
				return i + 1, nil
			default:
				return 0, &SyntaxError{i, "expected ',' or ']'"}
			}
		}
	case c == '"':
		return scanString(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		if j == len(b) && !atEOF {
			return 0, ErrIncomplete
		}
		return j, nil
	default:
		return 0, &SyntaxError{i, fmt.Sprintf("unexpected %q", c)}
	}
}

func scanString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
		case c < 0x20:
			return 0, &SyntaxError{i, "control character in string"}
		}
	}
	return 0, ErrIncomplete
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return 0, ErrIncomplete
		}
		if b[i+k] != lit[k] {
			return 0, &SyntaxError{i + k, "invalid literal"}
		}
	}
	return i + len(lit), nil
}
