package wasmsdk

import (
	"encoding/binary"
	"errors"

	"github.com/floe-io/floe/internal/event"
)

// The host hands the guest chunks it has already checked, so the SDK finds
// event boundaries with a flat skipper (no recursion, few bounds checks)
// for the common v2 layout [[EventTime, meta], body], and falls back to
// event.ParseEvent (full checks, exact errors) for anything else. Under
// WebAssembly this loop is most of the passthrough cost.

// skipValue returns the offset after the MessagePack value at off, or -1.
func skipValue(b []byte, off int) int {
	pending := 1
	for pending > 0 {
		if off >= len(b) {
			return -1
		}
		c := b[off]
		pending--
		switch {
		case c <= 0x7f || c >= 0xe0:
			off++
		case c <= 0x8f:
			pending += 2 * int(c&0x0f)
			off++
		case c <= 0x9f:
			pending += int(c & 0x0f)
			off++
		case c <= 0xbf:
			off += 1 + int(c&0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3:
				off++
			case 0xc4, 0xd9:
				if off+1 >= len(b) {
					return -1
				}
				off += 2 + int(b[off+1])
			case 0xc5, 0xda:
				if off+3 > len(b) {
					return -1
				}
				off += 3 + int(binary.BigEndian.Uint16(b[off+1:]))
			case 0xc6, 0xdb:
				if off+5 > len(b) {
					return -1
				}
				off += 5 + int(binary.BigEndian.Uint32(b[off+1:]))
			case 0xc7:
				if off+2 >= len(b) {
					return -1
				}
				off += 3 + int(b[off+1])
			case 0xc8:
				if off+4 > len(b) {
					return -1
				}
				off += 4 + int(binary.BigEndian.Uint16(b[off+1:]))
			case 0xc9:
				if off+6 > len(b) {
					return -1
				}
				off += 6 + int(binary.BigEndian.Uint32(b[off+1:]))
			case 0xcc, 0xd0:
				off += 2
			case 0xcd, 0xd1:
				off += 3
			case 0xca, 0xce, 0xd2:
				off += 5
			case 0xcb, 0xcf, 0xd3:
				off += 9
			case 0xd4:
				off += 3
			case 0xd5:
				off += 4
			case 0xd6:
				off += 6
			case 0xd7:
				off += 10
			case 0xd8:
				off += 18
			case 0xdc, 0xde:
				if off+3 > len(b) {
					return -1
				}
				n := int(binary.BigEndian.Uint16(b[off+1:]))
				if c == 0xde {
					n *= 2
				}
				pending += n
				off += 3
			case 0xdd, 0xdf:
				if off+5 > len(b) {
					return -1
				}
				n := int(binary.BigEndian.Uint32(b[off+1:]))
				if c == 0xdf {
					n *= 2
				}
				pending += n
				off += 5
			default:
				return -1
			}
		}
	}
	if off > len(b) {
		return -1
	}
	return off
}

// nextEvent parses the event at off into r and returns the offset after it.
func nextEvent(b []byte, off int, r *event.RawEvent) (int, error) {
	// Fast path: 0x92 0x92 d7 00 <sec u32> <nsec u32> meta-map body-map.
	if len(b)-off >= 14 && b[off] == 0x92 && b[off+1] == 0x92 && b[off+2] == 0xd7 && b[off+3] == 0 {
		sec := binary.BigEndian.Uint32(b[off+4:])
		nsec := binary.BigEndian.Uint32(b[off+8:])
		m := off + 12
		if isMapByte(b[m]) && sec < 0xfffffffe && nsec < 1e9 {
			if bo := skipValue(b, m); bo > 0 && bo < len(b) && isMapByte(b[bo]) {
				if end := skipValue(b, bo); end > 0 {
					*r = event.RawEvent{Offset: off, Raw: b[off:end], Time: event.Time{Sec: int64(sec), Nsec: nsec}, Meta: b[m:bo], Body: b[bo:end]}
					return end, nil
				}
			}
		}
	}
	ev, end, err := event.ParseEvent(b, off)
	if err != nil {
		return 0, err
	}
	*r = ev
	return end, nil
}

func isMapByte(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

// rawGet finds key in the MessagePack map b without decoding it: keys are
// compared in place, other values skipped, and only the value found is
// decoded. An error means b is not a map of string keys (the caller then
// decodes it whole, which reports the error).
func rawGet(b []byte, key string) (any, bool, error) {
	n, off, ok := mapHeader(b)
	if !ok {
		if len(b) == 0 {
			return nil, false, nil
		}
		return nil, false, errNotMap
	}
	for range n {
		if off >= len(b) {
			return nil, false, errNotMap
		}
		var kl int
		c := b[off]
		switch {
		case c >= 0xa0 && c <= 0xbf:
			kl, off = int(c&0x1f), off+1
		case c == 0xd9 && off+1 < len(b):
			kl, off = int(b[off+1]), off+2
		case c == 0xda && off+3 <= len(b):
			kl, off = int(binary.BigEndian.Uint16(b[off+1:])), off+3
		case c == 0xdb && off+5 <= len(b):
			kl, off = int(binary.BigEndian.Uint32(b[off+1:])), off+5
		default:
			return nil, false, errNotMap
		}
		if kl > len(b)-off {
			return nil, false, errNotMap
		}
		if kl == len(key) && string(b[off:off+kl]) == key {
			v, _, err := event.Value(b, off+kl)
			if err != nil {
				return nil, false, err
			}
			return v, true, nil
		}
		if off = skipValue(b, off+kl); off < 0 {
			return nil, false, errNotMap
		}
	}
	return nil, false, nil
}

var errNotMap = errors.New("not a map of string keys")
