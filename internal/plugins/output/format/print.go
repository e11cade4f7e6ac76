package format

import (
	"math"
	"strconv"

	"github.com/floe-io/floe/internal/event"
)

// AppendPrint appends the rendering of the MessagePack value v exactly as
// msgpack-c's msgpack_object_print (src/objectc.c) writes it:
//
//	nil                 nil
//	bool                true / false
//	integer             decimal (%PRIu64 / %PRIi64)
//	float32, float64    %f: six decimals; inf, -inf, nan, -nan
//	str                 "raw bytes", nothing escaped
//	bin                 "..." with " as \" and non-printable bytes as \xNN
//	ext                 (ext: TYPE)"..." with the payload printed as bin
//	array               [a, b]
//	map                 {k=>v, k2=>v2}
func AppendPrint(dst, v []byte) ([]byte, error) {
	dst, _, err := appendPrint(dst, v, 0, 0)
	return dst, err
}

func appendPrint(dst, b []byte, off, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return dst, 0, errAt(off, "nesting deeper than %d", maxDepth)
	}
	it, p, err := readItem(b, off)
	if err != nil {
		return dst, 0, err
	}
	switch it.k {
	case kNil:
		dst = append(dst, "nil"...)
	case kBool:
		dst = strconv.AppendBool(dst, it.b)
	case kUint:
		dst = strconv.AppendUint(dst, it.u, 10)
	case kInt:
		dst = strconv.AppendInt(dst, it.i, 10)
	case kFloat32, kFloat64:
		dst = appendCFloat(dst, it.f)
	case kStr:
		dst = append(dst, '"')
		dst = append(dst, it.data...)
		dst = append(dst, '"')
	case kBin:
		dst = append(dst, '"')
		dst = appendBinPrint(dst, it.data)
		dst = append(dst, '"')
	case kExt:
		dst = append(dst, "(ext: "...)
		dst = strconv.AppendInt(dst, int64(it.ext), 10)
		dst = append(dst, ")\""...)
		dst = appendBinPrint(dst, it.data)
		dst = append(dst, '"')
	case kArray:
		dst = append(dst, '[')
		for i := 0; i < it.n; i++ {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if dst, p, err = appendPrint(dst, b, p, depth+1); err != nil {
				return dst, 0, err
			}
		}
		dst = append(dst, ']')
	case kMap:
		dst = append(dst, '{')
		for i := 0; i < it.n; i++ {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if dst, p, err = appendPrint(dst, b, p, depth+1); err != nil {
				return dst, 0, err
			}
			dst = append(dst, "=>"...)
			if dst, p, err = appendPrint(dst, b, p, depth+1); err != nil {
				return dst, 0, err
			}
		}
		dst = append(dst, '}')
	}
	return dst, p, nil
}

// appendCFloat formats f like C's printf("%f") with glibc.
func appendCFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		if math.Signbit(f) {
			return append(dst, "-nan"...)
		}
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'f', 6, 64)
}

// appendBinPrint is msgpack_object_bin_print: '"' escaped, printable ASCII
// (isprint in the C locale) kept, anything else as \xNN.
func appendBinPrint(dst, data []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range data {
		switch {
		case c == '"':
			dst = append(dst, '\\', '"')
		case c >= 0x20 && c < 0x7f:
			dst = append(dst, c)
		default:
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// Record is one log record of a chunk together with the group it belongs to,
// as Fluent Bit's log event decoder presents it: group markers are not
// records; GroupMeta and GroupAttrs are the metadata and body of the
// enclosing group start marker, nil outside a group.
type Record struct {
	*event.RawEvent
	GroupMeta  []byte
	GroupAttrs []byte
}

// EachRecord calls fn for every record of a chunk, skipping group markers. It
// stops at the first decode error or error from fn and returns it.
func EachRecord(data []byte, fn func(r *Record) error) error {
	it := event.NewIter(data)
	var rec Record
	for it.Next() {
		ev := it.Event()
		switch ev.Kind() {
		case event.KindGroupStart:
			rec.GroupMeta, rec.GroupAttrs = ev.Meta, ev.Body
			continue
		case event.KindGroupEnd:
			rec.GroupMeta, rec.GroupAttrs = nil, nil
			continue
		}
		rec.RawEvent = ev
		if err := fn(&rec); err != nil {
			return err
		}
	}
	return it.Err()
}

// AppendPrintChunk renders a chunk in out_stdout's default ("msgpack")
// format, one line per record with N counting records from 0:
//
//	[N] TAG: [[SEC.NSEC, METADATA], BODY]
//
// SEC is printed as a signed 32-bit value and NSEC zero-padded to nine
// digits (printf "%"PRId32".%09lu"). A record inside a group is preceded by
//
//	GROUP METADATA : \n\n<metadata>\n\nGROUP ATTRIBUTES : \n\n<attributes>\n\n
//
// On a decode error the records rendered so far are returned with the error.
func AppendPrintChunk(dst []byte, tag string, data []byte) ([]byte, error) {
	n := 0
	err := EachRecord(data, func(r *Record) error {
		var err error
		if r.GroupAttrs != nil {
			dst = append(dst, "GROUP METADATA : \n\n"...)
			if dst, err = AppendPrint(dst, r.GroupMeta); err != nil {
				return err
			}
			dst = append(dst, "\n\nGROUP ATTRIBUTES : \n\n"...)
			if dst, err = AppendPrint(dst, r.GroupAttrs); err != nil {
				return err
			}
			dst = append(dst, "\n\n"...)
		}
		mark := len(dst)
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, "] "...)
		dst = append(dst, tag...)
		dst = append(dst, ": [["...)
		dst = strconv.AppendInt(dst, int64(int32(r.Time.Sec)), 10)
		dst = append(dst, '.')
		dst = appendPad9(dst, r.Time.Nsec)
		dst = append(dst, ", "...)
		if dst, err = AppendPrint(dst, r.Meta); err != nil {
			dst = dst[:mark]
			return err
		}
		dst = append(dst, "], "...)
		if dst, err = AppendPrint(dst, r.Body); err != nil {
			dst = dst[:mark]
			return err
		}
		dst = append(dst, "]\n"...)
		n++
		return nil
	})
	return dst, err
}

// appendPad9 writes v zero-padded to nine digits (%09lu).
func appendPad9(dst []byte, v uint32) []byte {
	var buf [10]byte
	s := strconv.AppendUint(buf[:0], uint64(v), 10)
	for i := len(s); i < 9; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}
