package wasm

import (
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"

	"github.com/floe-io/floe/internal/event"
)

// appendBodyJSON renders a record body (a MessagePack map) as JSON with
// Fluent Bit's msgpack2json rules, exactly as event.AppendJSON does on the
// decoded value. The common shapes are rendered straight from the bytes
// without decoding (no allocation); anything unusual — duplicate or
// non-string keys, extension values, deep nesting — takes the general path.
func appendBodyJSON(dst, body []byte, o event.JSONOptions) ([]byte, error) {
	mark := len(dst)
	if out, _, ok := fastJSON(dst, body, 0, o, 0); ok {
		return out, nil
	}
	v, _, err := event.Value(body, 0)
	if err != nil {
		return dst[:mark], err
	}
	return event.AppendJSON(dst[:mark], v, o), nil
}

const fastMaxDepth = 64

// fastJSON renders the value at off; ok is false when the value is
// malformed or needs the general path.
func fastJSON(dst, b []byte, off int, o event.JSONOptions, depth int) (_ []byte, next int, ok bool) {
	if off >= len(b) || depth > fastMaxDepth {
		return dst, 0, false
	}
	c := b[off]
	switch {
	case c <= 0x7f:
		return strconv.AppendInt(dst, int64(c), 10), off + 1, true
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), off + 1, true
	case c >= 0xa0 && c <= 0xbf:
		return fastStr(dst, b, off+1, int(c&0x1f), o)
	case c >= 0x80 && c <= 0x8f:
		return fastMap(dst, b, off+1, int(c&0x0f), o, depth)
	case c >= 0x90 && c <= 0x9f:
		return fastArray(dst, b, off+1, int(c&0x0f), o, depth)
	}
	switch c {
	case 0xc0:
		return append(dst, "null"...), off + 1, true
	case 0xc2:
		return append(dst, "false"...), off + 1, true
	case 0xc3:
		return append(dst, "true"...), off + 1, true
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8..64
		n := 1 << (c - 0xcc)
		u, ok := readUint(b, off+1, n)
		if !ok {
			return dst, 0, false
		}
		if u > math.MaxInt64 {
			return strconv.AppendUint(dst, u, 10), off + 1 + n, true
		}
		return strconv.AppendInt(dst, int64(u), 10), off + 1 + n, true
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8..64
		n := 1 << (c - 0xd0)
		u, ok := readUint(b, off+1, n)
		if !ok {
			return dst, 0, false
		}
		shift := 64 - 8*n
		return strconv.AppendInt(dst, int64(u<<shift)>>shift, 10), off + 1 + n, true
	case 0xca:
		u, ok := readUint(b, off+1, 4)
		if !ok {
			return dst, 0, false
		}
		return event.AppendJSONFloat(dst, float64(math.Float32frombits(uint32(u))), o), off + 5, true
	case 0xcb:
		u, ok := readUint(b, off+1, 8)
		if !ok {
			return dst, 0, false
		}
		return event.AppendJSONFloat(dst, math.Float64frombits(u), o), off + 9, true
	case 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6: // str 8..32, bin 8..32
		size := 1 << ((c - 0xd9) % 3)
		if c <= 0xc6 {
			size = 1 << (c - 0xc4)
		}
		n, ok := readUint(b, off+1, size)
		if !ok || n > uint64(len(b)) {
			return dst, 0, false
		}
		return fastStr(dst, b, off+1+size, int(n), o)
	case 0xdc, 0xdd:
		size := 2 << (c - 0xdc)
		n, ok := readUint(b, off+1, size)
		if !ok || n > uint64(len(b)) {
			return dst, 0, false
		}
		return fastArray(dst, b, off+1+size, int(n), o, depth)
	case 0xde, 0xdf:
		size := 2 << (c - 0xde)
		n, ok := readUint(b, off+1, size)
		if !ok || n > uint64(len(b)) {
			return dst, 0, false
		}
		return fastMap(dst, b, off+1+size, int(n), o, depth)
	}
	return dst, 0, false // ext and reserved bytes: the general path
}

func readUint(b []byte, off, n int) (uint64, bool) {
	if off+n > len(b) {
		return 0, false
	}
	switch n {
	case 1:
		return uint64(b[off]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b[off:])), true
	case 4:
		return uint64(binary.BigEndian.Uint32(b[off:])), true
	}
	return binary.BigEndian.Uint64(b[off:]), true
}

func fastStr(dst, b []byte, off, n int, o event.JSONOptions) ([]byte, int, bool) {
	if off+n > len(b) || n < 0 {
		return dst, 0, false
	}
	return event.AppendJSONString(dst, bytesString(b[off:off+n]), o), off + n, true
}

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func fastArray(dst, b []byte, off, n int, o event.JSONOptions, depth int) ([]byte, int, bool) {
	dst = append(dst, '[')
	ok := true
	for i := 0; i < n; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, off, ok = fastJSON(dst, b, off, o, depth+1); !ok {
			return dst, 0, false
		}
	}
	return append(dst, ']'), off, true
}

// maxFastKeys bounds the quadratic duplicate-key check.
const maxFastKeys = 32

func fastMap(dst, b []byte, off, n int, o event.JSONOptions, depth int) ([]byte, int, bool) {
	if n > maxFastKeys {
		return dst, 0, false
	}
	var keys [maxFastKeys][]byte
	dst = append(dst, '{')
	ok := true
	for i := 0; i < n; i++ {
		key, next, isStr := strAt(b, off)
		if !isStr {
			return dst, 0, false
		}
		for _, k := range keys[:i] {
			if string(k) == string(key) {
				return dst, 0, false // duplicate keys: only the last is kept
			}
		}
		keys[i] = key
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = event.AppendJSONString(dst, bytesString(key), o)
		dst = append(dst, ':')
		if dst, off, ok = fastJSON(dst, b, next, o, depth+1); !ok {
			return dst, 0, false
		}
	}
	return append(dst, '}'), off, true
}

// strAt returns the bytes of a str or bin value at off.
func strAt(b []byte, off int) ([]byte, int, bool) {
	if off >= len(b) {
		return nil, 0, false
	}
	c := b[off]
	var n uint64
	p := off + 1
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		v, ok := readUint(b, p, 1)
		n, p = v, p+1
		if !ok {
			return nil, 0, false
		}
	case c == 0xda || c == 0xc5:
		v, ok := readUint(b, p, 2)
		n, p = v, p+2
		if !ok {
			return nil, 0, false
		}
	case c == 0xdb || c == 0xc6:
		v, ok := readUint(b, p, 4)
		n, p = v, p+4
		if !ok {
			return nil, 0, false
		}
	default:
		return nil, 0, false
	}
	if n > uint64(len(b)-p) {
		return nil, 0, false
	}
	return b[p : p+int(n)], p + int(n), true
}
