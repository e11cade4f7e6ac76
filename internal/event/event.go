// Package event is Floe's codec for Fluent Bit log events: the v2 layout
// [[TIME, METADATA], BODY], the v1 layout [TIME, BODY], the EventTime
// extension and group markers, plus an iterator over a chunk (a plain
// concatenation of events) that does not copy.
package event

import (
	"encoding/binary"
	"math"
	"time"
	"unsafe"
)

// Group marker seconds, as Fluent Bit encodes them (-1 and -2 as uint32).
const (
	GroupStartSec = -1
	GroupEndSec   = -2
)

// Time is an event timestamp with nanosecond precision.
type Time struct {
	Sec  int64
	Nsec uint32
}

// FromTime converts a time.Time.
func FromTime(t time.Time) Time {
	return Time{Sec: t.Unix(), Nsec: uint32(t.Nanosecond())}
}

// Now is the current wall-clock time.
func Now() Time { return FromTime(time.Now()) }

// Std converts to time.Time.
func (t Time) Std() time.Time { return time.Unix(t.Sec, int64(t.Nsec)) }

// Float is the time as seconds with a fraction, as Fluent Bit's flb_time_to_double.
func (t Time) Float() float64 { return float64(t.Sec) + float64(t.Nsec)/1e9 }

// UnixNano is the time in nanoseconds.
func (t Time) UnixNano() int64 { return t.Sec*1e9 + int64(t.Nsec) }

// Before orders times.
func (t Time) Before(u Time) bool {
	return t.Sec < u.Sec || (t.Sec == u.Sec && t.Nsec < u.Nsec)
}

// AppendMsgpack writes the Fluent EventTime extension (fixext8, type 0).
// Seconds are written as uint32 (GroupStartSec and GroupEndSec become
// 0xFFFFFFFF and 0xFFFFFFFE); the caller keeps Sec within 0..2^32-1 (or a
// group marker) and Nsec below 1e9, as every decoded Time is.
func (t Time) AppendMsgpack(b []byte) []byte {
	b = append(b, 0xd7, 0x00)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Sec))
	return binary.BigEndian.AppendUint32(b, t.Nsec)
}

// Kind tells a normal record from a group marker.
type Kind uint8

const (
	KindRecord Kind = iota
	KindGroupStart
	KindGroupEnd
)

// KV is one key/value pair of a Map.
type KV struct {
	Key   string
	Value any
}

// Map is a MessagePack map that keeps its key order, as Fluent Bit records do.
type Map []KV

// Index returns the position of the first pair with key, or -1.
func (m Map) Index(key string) int {
	for i := range m {
		if m[i].Key == key {
			return i
		}
	}
	return -1
}

// Get returns the value of the first pair with key.
func (m Map) Get(key string) (any, bool) {
	if i := m.Index(key); i >= 0 {
		return m[i].Value, true
	}
	return nil, false
}

// Set replaces the value of the first pair with key, or appends the pair.
func (m *Map) Set(key string, v any) {
	if i := m.Index(key); i >= 0 {
		(*m)[i].Value = v
		return
	}
	*m = append(*m, KV{key, v})
}

// Delete removes every pair with key and reports whether one existed.
func (m *Map) Delete(key string) bool {
	out := (*m)[:0]
	found := false
	for _, kv := range *m {
		if kv.Key == key {
			found = true
			continue
		}
		out = append(out, kv)
	}
	*m = out
	return found
}

// Clone copies the pairs (values are shared).
func (m Map) Clone() Map {
	if m == nil {
		return nil
	}
	return append(Map(nil), m...)
}

// AppendMsgpack encodes the map in order.
func (m Map) AppendMsgpack(b []byte) []byte {
	b = AppendMapHeader(b, len(m))
	for _, kv := range m {
		b = AppendString(b, kv.Key)
		b = AppendValue(b, kv.Value)
	}
	return b
}

// Event is a decoded log event.
type Event struct {
	Time Time
	Meta Map
	Body Map
}

// Kind classifies the event by its timestamp.
func (e *Event) Kind() Kind { return kindOf(e.Time) }

func kindOf(t Time) Kind {
	switch t.Sec {
	case GroupStartSec:
		return KindGroupStart
	case GroupEndSec:
		return KindGroupEnd
	}
	return KindRecord
}

// AppendMsgpack encodes the event in the v2 layout.
func (e *Event) AppendMsgpack(b []byte) []byte {
	b = append(b, 0x92, 0x92)
	b = e.Time.AppendMsgpack(b)
	if e.Meta == nil {
		b = append(b, 0x80)
	} else {
		b = e.Meta.AppendMsgpack(b)
	}
	if e.Body == nil {
		return append(b, 0x80)
	}
	return e.Body.AppendMsgpack(b)
}

// AppendRaw encodes an event whose metadata and body are already MessagePack
// maps (meta may be nil for an empty map). It copies no values.
func AppendRaw(b []byte, t Time, meta, body []byte) []byte {
	return append(AppendHeader(b, t, meta), body...)
}

// SetHeaderTime sets the time of the event at the start of ev, written by
// AppendHeader or AppendRaw: the time's encoding has a fixed size, so an input
// whose time comes out of the body it is converting can write the header
// first, convert the body after it, and fill the time in last.
func SetHeaderTime(ev []byte, t Time) {
	binary.BigEndian.PutUint32(ev[4:], uint32(t.Sec))
	binary.BigEndian.PutUint32(ev[8:], t.Nsec)
}

// AppendHeader appends everything of an event but its body, which the caller
// appends next: inputs that convert a body straight into their batch use it
// to save a copy. Empty meta is written as an empty map.
func AppendHeader(b []byte, t Time, meta []byte) []byte {
	b = append(b, 0x92, 0x92)
	b = t.AppendMsgpack(b)
	if len(meta) == 0 {
		return append(b, 0x80)
	}
	return append(b, meta...)
}

// RawEvent is one event of a chunk, its parts aliasing the chunk's bytes.
type RawEvent struct {
	Offset int    // byte offset of the event in the chunk
	Raw    []byte // the whole event
	Time   Time
	Meta   []byte // MessagePack map; empty map for v1 events
	Body   []byte // MessagePack map
}

var emptyMap = []byte{0x80}

// Kind classifies the event by its timestamp.
func (r *RawEvent) Kind() Kind { return kindOf(r.Time) }

// Decode turns the raw parts into an Event. Strings are copied, binary values alias the chunk.
func (r *RawEvent) Decode() (Event, error) {
	ev := Event{Time: r.Time}
	meta, _, err := mapValue(r.Meta, 0, 0)
	if err != nil {
		return ev, shift(err, r.Offset+r.metaOffset())
	}
	body, _, err := mapValue(r.Body, 0, 0)
	if err != nil {
		return ev, shift(err, r.Offset+r.bodyOffset())
	}
	ev.Meta, ev.Body = meta, body
	return ev, nil
}

func (r *RawEvent) metaOffset() int { return offsetIn(r.Raw, r.Meta) }

func (r *RawEvent) bodyOffset() int { return offsetIn(r.Raw, r.Body) }

// offsetIn is the offset of sub inside whole when sub points into whole's
// bytes, else 0. (Meta and Body are capped at their own end, so their
// capacities cannot be used to locate them.)
func offsetIn(whole, sub []byte) int {
	if len(sub) == 0 || len(whole) == 0 {
		return 0
	}
	d := uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	if d >= uintptr(len(whole)) { // also catches sub before whole (wraps around)
		return 0
	}
	return int(d)
}

func shift(err error, by int) error {
	if de, ok := err.(*DecodeError); ok {
		return &DecodeError{Offset: de.Offset + by, Msg: de.Msg}
	}
	return err
}

// Iter walks the events of a chunk without copying. Use:
//
//	it := event.NewIter(chunk)
//	for it.Next() { ev := it.Event() ... }
//	if err := it.Err(); err != nil { ... }
type Iter struct {
	buf []byte
	off int
	cur RawEvent
	err error
}

// NewIter starts an iterator over a chunk.
func NewIter(chunk []byte) *Iter { return &Iter{buf: chunk} }

// Reset reuses the iterator for another chunk.
func (it *Iter) Reset(chunk []byte) { *it = Iter{buf: chunk} }

// Next advances to the next event; it returns false at the end or on error.
func (it *Iter) Next() bool {
	if it.err != nil || it.off >= len(it.buf) {
		return false
	}
	ev, next, err := ParseEvent(it.buf, it.off)
	if err != nil {
		it.err = err
		return false
	}
	it.cur = ev
	it.off = next
	return true
}

// Event is the current event; valid until the next call to Next.
func (it *Iter) Event() *RawEvent { return &it.cur }

// Err is the decode error that stopped the iteration, if any.
func (it *Iter) Err() error { return it.err }

// Offset is the byte offset of the next event.
func (it *Iter) Offset() int { return it.off }

// ParseEvent reads the event at off in b, in either layout.
func ParseEvent(b []byte, off int) (RawEvent, int, error) {
	var ev RawEvent
	ev.Offset = off
	n, p, err := arrayHeader(b, off)
	if err != nil {
		return ev, 0, err
	}
	if n != 2 {
		return ev, 0, errAt(off, "event must be a 2-element array, has %d elements", n)
	}
	ev.Meta = emptyMap
	if p < len(b) && (b[p]&0xf0 == 0x90 || b[p] == 0xdc || b[p] == 0xdd) {
		// v2: [[TIME, META], BODY]
		hn, hp, err := arrayHeader(b, p)
		if err != nil {
			return ev, 0, err
		}
		if hn != 2 {
			return ev, 0, errAt(p, "event header must be [TIME, METADATA], has %d elements", hn)
		}
		if ev.Time, p, err = parseTime(b, hp); err != nil {
			return ev, 0, err
		}
		if err := expectMap(b, p, "metadata"); err != nil {
			return ev, 0, err
		}
		end, err := Skip(b, p)
		if err != nil {
			return ev, 0, err
		}
		ev.Meta = b[p:end:end]
		p = end
	} else if ev.Time, p, err = parseTime(b, p); err != nil {
		return ev, 0, err
	}
	if err := expectMap(b, p, "body"); err != nil {
		return ev, 0, err
	}
	end, err := Skip(b, p)
	if err != nil {
		return ev, 0, err
	}
	ev.Body = b[p:end:end]
	ev.Raw = b[off:end:end]
	return ev, end, nil
}

// expectMap checks that a map starts at off, keeping truncation errors as they are.
func expectMap(b []byte, off int, what string) error {
	if err := need(b, off, 1); err != nil {
		return err
	}
	if c := b[off]; !(c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf) {
		return errAt(off, "event %s must be a map, found %s", what, TypeName(c))
	}
	return nil
}

// parseTime reads a timestamp: EventTime ext 0 (any ext encoding with 8
// bytes of payload), a non-negative integer or a float. Every accepted form
// must fit an EventTime (0 <= seconds <= 2^32-1, nanoseconds < 1e9) so that a
// decoded event re-encodes to the same value. Seconds 0xFFFFFFFF and
// 0xFFFFFFFE are the group markers in every form: Fluent Bit classifies
// records by (int32_t) tv_sec, so an integer 4294967295 is a group start too.
func parseTime(b []byte, off int) (Time, int, error) {
	if err := need(b, off, 1); err != nil {
		return Time{}, 0, err
	}
	c := b[off]
	switch {
	case c == 0xc7 || c == 0xc8 || c == 0xc9 || (c >= 0xd4 && c <= 0xd8):
		typ, data, next, err := extAt(b, off)
		if err != nil {
			return Time{}, 0, err
		}
		if typ != 0 || len(data) != 8 {
			return Time{}, 0, errAt(off, "timestamp ext must be type 0 with 8 bytes, is type %d with %d", typ, len(data))
		}
		t, err := eventTime(binary.BigEndian.Uint32(data), binary.BigEndian.Uint32(data[4:]), off)
		return t, next, err
	case c == 0xca || c == 0xcb:
		v, next, err := Value(b, off)
		if err != nil {
			return Time{}, 0, err
		}
		var f float64
		switch v := v.(type) {
		case float32:
			f = float64(v)
		case float64:
			f = v
		}
		if !(f >= 0) || f >= math.MaxUint32+1 {
			return Time{}, 0, errAt(off, "timestamp %v out of range", f)
		}
		sec := math.Floor(f)
		nsec := uint32((f - sec) * 1e9)
		if nsec >= 1e9 { // cannot happen for doubles below 2^32, kept as a guard
			nsec = 1e9 - 1
		}
		t, err := eventTime(uint32(sec), nsec, off)
		return t, next, err
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		v, next, err := Value(b, off)
		if err != nil {
			return Time{}, 0, err
		}
		switch v := v.(type) {
		case int64:
			if v < 0 {
				return Time{}, 0, errAt(off, "negative timestamp %d", v)
			}
			if v > math.MaxUint32 {
				return Time{}, 0, errAt(off, "timestamp %d out of range", v)
			}
			t, err := eventTime(uint32(v), 0, off)
			return t, next, err
		case uint64:
			return Time{}, 0, errAt(off, "timestamp %d out of range", v)
		}
	}
	return Time{}, 0, errAt(off, "timestamp must be EventTime, integer or float, found %s", TypeName(c))
}

// eventTime validates EventTime parts and maps the group marker seconds.
func eventTime(sec, nsec uint32, off int) (Time, error) {
	t := Time{Sec: int64(sec), Nsec: nsec}
	switch sec {
	case 0xffffffff:
		t.Sec = GroupStartSec
	case 0xfffffffe:
		t.Sec = GroupEndSec
	}
	if t.Sec < 0 && nsec != 0 {
		return Time{}, errAt(off, "group marker with non-zero nanoseconds %d", nsec)
	}
	if nsec >= 1e9 {
		return Time{}, errAt(off, "timestamp nanoseconds %d out of range", nsec)
	}
	return t, nil
}

// Count returns the number of events in a chunk, or the first decode error.
func Count(chunk []byte) (int, error) {
	it := NewIter(chunk)
	n := 0
	for it.Next() {
		n++
	}
	return n, it.Err()
}
