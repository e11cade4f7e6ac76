package event

import (
	"encoding/binary"
	"fmt"
	"math"
)

// This file holds a small hand-written MessagePack reader and writer. Every
// event on Floe's hot path is scanned by it, so it works on byte slices in
// place and allocates only when a caller asks for decoded values.

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

// DecodeError reports malformed MessagePack with the byte offset where it was found.
type DecodeError struct {
	Offset int
	Msg    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("msgpack at byte offset %d: %s", e.Offset, e.Msg)
}

func errAt(off int, format string, args ...any) error {
	return &DecodeError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func need(b []byte, off, n int) error {
	if n < 0 || off+n > len(b) || off+n < off {
		return errAt(off, "truncated: need %d bytes, have %d", n, len(b)-off)
	}
	return nil
}

// readLen reads a big-endian length of size bytes at off.
func readLen(b []byte, off, size int) (int, error) {
	if err := need(b, off, size); err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return int(b[off]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b[off:])), nil
	default:
		n := binary.BigEndian.Uint32(b[off:])
		if uint64(n) > uint64(len(b)) {
			return 0, errAt(off, "length %d exceeds input", n)
		}
		return int(n), nil
	}
}

// arrayHeader reads an array header at off and returns its length and the offset of its first element.
func arrayHeader(b []byte, off int) (int, int, error) {
	if err := need(b, off, 1); err != nil {
		return 0, 0, err
	}
	c := b[off]
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), off + 1, nil
	case c == 0xdc:
		n, err := readLen(b, off+1, 2)
		return n, off + 3, err
	case c == 0xdd:
		n, err := readLen(b, off+1, 4)
		return n, off + 5, err
	}
	return 0, 0, errAt(off, "expected array, found %s", TypeName(c))
}

// mapHeader reads a map header at off and returns its pair count and the offset of its first key.
func mapHeader(b []byte, off int) (int, int, error) {
	if err := need(b, off, 1); err != nil {
		return 0, 0, err
	}
	c := b[off]
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), off + 1, nil
	case c == 0xde:
		n, err := readLen(b, off+1, 2)
		return n, off + 3, err
	case c == 0xdf:
		n, err := readLen(b, off+1, 4)
		return n, off + 5, err
	}
	return 0, 0, errAt(off, "expected map, found %s", TypeName(c))
}

// Skip returns the offset just past the MessagePack value starting at off
// (0 with the error when the value is malformed or truncated).
func Skip(b []byte, off int) (int, error) {
	end, err := skip(b, off, 0)
	if err != nil {
		return 0, err
	}
	return end, nil
}

func skip(b []byte, off, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errAt(off, "nesting deeper than %d", maxDepth)
	}
	if err := need(b, off, 1); err != nil {
		return 0, err
	}
	c := b[off]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return off + 1, nil
	case c >= 0xa0 && c <= 0xbf:
		n := int(c & 0x1f)
		return off + 1 + n, need(b, off+1, n)
	case c >= 0x80 && c <= 0x8f:
		return skipN(b, off+1, 2*int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return skipN(b, off+1, int(c&0x0f), depth)
	}
	switch c {
	case 0xcc, 0xd0:
		return off + 2, need(b, off, 2)
	case 0xcd, 0xd1:
		return off + 3, need(b, off, 3)
	case 0xce, 0xd2, 0xca:
		return off + 5, need(b, off, 5)
	case 0xcf, 0xd3, 0xcb:
		return off + 9, need(b, off, 9)
	case 0xd4:
		return off + 3, need(b, off, 3)
	case 0xd5:
		return off + 4, need(b, off, 4)
	case 0xd6:
		return off + 6, need(b, off, 6)
	case 0xd7:
		return off + 10, need(b, off, 10)
	case 0xd8:
		return off + 18, need(b, off, 18)
	case 0xc4, 0xd9:
		n, err := readLen(b, off+1, 1)
		if err != nil {
			return 0, err
		}
		return off + 2 + n, need(b, off+2, n)
	case 0xc5, 0xda:
		n, err := readLen(b, off+1, 2)
		if err != nil {
			return 0, err
		}
		return off + 3 + n, need(b, off+3, n)
	case 0xc6, 0xdb:
		n, err := readLen(b, off+1, 4)
		if err != nil {
			return 0, err
		}
		return off + 5 + n, need(b, off+5, n)
	case 0xc7:
		n, err := readLen(b, off+1, 1)
		if err != nil {
			return 0, err
		}
		return off + 3 + n, need(b, off+2, 1+n)
	case 0xc8:
		n, err := readLen(b, off+1, 2)
		if err != nil {
			return 0, err
		}
		return off + 4 + n, need(b, off+3, 1+n)
	case 0xc9:
		n, err := readLen(b, off+1, 4)
		if err != nil {
			return 0, err
		}
		return off + 6 + n, need(b, off+5, 1+n)
	case 0xdc:
		n, err := readLen(b, off+1, 2)
		if err != nil {
			return 0, err
		}
		return skipN(b, off+3, n, depth)
	case 0xdd:
		n, err := readLen(b, off+1, 4)
		if err != nil {
			return 0, err
		}
		return skipN(b, off+5, n, depth)
	case 0xde:
		n, err := readLen(b, off+1, 2)
		if err != nil {
			return 0, err
		}
		return skipN(b, off+3, 2*n, depth)
	case 0xdf:
		n, err := readLen(b, off+1, 4)
		if err != nil {
			return 0, err
		}
		return skipN(b, off+5, 2*n, depth)
	}
	return 0, errAt(off, "invalid type byte 0x%02x", c)
}

func skipN(b []byte, off, n, depth int) (int, error) {
	var err error
	for i := 0; i < n; i++ {
		if off, err = skip(b, off, depth+1); err != nil {
			return 0, err
		}
	}
	return off, nil
}

// TypeName names the MessagePack type a value starting with byte c has, for
// errors that say what was found where something else was expected.
func TypeName(c byte) string {
	switch {
	case c <= 0x7f, c >= 0xe0, c >= 0xcc && c <= 0xd3:
		return "integer"
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		return "map"
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		return "array"
	case c >= 0xa0 && c <= 0xbf, c >= 0xd9 && c <= 0xdb:
		return "string"
	case c == 0xc0:
		return "nil"
	case c == 0xc2, c == 0xc3:
		return "boolean"
	case c >= 0xc4 && c <= 0xc6:
		return "binary"
	case c == 0xca, c == 0xcb:
		return "float"
	case c >= 0xc7 && c <= 0xc9, c >= 0xd4 && c <= 0xd8:
		return "ext"
	}
	return fmt.Sprintf("invalid byte 0x%02x", c)
}

// Ext is a MessagePack extension value other than a timestamp inside a record.
type Ext struct {
	Type int8
	Data []byte
}

// Value decodes the MessagePack value at off into Go values: nil, bool, int64
// (uint64 above MaxInt64), float32, float64, string, []byte, []any, Map or Ext.
// Strings are copied; []byte and Ext data alias b.
func Value(b []byte, off int) (any, int, error) {
	return value(b, off, 0)
}

func value(b []byte, off, depth int) (any, int, error) {
	if depth > maxDepth {
		return nil, 0, errAt(off, "nesting deeper than %d", maxDepth)
	}
	if err := need(b, off, 1); err != nil {
		return nil, 0, err
	}
	c := b[off]
	switch {
	case c <= 0x7f:
		return int64(c), off + 1, nil
	case c >= 0xe0:
		return int64(int8(c)), off + 1, nil
	case c >= 0xa0 && c <= 0xbf:
		n := int(c & 0x1f)
		if err := need(b, off+1, n); err != nil {
			return nil, 0, err
		}
		return string(b[off+1 : off+1+n]), off + 1 + n, nil
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		return mapValue(b, off, depth)
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		n, p, err := arrayHeader(b, off)
		if err != nil {
			return nil, 0, err
		}
		if n > len(b)-p {
			return nil, 0, errAt(off, "array of %d elements exceeds input", n)
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], p, err = value(b, p, depth+1); err != nil {
				return nil, 0, err
			}
		}
		return arr, p, nil
	}
	switch c {
	case 0xc0:
		return nil, off + 1, nil
	case 0xc2:
		return false, off + 1, nil
	case 0xc3:
		return true, off + 1, nil
	case 0xcc:
		if err := need(b, off, 2); err != nil {
			return nil, 0, err
		}
		return int64(b[off+1]), off + 2, nil
	case 0xcd:
		if err := need(b, off, 3); err != nil {
			return nil, 0, err
		}
		return int64(binary.BigEndian.Uint16(b[off+1:])), off + 3, nil
	case 0xce:
		if err := need(b, off, 5); err != nil {
			return nil, 0, err
		}
		return int64(binary.BigEndian.Uint32(b[off+1:])), off + 5, nil
	case 0xcf:
		if err := need(b, off, 9); err != nil {
			return nil, 0, err
		}
		u := binary.BigEndian.Uint64(b[off+1:])
		if u > math.MaxInt64 {
			return u, off + 9, nil
		}
		return int64(u), off + 9, nil
	case 0xd0:
		if err := need(b, off, 2); err != nil {
			return nil, 0, err
		}
		return int64(int8(b[off+1])), off + 2, nil
	case 0xd1:
		if err := need(b, off, 3); err != nil {
			return nil, 0, err
		}
		return int64(int16(binary.BigEndian.Uint16(b[off+1:]))), off + 3, nil
	case 0xd2:
		if err := need(b, off, 5); err != nil {
			return nil, 0, err
		}
		return int64(int32(binary.BigEndian.Uint32(b[off+1:]))), off + 5, nil
	case 0xd3:
		if err := need(b, off, 9); err != nil {
			return nil, 0, err
		}
		return int64(binary.BigEndian.Uint64(b[off+1:])), off + 9, nil
	case 0xca:
		if err := need(b, off, 5); err != nil {
			return nil, 0, err
		}
		return math.Float32frombits(binary.BigEndian.Uint32(b[off+1:])), off + 5, nil
	case 0xcb:
		if err := need(b, off, 9); err != nil {
			return nil, 0, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b[off+1:])), off + 9, nil
	case 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6:
		size := 1
		switch c {
		case 0xda, 0xc5:
			size = 2
		case 0xdb, 0xc6:
			size = 4
		}
		n, err := readLen(b, off+1, size)
		if err != nil {
			return nil, 0, err
		}
		p := off + 1 + size
		if err := need(b, p, n); err != nil {
			return nil, 0, err
		}
		if c >= 0xd9 {
			return string(b[p : p+n]), p + n, nil
		}
		return b[p : p+n : p+n], p + n, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9:
		typ, data, next, err := extAt(b, off)
		if err != nil {
			return nil, 0, err
		}
		return Ext{Type: typ, Data: data}, next, nil
	}
	return nil, 0, errAt(off, "invalid type byte 0x%02x", c)
}

func mapValue(b []byte, off, depth int) (Map, int, error) {
	n, p, err := mapHeader(b, off)
	if err != nil {
		return nil, 0, err
	}
	if n > (len(b)-p)/2 {
		return nil, 0, errAt(off, "map of %d pairs exceeds input", n)
	}
	m := make(Map, n)
	for i := range m {
		var np int
		if m[i].Key, np, err = mapKey(b, p, depth+1); err != nil {
			return nil, 0, err
		}
		if m[i].Value, p, err = value(b, np, depth+1); err != nil {
			return nil, 0, err
		}
	}
	return m, p, nil
}

// mapKey reads a map key as the string Floe indexes records by. Records
// almost always have string keys; other kinds get a readable text form:
// their compact JSON, with nested non-string keys written raw as Fluent
// Bit's msgpack2json does. The text is rendered from the bytes, so its size
// stays linear in the input (rendering decoded keys again would escape the
// already-escaped text of inner keys, doubling it at every nesting level).
func mapKey(b []byte, off, depth int) (string, int, error) {
	if err := need(b, off, 1); err != nil {
		return "", 0, err
	}
	c := b[off]
	switch {
	case c >= 0xa0 && c <= 0xbf, c >= 0xd9 && c <= 0xdb, c >= 0xc4 && c <= 0xc6:
		k, next, err := value(b, off, depth)
		if err != nil {
			return "", 0, err
		}
		if bin, ok := k.([]byte); ok {
			return string(bin), next, nil
		}
		return k.(string), next, nil
	case c == 0xc0:
		return "null", off + 1, nil
	}
	text, next, err := appendKeyText(nil, b, off, depth)
	if err != nil {
		return "", 0, err
	}
	return string(text), next, nil
}

// appendKeyText renders the value at off as compact JSON for a map key.
func appendKeyText(dst, b []byte, off, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return nil, 0, errAt(off, "nesting deeper than %d", maxDepth)
	}
	if err := need(b, off, 1); err != nil {
		return nil, 0, err
	}
	c := b[off]
	switch {
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		n, p, err := arrayHeader(b, off)
		if err != nil {
			return nil, 0, err
		}
		dst = append(dst, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, p, err = appendKeyText(dst, b, p, depth+1); err != nil {
				return nil, 0, err
			}
		}
		return append(dst, ']'), p, nil
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		n, p, err := mapHeader(b, off)
		if err != nil {
			return nil, 0, err
		}
		dst = append(dst, '{')
		for i := 0; i < 2*n; i++ {
			switch {
			case i%2 == 1:
				dst = append(dst, ':')
			case i > 0:
				dst = append(dst, ',')
			}
			if dst, p, err = appendKeyText(dst, b, p, depth+1); err != nil {
				return nil, 0, err
			}
		}
		return append(dst, '}'), p, nil
	}
	v, next, err := value(b, off, depth)
	if err != nil {
		return nil, 0, err
	}
	return AppendJSON(dst, v, JSONOptions{}), next, nil
}

// extAt reads an ext value at off and returns its type, payload (aliasing b) and the next offset.
func extAt(b []byte, off int) (int8, []byte, int, error) {
	if err := need(b, off, 1); err != nil {
		return 0, nil, 0, err
	}
	var n, p int
	switch b[off] {
	case 0xd4:
		n, p = 1, off+1
	case 0xd5:
		n, p = 2, off+1
	case 0xd6:
		n, p = 4, off+1
	case 0xd7:
		n, p = 8, off+1
	case 0xd8:
		n, p = 16, off+1
	case 0xc7, 0xc8, 0xc9:
		size := 1 << (b[off] - 0xc7)
		var err error
		if n, err = readLen(b, off+1, size); err != nil {
			return 0, nil, 0, err
		}
		p = off + 1 + size
	default:
		return 0, nil, 0, errAt(off, "expected ext, found %s", TypeName(b[off]))
	}
	if err := need(b, p, 1+n); err != nil {
		return 0, nil, 0, err
	}
	return int8(b[p]), b[p+1 : p+1+n : p+1+n], p + 1 + n, nil
}

// ---- writer ----

// AppendNil appends a MessagePack nil.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendBool appends a MessagePack boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendInt appends the smallest MessagePack encoding of v, as msgpack-c does
// (non-negative values use the unsigned forms).
func AppendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return AppendUint(b, uint64(v))
	}
	switch {
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// AppendUint appends the smallest MessagePack encoding of v.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

// AppendFloat64 appends a MessagePack float64.
func AppendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(v))
}

// AppendFloat32 appends a MessagePack float32.
func AppendFloat32(b []byte, v float32) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(v))
}

// AppendString appends a MessagePack str.
func AppendString(b []byte, s string) []byte { return appendStr(b, s) }

// AppendStringBytes appends s as a MessagePack str without making a string of it.
func AppendStringBytes(b, s []byte) []byte { return appendStr(b, s) }

func appendStr[S string | []byte](b []byte, s S) []byte {
	n := len(s)
	switch {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// AppendBytes appends a MessagePack bin.
func AppendBytes(b []byte, v []byte) []byte {
	n := len(v)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, v...)
}

// AppendArrayHeader appends the header of an array of n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

// AppendMapHeader appends the header of a map of n pairs.
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

// AppendExt appends an ext value, using the fixext forms where they fit.
func AppendExt(b []byte, typ int8, data []byte) []byte {
	switch n := len(data); n {
	case 1:
		b = append(b, 0xd4)
	case 2:
		b = append(b, 0xd5)
	case 4:
		b = append(b, 0xd6)
	case 8:
		b = append(b, 0xd7)
	case 16:
		b = append(b, 0xd8)
	default:
		switch {
		case n <= math.MaxUint8:
			b = append(b, 0xc7, byte(n))
		case n <= math.MaxUint16:
			b = binary.BigEndian.AppendUint16(append(b, 0xc8), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xc9), uint32(n))
		}
	}
	b = append(b, byte(typ))
	return append(b, data...)
}

// AppendValue appends any value Value can return, plus the Go integer kinds,
// Time and Raw. Go maps are not supported (their order is random): use Map.
// Any other type is written as the string fmt.Sprint gives.
func AppendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return AppendNil(b)
	case bool:
		return AppendBool(b, v)
	case int64:
		return AppendInt(b, v)
	case int:
		return AppendInt(b, int64(v))
	case int32:
		return AppendInt(b, int64(v))
	case int16:
		return AppendInt(b, int64(v))
	case int8:
		return AppendInt(b, int64(v))
	case uint64:
		return AppendUint(b, v)
	case uint32:
		return AppendUint(b, uint64(v))
	case uint16:
		return AppendUint(b, uint64(v))
	case uint8:
		return AppendUint(b, uint64(v))
	case uint:
		return AppendUint(b, uint64(v))
	case float64:
		return AppendFloat64(b, v)
	case float32:
		return AppendFloat32(b, v)
	case string:
		return AppendString(b, v)
	case []byte:
		return AppendBytes(b, v)
	case []any:
		b = AppendArrayHeader(b, len(v))
		for _, e := range v {
			b = AppendValue(b, e)
		}
		return b
	case Map:
		return v.AppendMsgpack(b)
	case Ext:
		return AppendExt(b, v.Type, v.Data)
	case Time:
		return v.AppendMsgpack(b)
	case Raw:
		return append(b, v...)
	}
	return AppendString(b, fmt.Sprint(v))
}

// Raw is already-encoded MessagePack, appended verbatim.
type Raw []byte
