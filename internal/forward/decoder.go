// Package forward is a codec for the Fluentd Forward protocol v1, shared by
// Floe's forward input and (later) its forward output: framing of a byte
// stream into MessagePack values with a bounded buffer, the four event modes
// (Message, Forward, PackedForward, CompressedPackedForward), the options map
// (chunk, size, compressed, fluent_signal, metadata), acks, and the
// HELO/PING/PONG handshake with shared key and user authentication.
//
// Every error carries the byte offset where the problem was found, counted
// from the start of the connection's stream for Decoder errors and from the
// start of the frame for parse errors (Error.Offset; Shift adds a base).
package forward

import (
	"errors"
	"fmt"
	"io"
)

// maxDepth bounds nesting, as Floe's event codec does, so that hostile input
// cannot make later decoding recurse without end.
const maxDepth = 512

// Error is a protocol error at a byte offset.
type Error struct {
	Offset int64
	Msg    string
	Err    error // wrapped cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("byte offset %d: %s: %v", e.Offset, e.Msg, e.Err)
	}
	return fmt.Sprintf("byte offset %d: %s", e.Offset, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

func errAt(off int, format string, args ...any) *Error {
	return &Error{Offset: int64(off), Msg: fmt.Sprintf(format, args...)}
}

// Shift returns err with base added to its offset when it is an *Error, so a
// frame-relative error can be reported against the stream.
func Shift(err error, base int64) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Offset: e.Offset + base, Msg: e.Msg, Err: e.Err}
	}
	return err
}

// ErrTooLarge is wrapped by errors about a message that cannot fit in
// buffer_max_size (or a decompressed payload over its limit).
var ErrTooLarge = errors.New("message too large")

// ErrTruncated is wrapped when the stream ends inside a message.
var ErrTruncated = errors.New("truncated message")

// scanner finds the end of one MessagePack value in a buffer that grows
// between calls. It keeps its place, so a value arriving in many reads is
// scanned once in total, not once per read.
type scanner struct {
	pos   int      // bytes of the value scanned so far
	stack []uint64 // elements left in each open array or map
}

// scan continues over b, the value's bytes received so far (b only grows
// between calls). It returns the value's length when it is complete, or 0
// and the least total length worth waiting for. Lengths that cannot fit in
// limit bytes are refused as soon as their header is read.
func (s *scanner) scan(b []byte, limit int) (end, need int, err error) {
	for {
		if s.pos >= len(b) {
			return 0, s.pos + 1, nil
		}
		c := b[s.pos]
		hdr, size := 1, 0 // header bytes; bytes of the length field
		kind := 0         // 0 scalar with payload, 1 array, 2 map
		n := uint64(0)    // payload bytes, or elements
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0xa0 && c <= 0xbf:
			n = uint64(c & 0x1f)
		case c >= 0x80 && c <= 0x8f:
			kind, n = 2, uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			kind, n = 1, uint64(c&0x0f)
		default:
			switch c {
			case 0xcc, 0xd0:
				n = 1
			case 0xcd, 0xd1:
				n = 2
			case 0xce, 0xd2, 0xca:
				n = 4
			case 0xcf, 0xd3, 0xcb:
				n = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type byte + 1,2,4,8,16
				n = 1 + 1<<(c-0xd4)
			case 0xc4, 0xd9:
				size = 1
			case 0xc5, 0xda:
				size = 2
			case 0xc6, 0xdb:
				size = 4
			case 0xc7:
				size, n = 1, 1 // + the type byte
			case 0xc8:
				size, n = 2, 1
			case 0xc9:
				size, n = 4, 1
			case 0xdc:
				kind, size = 1, 2
			case 0xdd:
				kind, size = 1, 4
			case 0xde:
				kind, size = 2, 2
			case 0xdf:
				kind, size = 2, 4
			default:
				return 0, 0, errAt(s.pos, "invalid MessagePack type byte 0x%02x", c)
			}
		}
		if size > 0 {
			if s.pos+1+size > len(b) {
				return 0, s.pos + 1 + size, nil
			}
			var l uint64
			for _, x := range b[s.pos+1 : s.pos+1+size] {
				l = l<<8 | uint64(x)
			}
			n += l
			hdr += size
		}
		if kind == 0 {
			total := uint64(s.pos) + uint64(hdr) + n
			if total > uint64(limit) {
				return 0, 0, &Error{Offset: int64(s.pos), Msg: fmt.Sprintf("a value of %d bytes cannot fit in buffer_max_size (%d bytes)", n, limit), Err: ErrTooLarge}
			}
			if int(total) > len(b) {
				return 0, int(total), nil
			}
			s.pos = int(total)
		} else {
			s.pos += hdr
			if kind == 2 {
				n *= 2
			}
			if n > 0 {
				// Every element takes at least one byte.
				if uint64(s.pos)+n > uint64(limit) {
					return 0, 0, &Error{Offset: int64(s.pos - hdr), Msg: fmt.Sprintf("a container of %d elements cannot fit in buffer_max_size (%d bytes)", n, limit), Err: ErrTooLarge}
				}
				if len(s.stack) >= maxDepth {
					return 0, 0, errAt(s.pos-hdr, "nesting deeper than %d", maxDepth)
				}
				s.stack = append(s.stack, n)
				continue
			}
		}
		// One element ended: close the containers it completes.
		for len(s.stack) > 0 {
			top := len(s.stack) - 1
			s.stack[top]--
			if s.stack[top] > 0 {
				break
			}
			s.stack = s.stack[:top]
		}
		if len(s.stack) == 0 {
			return s.pos, 0, nil
		}
	}
}

// ValueEnd returns the length of the complete MessagePack value at the start
// of b, or an error (wrapping ErrTruncated when b ends inside it).
func ValueEnd(b []byte) (int, error) {
	var s scanner
	end, _, err := s.scan(b, len(b))
	if err != nil {
		var e *Error
		if errors.As(err, &e) && errors.Is(e.Err, ErrTooLarge) {
			return 0, &Error{Offset: e.Offset, Msg: "value runs past the end of the data", Err: ErrTruncated}
		}
		return 0, err
	}
	if end == 0 {
		return 0, &Error{Offset: int64(len(b)), Msg: "value runs past the end of the data", Err: ErrTruncated}
	}
	return end, nil
}

// Decoder splits a byte stream into MessagePack values. Its buffer starts at
// chunkSize bytes and grows up to maxSize; a value that cannot fit is an
// error wrapping ErrTooLarge, reported as soon as its header says so, so a
// client announcing a huge message is refused before it is read.
type Decoder struct {
	// BeforeRead, when set, runs before every read from r, i.e. whenever
	// the values already buffered have all been returned and the next one
	// may have to wait for the network: a caller batching what it decoded
	// writes its batch there, so batching adds no delay.
	BeforeRead func()

	r          io.Reader
	buf        []byte
	start, end int   // buffered bytes not yet returned
	next       int   // end of the value last returned
	base       int64 // stream offset of buf[0]
	chunk, max int
	sc         scanner
	rerr       error
}

// NewDecoder reads from r with a buffer of chunkSize bytes growing up to
// maxSize (buffer_chunk_size and buffer_max_size).
func NewDecoder(r io.Reader, chunkSize, maxSize int) *Decoder {
	if chunkSize <= 0 {
		chunkSize = 32 << 10
	}
	if maxSize < chunkSize {
		maxSize = chunkSize
	}
	return &Decoder{r: r, chunk: chunkSize, max: maxSize}
}

// Offset is the stream offset just past the last value returned.
func (d *Decoder) Offset() int64 { return d.base + int64(d.next) }

// Buffered is the size of the decoder's buffer (for memory accounting).
func (d *Decoder) Buffered() int { return cap(d.buf) }

// Next returns the next complete value and its stream offset. The bytes are
// valid until the following call. At a clean end of stream it returns io.EOF;
// a stream that ends inside a value returns an error wrapping ErrTruncated.
func (d *Decoder) Next() ([]byte, int64, error) {
	d.start = d.next
	if d.start == d.end && cap(d.buf) > d.chunk {
		// A large message has been handled: give its memory back.
		d.base += int64(d.end)
		d.buf, d.start, d.end, d.next = nil, 0, 0, 0
	}
	d.sc = scanner{stack: d.sc.stack[:0]}
	for {
		v := d.buf[d.start:d.end]
		need := 1
		if len(v) > 0 {
			end, nd, err := d.sc.scan(v, d.max)
			if err != nil {
				return nil, 0, Shift(err, d.base+int64(d.start))
			}
			if end > 0 {
				d.next = d.start + end
				return v[:end:end], d.base + int64(d.start), nil
			}
			need = nd
		}
		if d.rerr != nil {
			off := d.base + int64(d.end)
			if len(v) == 0 {
				return nil, off, io.EOF
			}
			return nil, off, &Error{Offset: off, Msg: fmt.Sprintf("stream ended inside the message that starts at byte offset %d", d.base+int64(d.start)), Err: ErrTruncated}
		}
		if d.end == len(d.buf) {
			if d.start > 0 {
				n := copy(d.buf, d.buf[d.start:d.end])
				d.base += int64(d.start)
				d.end, d.next, d.start = n, 0, 0
			}
			if d.end == len(d.buf) {
				if len(d.buf) >= d.max {
					return nil, 0, &Error{Offset: d.base + int64(d.start), Msg: fmt.Sprintf("message longer than buffer_max_size (%d bytes)", d.max), Err: ErrTooLarge}
				}
				size := max(d.chunk, 2*len(d.buf), need)
				size = min(size, d.max)
				nb := make([]byte, size)
				copy(nb, d.buf[:d.end])
				d.buf = nb
			}
		}
		if d.BeforeRead != nil {
			d.BeforeRead()
		}
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err == io.EOF {
			d.rerr = err
		} else if err != nil {
			// Not sticky: after a read timeout the caller may try again,
			// and the bytes of a partial value are kept.
			return nil, d.base + int64(d.end), fmt.Errorf("byte offset %d: %w", d.base+int64(d.end), err)
		}
	}
}
