package goplugin

import (
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

func readFrame(r io.Reader) (frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 5 || n > maxFrame {
		return frame{}, fmt.Errorf("bad frame length %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return frame{}, err
	}
	return frame{typ: buf[0], id: binary.BigEndian.Uint32(buf[1:5]), payload: buf[5:]}, nil
}

var errShort = errors.New("short frame")

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if d.err != nil || len(d.p) < 4 {
		d.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint32(d.p)
	d.p = d.p[4:]
	return v
}

func (d *decoder) str() string {
	n := d.u32()
	if d.err != nil || uint32(len(d.p)) < n {
		d.err = errShort
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}
