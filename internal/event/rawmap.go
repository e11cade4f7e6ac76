package event

import "bytes"

// Editing a record's MessagePack map in place, without decoding it into a
// Map: the inputs that convert text straight to MessagePack (the json
// parser's fast path) still have to set path_key/offset_key fields and take
// the time field out, and a decode and re-encode per record would cost more
// than the conversion itself.

// IsMap reports whether c is the first byte of a MessagePack map.
func IsMap(c byte) bool { return c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf }

// RawPair locates one key/value pair of a MessagePack map.
type RawPair struct {
	Key, Value, End int // offsets of the key, the value and just past the value
}

// MapFind returns the first pair of the map at b[off:] whose key is the
// string key, and the offset just past the map. found is false when no pair
// has that key.
func MapFind(b []byte, off int, key string) (p RawPair, found bool, end int, err error) {
	n, pos, err := mapHeader(b, off)
	if err != nil {
		return RawPair{}, false, 0, err
	}
	for range n {
		k := pos
		s, next, isStr, err := strAt(b, pos)
		if err != nil {
			return RawPair{}, false, 0, err
		}
		if !isStr {
			if next, err = skip(b, pos, 1); err != nil {
				return RawPair{}, false, 0, err
			}
		}
		v := next
		if pos, err = skip(b, v, 1); err != nil {
			return RawPair{}, false, 0, err
		}
		if !found && isStr && string(s) == key {
			p, found = RawPair{Key: k, Value: v, End: pos}, true
		}
	}
	return p, found, pos, nil
}

// MapStringAt returns the bytes of the str at b[off], and false when the
// value there is not a str.
func MapStringAt(b []byte, off int) ([]byte, bool) {
	s, _, ok, err := strAt(b, off)
	return s, ok && err == nil
}

// strAt reads a str at off: its bytes, the offset past it, and whether the
// value is a str at all (if not, next is meaningless).
func strAt(b []byte, off int) (s []byte, next int, ok bool, err error) {
	if err := need(b, off, 1); err != nil {
		return nil, 0, false, err
	}
	c := b[off]
	var n, start int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, start = int(c&0x1f), off+1
	case c == 0xd9:
		n, err = readLen(b, off+1, 1)
		start = off + 2
	case c == 0xda:
		n, err = readLen(b, off+1, 2)
		start = off + 3
	case c == 0xdb:
		n, err = readLen(b, off+1, 4)
		start = off + 5
	default:
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	if err := need(b, start, n); err != nil {
		return nil, 0, false, err
	}
	return b[start : start+n], start + n, true, nil
}

// MapRemove takes pair p out of the map at b[off:], which must be the last
// value in b, and returns the shortened slice.
func MapRemove(b []byte, off int, p RawPair) ([]byte, error) {
	n, _, err := mapHeader(b, off)
	if err != nil {
		return b, err
	}
	b = append(b[:p.Key], b[p.End:]...)
	return setMapLen(b, off, n-1), nil
}

// MapSet replaces the value of the first pair with key in the map at
// b[off:], which must be the last value in b, or appends the pair; val is
// one encoded MessagePack value. It is Map.Set on the encoded form.
func MapSet(b []byte, off int, key string, val []byte) ([]byte, error) {
	p, found, end, err := MapFind(b, off, key)
	if err != nil {
		return b, err
	}
	if end != len(b) {
		return b, errAt(end, "map is not the last value (%d bytes follow)", len(b)-end)
	}
	if found {
		if bytes.Equal(b[p.Value:p.End], val) {
			return b, nil
		}
		b = resize(b, p.Value, p.End-p.Value, len(val))
		copy(b[p.Value:], val)
		return b, nil
	}
	n, _, _ := mapHeader(b, off)
	b = AppendString(b, key)
	b = append(b, val...)
	return setMapLen(b, off, n+1), nil
}

// setMapLen rewrites the header of the map at b[off] for n pairs, moving
// the bytes after it when the header's size changes (15 ⇄ 16 pairs,
// 65535 ⇄ 65536).
func setMapLen(b []byte, off, n int) []byte {
	_, first, _ := mapHeader(b, off)
	var buf [5]byte
	h := AppendMapHeader(buf[:0], n)
	b = resize(b, off, first-off, len(h))
	copy(b[off:], h)
	return b
}

// resize makes the have bytes at b[at:] want bytes long, moving what follows
// them; the caller writes the new bytes.
func resize(b []byte, at, have, want int) []byte {
	switch d := want - have; {
	case d > 0:
		b = append(b, make([]byte, d)...)
		copy(b[at+want:], b[at+have:len(b)-d])
	case d < 0:
		copy(b[at+want:], b[at+have:])
		b = b[:len(b)+d]
	}
	return b
}
