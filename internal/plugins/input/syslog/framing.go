package syslog

import (
	"bytes"
	"errors"
	"fmt"
)

// errFraming is a stream that does not follow its framing; the connection
// is closed, as upstream does ("invalid octet-counting length").
var errFraming = errors.New("syslog framing")

// framer cuts a syslog stream into messages (RFC 6587): newline framing
// (non-transparent, what logger --tcp sends) or octet counting ("LEN SP
// MSG", logger --octet-count).
type framer struct {
	octet bool
	max   int // largest message accepted (buffer_max_size)
}

// next returns the first message of buf and the bytes it used. used == 0
// means buf holds no complete message yet. Empty messages are returned as
// such (used > 0) for the caller to skip. eof: no more bytes will come, so
// a last newline-framed message without its newline still counts.
func (f *framer) next(buf []byte, eof bool) (msg []byte, used int, err error) {
	if !f.octet {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if eof && len(buf) > 0 {
				return trimCR(buf), len(buf), nil
			}
			return nil, 0, nil
		}
		return trimCR(buf[:i]), i + 1, nil
	}
	// Octet counting. Line ends between frames are tolerated (the newline
	// upstream allows after a frame may arrive in the next read).
	p := 0
	for p < len(buf) && (buf[p] == '\n' || buf[p] == '\r') {
		p++
	}
	if p == len(buf) {
		return nil, p, nil
	}
	start := p
	n := 0
	for p < len(buf) && buf[p] >= '0' && buf[p] <= '9' {
		if p-start >= 10 {
			return nil, 0, fmt.Errorf("%w: octet count at byte %d has more than 10 digits", errFraming, start)
		}
		n = n*10 + int(buf[p]-'0')
		p++
	}
	if p == len(buf) {
		if eof {
			return nil, 0, fmt.Errorf("%w: stream ends inside an octet count", errFraming)
		}
		return nil, 0, nil
	}
	if p == start || buf[p] != ' ' {
		return nil, 0, fmt.Errorf("%w: invalid octet-counting length at byte %d (%q)", errFraming, p, buf[p])
	}
	if n > f.max {
		return nil, 0, fmt.Errorf("%w: message of %d bytes exceeds buffer_max_size %d", errFraming, n, f.max)
	}
	p++
	if len(buf)-p < n {
		if eof {
			return nil, 0, fmt.Errorf("%w: stream ends %d bytes into a message of %d", errFraming, len(buf)-p, n)
		}
		return nil, 0, nil
	}
	return buf[p : p+n], p + n, nil
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}
