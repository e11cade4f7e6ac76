package recordaccessor

import (
	"encoding/binary"
	"fmt"

	"github.com/floe-io/floe/internal/event"
)

// This file reads encoded MessagePack in place. The bodies it is given come
// from event.ParseEvent, which has already checked that they are complete
// values, but every reader still bounds-checks and reports failure rather
// than panicking.

// Pair is one key/value of an encoded map; both alias the input bytes.
type Pair struct {
	Key []byte // the key's encoding
	Val []byte // the value's encoding
}

// MapHeader reads the header of an encoded map: its pair count and the offset
// of the first key.
func MapHeader(b []byte) (n, off int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch c := b[0]; {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), 1, true
	case c == 0xde && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), 3, true
	case c == 0xdf && len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:])), 5, true
	}
	return 0, 0, false
}

func arrayHeader(b []byte) (n, off int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch c := b[0]; {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), 1, true
	case c == 0xdc && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), 3, true
	case c == 0xdd && len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:])), 5, true
	}
	return 0, 0, false
}

func isContainer(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	c := v[0]
	return (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf)
}

// AppendPairs appends the pairs of the encoded map m to dst.
func AppendPairs(dst []Pair, m []byte) ([]Pair, error) {
	n, off, ok := MapHeader(m)
	if !ok {
		return dst, fmt.Errorf("record body is not a map")
	}
	for range n {
		kEnd, err := event.Skip(m, off)
		if err != nil {
			return dst, err
		}
		vEnd, err := event.Skip(m, kEnd)
		if err != nil {
			return dst, err
		}
		dst = append(dst, Pair{Key: m[off:kEnd:kEnd], Val: m[kEnd:vEnd:vEnd]})
		off = vEnd
	}
	return dst, nil
}

// lookupKey returns the value of the last pair of map m whose key is a
// string equal to name (ra_key_val_id scans from the end and skips
// non-string keys).
func lookupKey(m []byte, name string) ([]byte, bool) {
	n, off, ok := MapHeader(m)
	if !ok {
		return nil, false
	}
	var found []byte
	for range n {
		kEnd, err := event.Skip(m, off)
		if err != nil {
			return nil, false
		}
		vEnd, err := event.Skip(m, kEnd)
		if err != nil {
			return nil, false
		}
		if k, ok := Str(m[off:kEnd]); ok && string(k) == name {
			found = m[kEnd:vEnd:vEnd]
		}
		off = vEnd
	}
	return found, found != nil
}

func arrayElem(a []byte, idx int) ([]byte, bool) {
	n, off, ok := arrayHeader(a)
	if !ok || idx < 0 || idx >= n {
		return nil, false
	}
	for i := 0; ; i++ {
		end, err := event.Skip(a, off)
		if err != nil {
			return nil, false
		}
		if i == idx {
			return a[off:end:end], true
		}
		off = end
	}
}

// Str returns the bytes of an encoded MessagePack str.
func Str(v []byte) ([]byte, bool) {
	if len(v) == 0 {
		return nil, false
	}
	var n, h int
	switch c := v[0]; {
	case c >= 0xa0 && c <= 0xbf:
		n, h = int(c&0x1f), 1
	case c == 0xd9 && len(v) >= 2:
		n, h = int(v[1]), 2
	case c == 0xda && len(v) >= 3:
		n, h = int(binary.BigEndian.Uint16(v[1:])), 3
	case c == 0xdb && len(v) >= 5:
		n, h = int(binary.BigEndian.Uint32(v[1:])), 5
	default:
		return nil, false
	}
	if h+n > len(v) {
		return nil, false
	}
	return v[h : h+n], true
}

// Bin returns the bytes of an encoded MessagePack bin.
func Bin(v []byte) ([]byte, bool) {
	if len(v) == 0 {
		return nil, false
	}
	var n, h int
	switch c := v[0]; {
	case c == 0xc4 && len(v) >= 2:
		n, h = int(v[1]), 2
	case c == 0xc5 && len(v) >= 3:
		n, h = int(binary.BigEndian.Uint16(v[1:])), 3
	case c == 0xc6 && len(v) >= 5:
		n, h = int(binary.BigEndian.Uint32(v[1:])), 5
	default:
		return nil, false
	}
	if h+n > len(v) {
		return nil, false
	}
	return v[h : h+n], true
}

// StrOrBin returns the bytes of an encoded str or bin.
func StrOrBin(v []byte) ([]byte, bool) {
	if s, ok := Str(v); ok {
		return s, true
	}
	return Bin(v)
}

// Bool returns the value of an encoded boolean.
func Bool(v []byte) (val, ok bool) {
	if len(v) == 0 {
		return false, false
	}
	switch v[0] {
	case 0xc2:
		return false, true
	case 0xc3:
		return true, true
	}
	return false, false
}

// AppendMap appends an encoded map made of pairs.
func AppendMap(b []byte, pairs []Pair) []byte {
	b = event.AppendMapHeader(b, len(pairs))
	for _, p := range pairs {
		b = append(b, p.Key...)
		b = append(b, p.Val...)
	}
	return b
}
