package goplugin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frames exchanged with floe-plugin-host (see host/floe-plugin-host.c):
// u32 length | u8 type | u32 id | payload, big endian.
const (
	frameHello     = 'H'
	frameFatal     = 'E'
	frameInit      = 'I'
	frameInitReply = 'i'
	frameFlush     = 'F'
	frameFlushDone = 'f'
	frameExit      = 'X'
	frameExitDone  = 'x'

	maxFrame = 1 << 30
)

// Return codes of fluent-bit-go plugins (flb_plugin.h).
const (
	flbError = 0
	flbOK    = 1
	flbRetry = 2
)

type frame struct {
	typ     byte
	id      uint32
	payload []byte
}

type encoder struct{ b []byte }

func newFrame(typ byte, id uint32) *encoder {
	e := &encoder{b: make([]byte, 9, 256)}
	e.b[4] = typ
	binary.BigEndian.PutUint32(e.b[5:], id)
	return e
}

func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *encoder) blob(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) bytes() []byte {
	binary.BigEndian.PutUint32(e.b, uint32(len(e.b)-4))
	return e.b
}

// errFrameTruncated is wrapped by every error about a frame that ends early.
var errFrameTruncated = errors.New("truncated frame")

// readFrame reads one frame. A clean end of stream before a frame is io.EOF;
// a stream that ends inside one is errFrameTruncated wrapping
// io.ErrUnexpectedEOF. Memory grows with the bytes that actually arrive, so a
// garbage length cannot make it allocate a gigabyte up front.
func readFrame(r io.Reader) (frame, error) {
	var hdr [4]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, fmt.Errorf("%w: %d of 4 length bytes: %w", errFrameTruncated, n, err)
		}
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 5 || n > maxFrame {
		return frame{}, fmt.Errorf("bad frame length %d (want 5 to %d): not a floe-plugin-host frame", n, maxFrame)
	}
	var buf bytes.Buffer
	if n <= 1<<20 {
		buf.Grow(int(n))
	}
	got, err := io.Copy(&buf, io.LimitReader(r, int64(n)))
	if err != nil {
		return frame{}, fmt.Errorf("read frame body: %w", err)
	}
	if got < int64(n) {
		return frame{}, fmt.Errorf("%w: length says %d bytes, stream ended after %d: %w", errFrameTruncated, n, got, io.ErrUnexpectedEOF)
	}
	b := buf.Bytes()
	return frame{typ: b[0], id: binary.BigEndian.Uint32(b[1:5]), payload: b[5:]}, nil
}

// decoder reads a frame's payload; the first problem sticks in err and
// names the field and its byte offset in the payload.
type decoder struct {
	p   []byte
	off int
	err error
}

func (d *decoder) fail(field string, need uint64) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s needs %d bytes at payload offset %d, %d left", errFrameTruncated, field, need, d.off, len(d.p))
	}
}

func (d *decoder) u32(field string) uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.p) < 4 {
		d.fail(field, 4)
		return 0
	}
	v := binary.BigEndian.Uint32(d.p)
	d.p = d.p[4:]
	d.off += 4
	return v
}

func (d *decoder) str(field string) string {
	n := d.u32(field + " length")
	if d.err != nil {
		return ""
	}
	if uint64(len(d.p)) < uint64(n) {
		d.fail(field, uint64(n))
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	d.off += int(n)
	return s
}

// frameError names the frame a decoding problem is in.
func frameError(f frame, err error) error {
	return fmt.Errorf("plugin host frame %q (request %d, %d payload bytes): %w", f.typ, f.id, len(f.payload), err)
}

// expect checks a reply is of the type the request calls for.
func expect(f frame, typ byte) error {
	if f.typ != typ {
		return frameError(f, fmt.Errorf("unexpected frame type, want %q", typ))
	}
	return nil
}

// decodeHello reads the helper's first frame: its hello, or the fatal load
// error it reports before exiting.
func decodeHello(f frame) (hello, error) {
	d := decoder{p: f.payload}
	switch f.typ {
	case frameFatal:
		msg := d.str("fatal message")
		if d.err != nil {
			return hello{}, frameError(f, d.err)
		}
		return hello{}, errors.New(msg)
	case frameHello:
	default:
		return hello{}, frameError(f, fmt.Errorf("unexpected first frame, want %q", frameHello))
	}
	h := hello{Type: int32(d.u32("type")), Proxy: int32(d.u32("proxy")), EventType: int32(d.u32("event_type")), Symbols: d.u32("symbol mask")}
	h.Name, h.Desc = d.str("name"), d.str("description")
	if d.err != nil {
		return hello{}, frameError(f, d.err)
	}
	return h, nil
}

// decodeInitReply reads an init reply: FLBPluginInit's return code and the
// reserved keys the plugin read.
func decodeInitReply(f frame) (rc int32, hits []string, err error) {
	if err := expect(f, frameInitReply); err != nil {
		return 0, nil, err
	}
	d := decoder{p: f.payload}
	rc = int32(d.u32("rc"))
	n := d.u32("reserved key count")
	for i := uint32(0); i < n && d.err == nil; i++ {
		hits = append(hits, d.str(fmt.Sprintf("reserved key %d", i)))
	}
	if d.err != nil {
		return 0, nil, frameError(f, d.err)
	}
	return rc, hits, nil
}

// decodeRC reads a flush or exit reply: the plugin's return code.
func decodeRC(f frame, typ byte) (int32, error) {
	if err := expect(f, typ); err != nil {
		return 0, err
	}
	d := decoder{p: f.payload}
	rc := int32(d.u32("rc"))
	if d.err != nil {
		return 0, frameError(f, d.err)
	}
	return rc, nil
}
