// Package wasmsdk writes Floe batch-ABI WASM filters in standard Go
// (GOOS=wasip1 GOARCH=wasm, no TinyGo): the guest gets a whole chunk in one
// call, and a Handler sees its records one by one and emits 0..N events per
// record, to the input's tag or to another (Floe routes each tag on its
// own). The ABI itself is described in docs/wasm-abi.md.
//
// A filter is a main package that registers its handler in init:
//
//	package main
//
//	import "github.com/floe-io/floe/pkg/wasmsdk"
//
//	func init() {
//		wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
//			ev.Set("seen", true)
//			out.Emit(ev)
//			return nil
//		})
//	}
//
//	func main() {}
//
// and is built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm .
//
// The package exports floe_alloc and floe_filter_batch for the host; on other
// platforms ProcessChunk runs a handler on a chunk, for unit tests.
package wasmsdk

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/floe-io/floe/internal/event"
)

// Time is an event timestamp (seconds and nanoseconds).
type Time = event.Time

// Map is a MessagePack map that keeps its key order: a record's body or
// metadata. Values are nil, bool, int64, uint64, float32, float64, string,
// []byte, []any, Map or event extension values.
type Map = event.Map

// KV is one key/value pair of a Map.
type KV = event.KV

// Event is one record of the chunk. The Event a Handler receives is reused
// for the next record: Clone it to keep it past the call.
type Event struct {
	t        Time   // the timestamp (SetTime changes it)
	off      int    // offset of raw in the input chunk
	idx      int    // v2: index of the event in the input chunk; -1 when not v2 or changed
	raw      []byte // the record's encoding while unchanged
	metaRaw  []byte
	bodyRaw  []byte
	meta     Map
	body     Map
	metaDec  bool // meta holds the decoded (maybe changed) metadata
	bodyDec  bool
	metaSet  bool // metadata changed
	bodySet  bool // body changed
	extra    []KV // pairs Add appended to a body not decoded
	decodeEr error
	dirty    bool // metadata or body changed, pairs added, or a decode error: not the input record any more
	touched  bool // more than the raw fields set: reset clears all
}

// NewEvent makes an event from a body (nil: empty) with empty metadata.
func NewEvent(t Time, body Map) *Event {
	return &Event{t: t, idx: -1, body: body, bodyDec: true, bodySet: true, meta: Map{}, metaDec: true, metaSet: true, dirty: true, touched: true}
}

func (e *Event) reset(r *event.RawEvent) {
	// Clearing the whole struct for every record is a measurable share of
	// a passthrough: only do it after a record that was looked into.
	if e.touched {
		e.clear()
	}
	e.t, e.off, e.idx, e.raw, e.metaRaw, e.bodyRaw = r.Time, r.Offset, -1, r.Raw, r.Meta, r.Body
}

// clear empties e for the next record, keeping the storage of Add's pairs
// (encoded by then): an allocation per record otherwise.
func (e *Event) clear() {
	ex := e.extra[:0]
	clear(ex[:cap(ex)]) // drop references to the last values
	*e = Event{extra: ex}
}

// Time is the event's timestamp.
func (e *Event) Time() Time { return e.t }

// SetTime changes the event's timestamp.
func (e *Event) SetTime(t Time) {
	if t != e.t {
		e.t, e.touched, e.dirty, e.idx = t, true, true, -1
	}
}

// unchanged reports whether e is still the input record it was given as.
func (e *Event) unchanged() bool {
	return e.raw != nil && !e.dirty
}

func decodeMap(b []byte) (Map, error) {
	if len(b) == 0 {
		return Map{}, nil
	}
	v, _, err := event.Value(b, 0)
	if err != nil {
		return nil, err
	}
	m, ok := v.(Map)
	if !ok {
		return nil, errors.New("not a map")
	}
	return m, nil
}

// Body is the decoded body. Changing the returned Map changes the event
// only once given back with SetBody; Set and Delete do both.
func (e *Event) Body() Map {
	e.touched = true
	if !e.bodyDec {
		m, err := decodeMap(e.bodyRaw)
		if err != nil {
			e.decodeEr, e.dirty, e.idx = fmt.Errorf("record body: %w", err), true, -1
			m = Map{}
		}
		e.body, e.bodyDec = m, true
		if len(e.extra) > 0 {
			e.body = append(e.body, e.extra...)
			e.extra, e.bodySet = nil, true
		}
	}
	return e.body
}

// Add appends key to the body without looking for it first: the cheapest
// way to add a field, as the body is not decoded (a key already present is
// then there twice).
func (e *Event) Add(key string, v any) {
	e.touched, e.dirty, e.idx = true, true, -1
	if e.bodyDec {
		e.body = append(e.body, KV{Key: key, Value: v})
		e.bodySet = true
		return
	}
	e.extra = append(e.extra, KV{Key: key, Value: v})
}

// SetBody replaces the body.
func (e *Event) SetBody(m Map) {
	if m == nil {
		m = Map{}
	}
	e.body, e.bodyDec, e.bodySet, e.touched, e.dirty, e.idx = m, true, true, true, true, -1
}

// Get returns the body's value for key. On a body not decoded yet, only
// that value is decoded (the others are skipped).
func (e *Event) Get(key string) (any, bool) {
	if !e.bodyDec {
		v, ok, err := rawGet(e.bodyRaw, key)
		if err == nil {
			if !ok {
				return Map(e.extra).Get(key)
			}
			return v, true
		}
	}
	return e.Body().Get(key)
}

// GetString returns the body's value for key when it is a string (or binary).
func (e *Event) GetString(key string) (string, bool) {
	v, ok := e.Get(key)
	switch s := v.(type) {
	case string:
		return s, ok
	case []byte:
		return string(s), ok
	}
	return "", false
}

// Set sets key in the body, in place when present, else at the end.
func (e *Event) Set(key string, v any) {
	m := e.Body()
	m.Set(key, v)
	e.SetBody(m)
}

// Delete removes key from the body and reports whether it was there.
func (e *Event) Delete(key string) bool {
	m := e.Body()
	ok := m.Delete(key)
	if ok {
		e.SetBody(m)
	}
	return ok
}

// Meta is the decoded metadata (Fluent Bit's v2 event metadata). As with
// Body, changes count once given back with SetMeta; SetMetaKey does both.
func (e *Event) Meta() Map {
	e.touched = true
	if !e.metaDec {
		m, err := decodeMap(e.metaRaw)
		if err != nil {
			e.decodeEr, e.dirty, e.idx = fmt.Errorf("record metadata: %w", err), true, -1
			m = Map{}
		}
		e.meta, e.metaDec = m, true
	}
	return e.meta
}

// SetMeta replaces the metadata.
func (e *Event) SetMeta(m Map) {
	if m == nil {
		m = Map{}
	}
	e.meta, e.metaDec, e.metaSet, e.touched, e.dirty, e.idx = m, true, true, true, true, -1
}

// GetMeta returns the metadata's value for key (decoding only that value
// when the metadata was not decoded yet).
func (e *Event) GetMeta(key string) (any, bool) {
	if !e.metaDec {
		if v, ok, err := rawGet(e.metaRaw, key); err == nil {
			return v, ok
		}
	}
	return e.Meta().Get(key)
}

// SetMetaKey sets key in the metadata.
func (e *Event) SetMetaKey(key string, v any) {
	m := e.Meta()
	m.Set(key, v)
	e.SetMeta(m)
}

// Clone is a deep copy of the event that stays valid after the Handler returns.
func (e *Event) Clone() *Event {
	c := &Event{t: e.t, idx: -1}
	c.SetMeta(e.Meta().Clone())
	c.SetBody(e.Body().Clone())
	return c
}

// appendTo encodes the event in Floe's v2 layout [[time, meta], body],
// copying the original bytes when nothing changed.
func (e *Event) appendTo(b []byte) []byte {
	if e.unchanged() {
		return append(b, e.raw...)
	}
	b = append(b, 0x92, 0x92)
	b = e.t.AppendMsgpack(b)
	switch {
	case e.metaSet:
		b = e.meta.AppendMsgpack(b)
	case len(e.metaRaw) > 0:
		b = append(b, e.metaRaw...)
	default:
		b = append(b, 0x80)
	}
	switch {
	case e.bodySet:
		return e.body.AppendMsgpack(b)
	case len(e.extra) > 0:
		n, hdr, ok := mapHeader(e.bodyRaw)
		if !ok {
			return e.Body().AppendMsgpack(b)
		}
		b = event.AppendMapHeader(b, n+len(e.extra))
		b = append(b, e.bodyRaw[hdr:]...)
		for _, kv := range e.extra {
			b = event.AppendString(b, kv.Key)
			b = event.AppendValue(b, kv.Value)
		}
		return b
	case len(e.bodyRaw) > 0:
		return append(b, e.bodyRaw...)
	}
	return append(b, 0x80)
}

// mapHeader reads a MessagePack map header: the pair count and its size.
func mapHeader(b []byte) (n, size int, ok bool) {
	switch {
	case len(b) == 0:
		return 0, 0, false
	case b[0]&0xf0 == 0x80:
		return int(b[0] & 0x0f), 1, true
	case b[0] == 0xde && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), 3, true
	case b[0] == 0xdf && len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:])), 5, true
	}
	return 0, 0, false
}

// ParseJSON decodes one JSON value into the SDK's value types (objects
// become Map with their key order, integers int64, other numbers float64),
// as Fluent Bit's JSON parser does.
func ParseJSON(text string) (any, error) {
	b, err := event.AppendFromJSON(nil, []byte(text))
	if err != nil {
		return nil, err
	}
	v, _, err := event.Value(b, 0)
	return v, err
}

// Output collects what a chunk emits, grouped in frames by tag.
type Output struct {
	tag   string // the input chunk's tag
	buf   []byte
	open  bool
	cur   string // tag of the open frame
	lenAt int    // offset of the open frame's data length
	err   error
	// Untouched records emitted in input order to the open frame's tag are
	// copied as one run of the input chunk, data[runStart:runEnd], when the
	// run ends: a passthrough is one copy, not one per record.
	data             []byte
	runStart, runEnd int
	// v2 (host index): unchanged input events are emitted by reference, as
	// 'R' frames of runs of consecutive events with one tag.
	indexed          bool
	refTag           string
	refFirst, refEnd int
	// next is the index of the event that would extend the open run of
	// references when emitted with the input's tag (-2: no such run).
	next int
}

// Tag is the input chunk's tag.
func (o *Output) Tag() string { return o.tag }

// Emit emits ev with the input's tag. An event may be emitted several
// times (changed in between, to split a record).
func (o *Output) Emit(ev *Event) {
	// Fast path, small enough to be inlined into the handler (under
	// WebAssembly a call costs more than this test): the next input
	// event, unchanged (a changed event has idx -1), extends the open run
	// of references; refEnd catches up in emitRef and flushRef.
	if ev.idx != o.next {
		o.emitInputTag(ev)
		return
	}
	o.next++
}

func (o *Output) emitInputTag(ev *Event) { o.EmitTag(o.tag, ev) }

// EmitTag emits ev with another tag: the host puts it in a chunk of that
// tag, routed by its own Match rules.
func (o *Output) EmitTag(tag string, ev *Event) {
	if ev.decodeEr != nil && o.err == nil {
		o.err = ev.decodeEr
	}
	if o.indexed && ev.idx >= 0 && ev.unchanged() {
		o.emitRef(tag, ev.idx)
		return
	}
	if !o.indexed && ev.unchanged() && o.open && o.cur == tag {
		if o.runEnd == ev.off && o.runEnd > o.runStart {
			o.runEnd += len(ev.raw)
			return
		}
		o.flushRun()
		o.runStart, o.runEnd = ev.off, ev.off+len(ev.raw)
		return
	}
	o.flushRef()
	o.frame(tag)
	o.flushRun()
	o.buf = ev.appendTo(o.buf)
}

func (o *Output) flushRun() {
	if o.runEnd > o.runStart {
		o.buf = append(o.buf, o.data[o.runStart:o.runEnd]...)
	}
	o.runStart, o.runEnd = 0, 0
}

// emitRef emits input event i with tag by reference.
func (o *Output) emitRef(tag string, i int) {
	if o.next >= 0 {
		o.refEnd = o.next
	}
	if o.refEnd == i && o.refEnd > o.refFirst && o.refTag == tag {
		o.refEnd++
		if o.next >= 0 {
			o.next++
		}
		return
	}
	o.flushRef()
	o.refTag, o.refFirst, o.refEnd = tag, i, i+1
	if tag == o.tag {
		o.next = i + 1
	}
}

// flushRef writes the pending run of references as an 'R' frame.
func (o *Output) flushRef() {
	if o.next >= 0 {
		o.refEnd = o.next
	}
	if o.refEnd <= o.refFirst {
		return
	}
	o.close()
	o.buf = append(o.buf, 'R')
	o.buf = binary.LittleEndian.AppendUint32(o.buf, uint32(len(o.refTag)))
	o.buf = append(o.buf, o.refTag...)
	o.buf = binary.LittleEndian.AppendUint32(o.buf, uint32(o.refFirst))
	o.buf = binary.LittleEndian.AppendUint32(o.buf, uint32(o.refEnd-o.refFirst))
	o.refFirst, o.refEnd, o.next = 0, 0, -2
}

func (o *Output) frame(tag string) {
	if o.open && o.cur == tag {
		return
	}
	o.close()
	o.buf = append(o.buf, 'E')
	o.buf = binary.LittleEndian.AppendUint32(o.buf, uint32(len(tag)))
	o.buf = append(o.buf, tag...)
	o.lenAt = len(o.buf)
	o.buf = append(o.buf, 0, 0, 0, 0)
	o.open, o.cur = true, tag
}

func (o *Output) close() {
	if o.open {
		o.flushRun()
		binary.LittleEndian.PutUint32(o.buf[o.lenAt:], uint32(len(o.buf)-o.lenAt-4))
		o.open = false
	}
}

// Handler is called for every record of a chunk, in order. It emits the
// record (changed or not), several events, or nothing (a drop). An error
// fails the whole chunk: the filter's on_error decides its fate.
type Handler func(tag string, ev *Event, out *Output) error

var (
	handler Handler
	scratch Output
	cur     Event
)

// Handle registers the filter's handler; call it from init.
func Handle(h Handler) { handler = h }

// Run runs the registered handler on a chunk, as floe_filter_batch does;
// a filter's native tests can call it (see ProcessChunk).
func Run(tag string, data []byte) []byte { return ProcessChunk(handler, tag, data) }

// ProcessChunk runs h on a chunk (tag and concatenated events) and returns
// the output frames as the guest hands them to the host. Group markers pass
// through with the input's tag. The result is valid until the next call.
func ProcessChunk(h Handler, tag string, data []byte) []byte {
	o := &scratch
	*o = Output{tag: tag, buf: o.buf[:0], data: data, next: -2}
	if h == nil {
		return errorFrame(o.buf, "wasmsdk: no handler registered (call wasmsdk.Handle in init)")
	}
	var ev event.RawEvent
	r := &ev
	for off := 0; off < len(data); {
		next, err := nextEvent(data, off, r)
		if err != nil {
			return errorFrame(o.buf[:0], "wasmsdk: input chunk: "+err.Error())
		}
		off = next
		if r.Kind() != event.KindRecord {
			o.frame(tag)
			o.flushRun()
			o.buf = append(o.buf, r.Raw...)
			continue
		}
		cur.reset(r)
		if err := h(tag, &cur, o); err != nil {
			return errorFrame(o.buf[:0], err.Error())
		}
		if o.err != nil {
			return errorFrame(o.buf[:0], o.err.Error())
		}
	}
	o.close()
	scratch.buf = o.buf
	return o.buf
}

// indexEntry is one event of the host's v2 index (docs/wasm-abi.md), laid
// out as the host writes it (WebAssembly is little-endian).
type indexEntry struct {
	Off, Len         uint32
	MetaOff, MetaLen uint32
	BodyOff, BodyLen uint32
	Sec              int64
	Nsec             uint32
	Kind             uint32 // 0 record, 1 group start, 2 group end
}

// processIndexed runs h on a chunk the host has indexed: no scan of the
// events, and unchanged events go back as references to the input.
func processIndexed(h Handler, tag string, data []byte, idx []indexEntry) []byte {
	o := &scratch
	*o = Output{tag: tag, buf: o.buf[:0], data: data, indexed: true, next: -2}
	if h == nil {
		return errorFrame(o.buf, "wasmsdk: no handler registered (call wasmsdk.Handle in init)")
	}
	for i := range idx {
		x := &idx[i]
		if x.Kind != 0 {
			o.emitRef(tag, i) // group marker
			continue
		}
		if n := uint64(len(data)); uint64(x.Off)+uint64(x.Len) > n || uint64(x.MetaOff)+uint64(x.MetaLen) > n || uint64(x.BodyOff)+uint64(x.BodyLen) > n {
			return errorFrame(o.buf[:0], fmt.Sprintf("wasmsdk: index entry %d outside the chunk", i))
		}
		// resetIndexed, by hand: a call per record shows under WebAssembly.
		e := &cur
		if e.touched {
			e.clear()
		}
		e.t, e.off, e.idx = Time{Sec: x.Sec, Nsec: x.Nsec}, int(x.Off), i
		e.raw = data[x.Off : x.Off+x.Len]
		e.metaRaw = data[x.MetaOff : x.MetaOff+x.MetaLen]
		e.bodyRaw = data[x.BodyOff : x.BodyOff+x.BodyLen]
		if err := h(tag, e, o); err != nil {
			return errorFrame(o.buf[:0], err.Error())
		}
		if o.err != nil {
			return errorFrame(o.buf[:0], o.err.Error())
		}
	}
	o.flushRef()
	o.close()
	scratch.buf = o.buf
	return o.buf
}

func errorFrame(b []byte, msg string) []byte {
	b = append(b, 'X')
	b = binary.LittleEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}
