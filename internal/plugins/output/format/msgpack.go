// Package format holds the record renderings Floe's output plugins share,
// each reproducing a Fluent Bit routine byte for byte:
//
//   - [AppendPrint] and [AppendPrintChunk]: msgpack-c's msgpack_object_print
//     and out_stdout's default "msgpack" format;
//   - [JSON]: flb_pack_msgpack_to_json_format (the json, json_stream and
//     json_lines formats with json_date_key / json_date_format), used by
//     out_stdout, out_null and, record by record, out_file;
//   - [AppendJSON]: flb_msgpack_to_json_str for one value.
//
// The renderers walk the chunk's MessagePack in place; they decode nothing
// into Go values, so rendering a chunk allocates only the output buffer.
package format

import (
	"encoding/binary"
	"fmt"
	"github.com/floe-io/floe/internal/event"
	"math"
)

// maxDepth bounds nesting while rendering, as the event package does.
const maxDepth = 512

type kind uint8

const (
	kNil kind = iota
	kBool
	kUint // any non-negative integer (msgpack-c's POSITIVE_INTEGER)
	kInt  // negative integer
	kFloat32
	kFloat64
	kStr
	kBin
	kExt
	kArray
	kMap
)

// item is one MessagePack value header. For arrays and maps n is the element
// (pair) count and the elements follow at the offset readItem returns.
type item struct {
	k    kind
	b    bool
	u    uint64
	i    int64
	f    float64
	data []byte // str, bin or ext payload (aliases the input)
	ext  int8
	n    int
}

func errAt(off int, format string, args ...any) error {
	return fmt.Errorf("msgpack at byte offset %d: %s", off, fmt.Sprintf(format, args...))
}

func need(b []byte, off, n int) error {
	if n < 0 || off+n > len(b) || off+n < off {
		return errAt(off, "truncated value")
	}
	return nil
}

func beLen(b []byte, off, size int) (int, error) {
	if err := need(b, off, size); err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return int(b[off]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b[off:])), nil
	}
	n := binary.BigEndian.Uint32(b[off:])
	if uint64(n) > uint64(len(b)) {
		return 0, errAt(off, "length %d exceeds input", n)
	}
	return int(n), nil
}

// readItem reads the value header at off. It returns the offset just past a
// scalar, or of the first element of an array or map.
func readItem(b []byte, off int) (item, int, error) {
	var it item
	if err := need(b, off, 1); err != nil {
		return it, 0, err
	}
	c := b[off]
	switch {
	case c <= 0x7f:
		it.k, it.u = kUint, uint64(c)
		return it, off + 1, nil
	case c >= 0xe0:
		it.k, it.i = kInt, int64(int8(c))
		return it, off + 1, nil
	case c >= 0xa0 && c <= 0xbf:
		n := int(c & 0x1f)
		if err := need(b, off+1, n); err != nil {
			return it, 0, err
		}
		it.k, it.data = kStr, b[off+1:off+1+n]
		return it, off + 1 + n, nil
	case c >= 0x80 && c <= 0x8f:
		it.k, it.n = kMap, int(c&0x0f)
		return it, off + 1, nil
	case c >= 0x90 && c <= 0x9f:
		it.k, it.n = kArray, int(c&0x0f)
		return it, off + 1, nil
	}
	switch c {
	case 0xc0:
		it.k = kNil
		return it, off + 1, nil
	case 0xc2, 0xc3:
		it.k, it.b = kBool, c == 0xc3
		return it, off + 1, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		size := 1 << (c - 0xcc)
		if err := need(b, off+1, size); err != nil {
			return it, 0, err
		}
		it.k, it.u = kUint, readUint(b[off+1:], size)
		return it, off + 1 + size, nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		if err := need(b, off+1, size); err != nil {
			return it, 0, err
		}
		u := readUint(b[off+1:], size)
		var v int64
		switch size {
		case 1:
			v = int64(int8(u))
		case 2:
			v = int64(int16(u))
		case 4:
			v = int64(int32(u))
		default:
			v = int64(u)
		}
		if v >= 0 {
			it.k, it.u = kUint, uint64(v)
		} else {
			it.k, it.i = kInt, v
		}
		return it, off + 1 + size, nil
	case 0xca:
		if err := need(b, off+1, 4); err != nil {
			return it, 0, err
		}
		it.k, it.f = kFloat32, float64(math.Float32frombits(binary.BigEndian.Uint32(b[off+1:])))
		return it, off + 5, nil
	case 0xcb:
		if err := need(b, off+1, 8); err != nil {
			return it, 0, err
		}
		it.k, it.f = kFloat64, math.Float64frombits(binary.BigEndian.Uint64(b[off+1:]))
		return it, off + 9, nil
	case 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6:
		size := 1
		switch c {
		case 0xda, 0xc5:
			size = 2
		case 0xdb, 0xc6:
			size = 4
		}
		n, err := beLen(b, off+1, size)
		if err != nil {
			return it, 0, err
		}
		p := off + 1 + size
		if err := need(b, p, n); err != nil {
			return it, 0, err
		}
		it.k, it.data = kStr, b[p:p+n]
		if c <= 0xc6 {
			it.k = kBin
		}
		return it, p + n, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n := 1 << (c - 0xd4)
		if err := need(b, off+1, 1+n); err != nil {
			return it, 0, err
		}
		it.k, it.ext, it.data = kExt, int8(b[off+1]), b[off+2:off+2+n]
		return it, off + 2 + n, nil
	case 0xc7, 0xc8, 0xc9:
		size := 1 << (c - 0xc7)
		n, err := beLen(b, off+1, size)
		if err != nil {
			return it, 0, err
		}
		p := off + 1 + size
		if err := need(b, p, 1+n); err != nil {
			return it, 0, err
		}
		it.k, it.ext, it.data = kExt, int8(b[p]), b[p+1:p+1+n]
		return it, p + 1 + n, nil
	case 0xdc, 0xdd:
		size := 2 << (c - 0xdc)
		n, err := beLen(b, off+1, size)
		if err != nil {
			return it, 0, err
		}
		it.k, it.n = kArray, n
		return it, off + 1 + size, nil
	case 0xde, 0xdf:
		size := 2 << (c - 0xde)
		n, err := beLen(b, off+1, size)
		if err != nil {
			return it, 0, err
		}
		it.k, it.n = kMap, n
		return it, off + 1 + size, nil
	}
	return it, 0, errAt(off, "invalid type byte 0x%02x", c)
}

func readUint(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}

// Pairs calls fn with the raw key and value of every pair of the MessagePack
// map m, in order, until fn returns false. It fails if m is not a map.
func Pairs(m []byte, fn func(key, val []byte) bool) error {
	it, p, err := readItem(m, 0)
	if err != nil {
		return err
	}
	if it.k != kMap {
		return errAt(0, "expected a map")
	}
	for i := 0; i < it.n; i++ {
		ke, err := event.Skip(m, p)
		if err != nil {
			return err
		}
		ve, err := event.Skip(m, ke)
		if err != nil {
			return err
		}
		if !fn(m[p:ke], m[ke:ve]) {
			return nil
		}
		p = ve
	}
	return nil
}

// MapLen returns the pair count of the MessagePack map m (0 if m is not a map).
func MapLen(m []byte) int {
	if len(m) == 0 {
		return 0
	}
	it, _, err := readItem(m, 0)
	if err != nil || it.k != kMap {
		return 0
	}
	return it.n
}

// Str returns the bytes of v when v is a MessagePack str.
func Str(v []byte) ([]byte, bool) {
	it, _, err := readItem(v, 0)
	if err != nil || it.k != kStr {
		return nil, false
	}
	return it.data, true
}
