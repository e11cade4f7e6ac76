package event

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// allKinds is a body holding every value kind at its interesting sizes.
func allKinds() Map { return allKindsUpTo(1 << 20) }

// allKindsUpTo is allKinds without strings and ext payloads longer than limit
// (fuzz seeds must stay small for the fuzzer to mutate them quickly).
func allKindsUpTo(limit int) Map {
	str := func(n int) string { return strings.Repeat("s", n) }
	m := Map{
		{"nil", nil},
		{"true", true},
		{"false", false},
		{"zero", int64(0)},
		{"fixint max", int64(127)},
		{"uint8 min", int64(128)},
		{"uint8 max", int64(255)},
		{"uint16 min", int64(256)},
		{"uint16 max", int64(65535)},
		{"uint32 min", int64(65536)},
		{"uint32 max", int64(math.MaxUint32)},
		{"uint64 min", int64(math.MaxUint32 + 1)},
		{"int64 max", int64(math.MaxInt64)},
		{"uint64 > MaxInt64", uint64(math.MaxInt64 + 1)},
		{"uint64 max", uint64(math.MaxUint64)},
		{"negative fixint -1", int64(-1)},
		{"negative fixint -32", int64(-32)},
		{"int8 -33", int64(-33)},
		{"int8 min", int64(math.MinInt8)},
		{"int16 min+", int64(math.MinInt8 - 1)},
		{"int16 min", int64(math.MinInt16)},
		{"int32", int64(math.MinInt16 - 1)},
		{"int32 min", int64(math.MinInt32)},
		{"int64", int64(math.MinInt32 - 1)},
		{"int64 min", int64(math.MinInt64)},
		{"float32", float32(0.1)},
		{"float64", 1234.5678},
		{"NaN", math.NaN()},
		{"-Inf", math.Inf(-1)},
		{"bin empty", []byte{}},
		{"bin", []byte{0, 1, 0xff}},
		{"bin 20", bytes.Repeat([]byte{7}, 20)},
		{"array", []any{int64(1), "two", []any{3.0}, Map{{"k", "v"}}}},
		{"array16", make([]any, 16)},
		{"empty array", []any{}},
		{"nested", Map{{"a", Map{{"b", Map{{"c", []any{Map{}}}}}}}}},
		{"empty map", Map{}},
		{"", "empty key"},
		{"dup", int64(1)},
		{"dup", int64(2)}, // duplicates survive decoding in order
		{"utf8 ключ", "значение 😀"},
	}
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		if n <= limit {
			m = append(m, KV{"str " + str(n%5), str(n)})
		}
	}
	for _, n := range []int{1, 2, 4, 8, 16, 0, 3, 9, 300} {
		if n <= limit {
			m = append(m, KV{"ext", Ext{Type: int8(n % 128), Data: bytes.Repeat([]byte{byte(n)}, n)}})
		}
	}
	return m
}

func TestEventRoundTrip(t *testing.T) {
	events := []Event{
		{Time: Time{Sec: 1700000000, Nsec: 999999999}, Meta: Map{{"otlp", Map{{"trace_id", []byte{1, 2}}}}}, Body: allKinds()},
		{Time: Time{}, Meta: Map{}, Body: Map{}},
		{Time: Time{Sec: math.MaxUint32 - 2}, Meta: Map{}, Body: Map{{"late", true}}},
		{Time: Time{Sec: GroupStartSec}, Meta: Map{{"schema", "otlp"}}, Body: Map{{"resource", Map{}}}},
		{Time: Time{Sec: GroupEndSec}, Meta: Map{}, Body: Map{}},
		typicalEvent(),
	}
	var chunk []byte
	for _, ev := range events {
		one := ev.AppendMsgpack(nil)
		// msgpack/v5 must read the event as [[ext0, meta], body]
		if _, err := oracleDecodeBytes(one); err != nil {
			t.Errorf("msgpack/v5 cannot read event: %v", err)
		}
		chunk = append(chunk, one...)
	}
	it := NewIter(chunk)
	i := 0
	for it.Next() {
		got, err := it.Event().Decode()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !eventEqual(got, events[i]) {
			t.Errorf("event %d round trip:\n got %#v\nwant %#v", i, got, events[i])
		}
		if it.Event().Kind() != events[i].Kind() {
			t.Errorf("event %d: kind %v, want %v", i, it.Event().Kind(), events[i].Kind())
		}
		i++
	}
	if it.Err() != nil || i != len(events) {
		t.Fatalf("iterated %d of %d events, err %v", i, len(events), it.Err())
	}
}

func TestEventNilMapsEncodeEmpty(t *testing.T) {
	ev := Event{Time: Time{Sec: 1}}
	got := ev.AppendMsgpack(nil)
	want := hx(t, "92 92 d7 00 00000001 00000000 80 80")
	if !bytes.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
}

func TestAppendMsgpackWireForm(t *testing.T) {
	ev := Event{Time: Time{Sec: 0x01020304, Nsec: 5}, Meta: Map{}, Body: Map{{"a", int64(1)}}}
	want := hx(t, "92 92 d7 00 01020304 00000005 80 81 a1 61 01")
	if got := ev.AppendMsgpack(nil); !bytes.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
	// AppendRaw writes the same bytes from pre-encoded maps.
	if got := AppendRaw(nil, ev.Time, nil, hx(t, "81 a1 61 01")); !bytes.Equal(got, want) {
		t.Errorf("AppendRaw got % x, want % x", got, want)
	}
	// Group markers use seconds 0xFFFFFFFF / 0xFFFFFFFE.
	gs := Event{Time: Time{Sec: GroupStartSec}}
	if got := gs.AppendMsgpack(nil); !bytes.Equal(got, hx(t, "92 92 d7 00 ffffffff 00000000 80 80")) {
		t.Errorf("group start encodes as % x", got)
	}
	ge := Event{Time: Time{Sec: GroupEndSec}}
	if got := ge.AppendMsgpack(nil); !bytes.Equal(got, hx(t, "92 92 d7 00 fffffffe 00000000 80 80")) {
		t.Errorf("group end encodes as % x", got)
	}
}

func TestParseEventLayouts(t *testing.T) {
	body := "81 a1 6b a1 76" // {"k":"v"}
	wantBody := Map{{"k", "v"}}
	tests := []struct {
		name string
		in   string
		time Time
		meta Map
		kind Kind
	}{
		{"v2 fixext8", "92 92 d7 00 6553f100 075bcd15 81 a1 6d 01 " + body, Time{1700000000, 123456789}, Map{{"m", int64(1)}}, KindRecord},
		{"v2 ext8", "92 92 c7 08 00 6553f100 075bcd15 80 " + body, Time{1700000000, 123456789}, Map{}, KindRecord},
		{"v2 ext16 (non-canonical)", "92 92 c8 0008 00 6553f100 075bcd15 80 " + body, Time{1700000000, 123456789}, Map{}, KindRecord},
		{"v2 ext32 (non-canonical)", "92 92 c9 00000008 00 6553f100 075bcd15 80 " + body, Time{1700000000, 123456789}, Map{}, KindRecord},
		{"v1 fixext8", "92 d7 00 6553f100 075bcd15 " + body, Time{1700000000, 123456789}, Map{}, KindRecord},
		{"v1 ext8", "92 c7 08 00 6553f100 00000001 " + body, Time{1700000000, 1}, Map{}, KindRecord},
		{"v1 positive fixint", "92 05 " + body, Time{5, 0}, Map{}, KindRecord},
		{"v1 uint32", "92 ce 6553f100 " + body, Time{1700000000, 0}, Map{}, KindRecord},
		{"v1 uint64 small", "92 cf 000000006553f100 " + body, Time{1700000000, 0}, Map{}, KindRecord},
		{"v1 int8 positive", "92 d0 05 " + body, Time{5, 0}, Map{}, KindRecord},
		{"v1 int64 positive", "92 d3 000000006553f100 " + body, Time{1700000000, 0}, Map{}, KindRecord},
		{"v1 uint32 max is group start", "92 ce ffffffff " + body, Time{GroupStartSec, 0}, Map{}, KindGroupStart},
		{"v2 float64", "92 92 cb 41d954fc40200000 80 " + body, Time{1700000000, 500000000}, Map{}, KindRecord},
		{"v1 float64 fraction", "92 cb 3ff8000000000000 " + body, Time{1, 500000000}, Map{}, KindRecord},
		{"v1 float32", "92 ca 3fc00000 " + body, Time{1, 500000000}, Map{}, KindRecord},
		{"v1 float zero", "92 cb 0000000000000000 " + body, Time{0, 0}, Map{}, KindRecord},
		{"v1 float 2^32-1 is group start", "92 cb 41efffffffe00000 " + body, Time{GroupStartSec, 0}, Map{}, KindGroupStart},
		{"v2 group start", "92 92 d7 00 ffffffff 00000000 81 a6 736368656d61 a4 6f746c70 " + body, Time{GroupStartSec, 0}, Map{{"schema", "otlp"}}, KindGroupStart},
		{"v2 group end", "92 92 d7 00 fffffffe 00000000 80 " + body, Time{GroupEndSec, 0}, Map{}, KindGroupEnd},
		{"v2 after 2038 is a record", "92 92 d7 00 80000000 00000000 80 " + body, Time{1 << 31, 0}, Map{}, KindRecord},
		{"v2 largest record second", "92 92 d7 00 fffffffd 3b9ac9ff 80 " + body, Time{0xfffffffd, 999999999}, Map{}, KindRecord},
		{"v2 map16 body", "92 92 d7 00 00000001 00000000 de 0000 de 0001 a1 6b a1 76", Time{1, 0}, Map{}, KindRecord},
		{"array16 root", "dc 0002 92 d7 00 00000001 00000000 80 " + body, Time{1, 0}, Map{}, KindRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hx(t, tt.in)
			raw, next, err := ParseEvent(b, 0)
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if next != len(b) || !bytes.Equal(raw.Raw, b) {
				t.Errorf("next = %d, want %d", next, len(b))
			}
			if raw.Time != tt.time {
				t.Errorf("time = %+v, want %+v", raw.Time, tt.time)
			}
			if raw.Kind() != tt.kind {
				t.Errorf("kind = %v, want %v", raw.Kind(), tt.kind)
			}
			ev, err := raw.Decode()
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if ev.Kind() != tt.kind {
				t.Errorf("Event.Kind = %v, want %v", ev.Kind(), tt.kind)
			}
			if tt.name != "v2 map16 body" && !valueEqual(ev.Body, wantBody) {
				t.Errorf("body = %#v", ev.Body)
			}
			if !valueEqual(ev.Meta, tt.meta) {
				t.Errorf("meta = %#v, want %#v", ev.Meta, tt.meta)
			}
			// Re-encoding gives v2 with EventTime; decoding that gives the same event.
			re := ev.AppendMsgpack(nil)
			raw2, _, err := ParseEvent(re, 0)
			if err != nil {
				t.Fatalf("re-parse: %v", err)
			}
			ev2, err := raw2.Decode()
			if err != nil || !eventEqual(ev, ev2) {
				t.Errorf("re-encoded event differs: %#v vs %#v (%v)", ev2, ev, err)
			}
		})
	}
}

func TestParseEventErrors(t *testing.T) {
	const body = "80"
	const ts = "d7 00 00000001 00000000" // 10 bytes
	tests := []struct {
		name string
		in   string
		off  int
		msg  string
	}{
		{"not an array", "81 a1 61 01", 0, "expected array"},
		{"root with 3 elements", "93 " + ts + " 80 80", 0, "2-element array"},
		{"root with 1 element", "91 " + ts, 0, "2-element array"},
		{"header with 3 elements", "92 93 " + ts + " 80 80 80", 1, "[TIME, METADATA]"},
		{"header with 1 element", "92 91 " + ts + " 80", 1, "[TIME, METADATA]"},
		{"v1 negative fixint", "92 ff " + body, 1, "negative timestamp"},
		{"v2 negative fixint", "92 92 ff 80 " + body, 2, "negative timestamp"},
		{"v1 negative int32", "92 d2 80000000 " + body, 1, "negative timestamp"},
		{"v1 int beyond uint32", "92 cf 0000000100000000 " + body, 1, "out of range"},
		{"v1 uint64 beyond int64", "92 cf ffffffffffffffff " + body, 1, "out of range"},
		{"v1 string time", "92 a3 313233 " + body, 1, "found string"},
		{"v2 nil time", "92 92 c0 80 " + body, 2, "found nil"},
		{"v2 map time", "92 92 80 80 " + body, 2, "found map"},
		{"ext type 1", "92 d7 01 00000001 00000000 " + body, 1, "type 1"},
		{"ext type 0 size 4", "92 d6 00 00000001 " + body, 1, "with 4"},
		{"ext8 type 0 size 9", "92 c7 09 00 0000000100000000 00 " + body, 1, "with 9"},
		{"nsec = 1e9", "92 92 d7 00 00000001 3b9aca00 80 " + body, 2, "nanoseconds"},
		{"nsec max uint32", "92 d7 00 00000001 ffffffff " + body, 1, "nanoseconds"},
		{"group start with nsec", "92 92 d7 00 ffffffff 00000001 80 " + body, 2, "group marker"},
		{"group end with nsec", "92 92 d7 00 fffffffe 3b9ac9ff 80 " + body, 2, "group marker"},
		{"float NaN", "92 cb 7ff8000000000001 " + body, 1, "out of range"},
		{"float negative", "92 cb bff0000000000000 " + body, 1, "out of range"},
		{"float 2^32", "92 cb 41f0000000000000 " + body, 1, "out of range"},
		{"float +Inf", "92 cb 7ff0000000000000 " + body, 1, "out of range"},
		{"float group start with fraction", "92 cb 41effffffff00000 " + body, 1, "group marker"},
		{"v1 body not a map", "92 " + ts + " a1 78", 11, "body must be a map"},
		{"v1 body array", "92 " + ts + " 90", 11, "body must be a map"},
		{"v2 body not a map", "92 92 " + ts + " 80 c0", 13, "body must be a map"},
		{"v2 meta not a map", "92 92 " + ts + " a0 80", 12, "metadata must be a map"},
		{"v2 meta nil", "92 92 " + ts + " c0 80", 12, "metadata must be a map"},
		{"v2 meta truncated", "92 92 " + ts + " 81 a1 61", 15, "truncated"},
		{"v2 body missing", "92 92 " + ts + " 80", 13, "truncated"},
		{"v2 body truncated str", "92 92 " + ts + " 80 81 a1 61 a3 6162", 17, "truncated"},
		{"truncated time", "92 d7 00 0000", 2, "truncated"},
		{"empty", "", 0, "truncated"},
		{"reserved byte in body", "92 " + ts + " 81 a1 61 c1", 14, "invalid type byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hx(t, tt.in)
			_, _, err := ParseEvent(b, 0)
			if err == nil {
				t.Fatalf("ParseEvent(% x) succeeded", b)
			}
			if off := decodeErrOffset(t, err); off != tt.off {
				t.Errorf("offset = %d, want %d (%v)", off, tt.off, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if len(b) == 0 {
				return // an empty chunk is fine for the iterator
			}
			// The same event after a valid one: offsets are chunk offsets.
			prefix := (&Event{Time: Time{Sec: 7}, Body: Map{{"ok", true}}}).AppendMsgpack(nil)
			chunk := append(append([]byte{}, prefix...), b...)
			it := NewIter(chunk)
			n := 0
			for it.Next() {
				n++
			}
			if n != 1 || it.Err() == nil {
				t.Fatalf("iterated %d events, err %v; want 1 and an error", n, it.Err())
			}
			if off := decodeErrOffset(t, it.Err()); off != len(prefix)+tt.off {
				t.Errorf("chunk offset = %d, want %d", off, len(prefix)+tt.off)
			}
			if it.Offset() != len(prefix) {
				t.Errorf("Iter.Offset() = %d, want %d (start of the bad event)", it.Offset(), len(prefix))
			}
			if it.Next() {
				t.Error("Next after an error returned true")
			}
		})
	}
}

func TestIterMixedChunk(t *testing.T) {
	v1 := hx(t, "92 ce 6553f100 81 a1 61 01")                            // [1700000000, {"a":1}]
	v1f := hx(t, "92 cb 3ff8000000000000 81 a1 62 02")                   // [1.5, {"b":2}]
	gs := hx(t, "92 92 d7 00 ffffffff 00000000 81 a1 67 c3 81 a1 72 80") // group start
	ge := hx(t, "92 92 d7 00 fffffffe 00000000 80 80")
	rec := (&Event{Time: Time{Sec: 10, Nsec: 20}, Meta: Map{{"m", "x"}}, Body: Map{{"c", "3"}}}).AppendMsgpack(nil)
	chunk := cat(v1, gs, rec, v1f, ge, rec)
	want := []struct {
		off  int
		kind Kind
		time Time
		body Map
	}{
		{0, KindRecord, Time{1700000000, 0}, Map{{"a", int64(1)}}},
		{len(v1), KindGroupStart, Time{GroupStartSec, 0}, Map{{"r", Map{}}}},
		{len(v1) + len(gs), KindRecord, Time{10, 20}, Map{{"c", "3"}}},
		{len(v1) + len(gs) + len(rec), KindRecord, Time{1, 500000000}, Map{{"b", int64(2)}}},
		{len(v1) + len(gs) + len(rec) + len(v1f), KindGroupEnd, Time{GroupEndSec, 0}, Map{}},
		{len(v1) + len(gs) + len(rec) + len(v1f) + len(ge), KindRecord, Time{10, 20}, Map{{"c", "3"}}},
	}
	it := NewIter(chunk)
	i := 0
	for ; it.Next(); i++ {
		ev := it.Event()
		if i >= len(want) {
			t.Fatalf("extra event at %d", ev.Offset)
		}
		w := want[i]
		if ev.Offset != w.off || ev.Kind() != w.kind || ev.Time != w.time {
			t.Errorf("event %d: offset %d kind %v time %+v; want %d %v %+v", i, ev.Offset, ev.Kind(), ev.Time, w.off, w.kind, w.time)
		}
		d, err := ev.Decode()
		if err != nil || !valueEqual(d.Body, w.body) {
			t.Errorf("event %d body %#v (%v), want %#v", i, d.Body, err, w.body)
		}
	}
	if it.Err() != nil || i != len(want) {
		t.Fatalf("got %d events, err %v", i, it.Err())
	}
	if it.Offset() != len(chunk) {
		t.Errorf("final offset %d, want %d", it.Offset(), len(chunk))
	}
	if n, err := Count(chunk); n != len(want) || err != nil {
		t.Errorf("Count = %d, %v", n, err)
	}
	if n, err := Count(nil); n != 0 || err != nil {
		t.Errorf("Count(nil) = %d, %v", n, err)
	}
	// Reset reuses the iterator.
	it.Reset(v1)
	if !it.Next() || it.Next() || it.Err() != nil {
		t.Errorf("after Reset: err %v", it.Err())
	}
}

func TestIterTruncatedChunk(t *testing.T) {
	ev := typicalEvent()
	one := ev.AppendMsgpack(nil)
	full := cat(one, one, one)
	for cut := 1; cut < len(one); cut++ {
		chunk := full[:2*len(one)+cut]
		n, err := Count(chunk)
		if n != 2 || err == nil {
			t.Fatalf("cut %d: Count = %d, %v; want 2 and an error", cut, n, err)
		}
		off := decodeErrOffset(t, err)
		if off < 2*len(one) || off > len(chunk) {
			t.Errorf("cut %d: error offset %d outside the truncated event [%d, %d]", cut, off, 2*len(one), len(chunk))
		}
	}
	// An offset at the exact spot: body string cut after 3 bytes of payload.
	e := Event{Time: Time{Sec: 1}, Body: Map{{"k", "hello"}}}
	b := e.AppendMsgpack(nil)
	b = b[:len(b)-2] // "hel" of "hello" remain
	_, err := Count(b)
	// 92 92 <10> 80 81 a1 6b a5 ... → the str payload starts at 17
	if off := decodeErrOffset(t, err); off != 17 {
		t.Errorf("offset %d, want 17 (%v)", off, err)
	}
}

func TestIterDoesNotCopy(t *testing.T) {
	one := (&Event{Time: Time{Sec: 1}, Meta: Map{{"m", int64(1)}}, Body: Map{{"k", "aaaa"}}}).AppendMsgpack(nil)
	chunk := cat(one, one)
	it := NewIter(chunk)
	var raws []RawEvent
	for it.Next() {
		ev := it.Event()
		for _, part := range [][]byte{ev.Raw, ev.Meta, ev.Body} {
			if !within(chunk, part) {
				t.Fatalf("event at %d: a part does not alias the chunk", ev.Offset)
			}
		}
		if &ev.Raw[0] != &chunk[ev.Offset] {
			t.Errorf("Raw does not start at the event offset")
		}
		raws = append(raws, *ev)
	}
	// Mutating the source is visible through the RawEvent: "aaaa" → "bbbb".
	i := bytes.LastIndex(chunk, []byte("aaaa"))
	copy(chunk[i:], "bbbb")
	d, err := raws[1].Decode()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Body.Get("k"); v != "bbbb" {
		t.Errorf("body after mutating the chunk: %v", v)
	}
	// Appending to a part cannot overwrite the following bytes (capacity is capped).
	before := append([]byte{}, chunk...)
	_ = append(raws[0].Body, 0xff)
	_ = append(raws[0].Raw, 0xff)
	_ = append(raws[0].Meta, 0xff)
	if !bytes.Equal(before, chunk) {
		t.Error("appending to a RawEvent part overwrote the chunk")
	}
	// v1 events get an empty metadata map.
	v1, _, err := ParseEvent(hx(t, "92 01 80"), 0)
	if err != nil || !bytes.Equal(v1.Meta, []byte{0x80}) {
		t.Errorf("v1 meta = % x, %v", v1.Meta, err)
	}
}

// TestDecodeErrorOffsets: errors from Decode carry chunk offsets. Here the
// chunk is corrupted after ParseEvent validated it, which Decode sees
// because RawEvent aliases the chunk.
func TestDecodeErrorOffsets(t *testing.T) {
	ev := Event{Time: Time{Sec: 1}, Meta: Map{{"mk", "mv"}}, Body: Map{{"bk", "bv"}}}
	typ := typicalEvent()
	prefix := typ.AppendMsgpack(nil)
	chunk := cat(prefix, (&ev).AppendMsgpack(nil))
	// event: 92 92 <10 bytes> | meta: 81 a2 6d6b a2 6d76 | body: 81 a2 626b a2 6276
	metaAt := len(prefix) + 12
	bodyAt := metaAt + 7
	tests := []struct {
		name string
		at   int // byte to overwrite with 0xc1 (never valid)
	}{
		{"meta value", metaAt + 4},
		{"meta key", metaAt + 1},
		{"body value", bodyAt + 4},
		{"body key", bodyAt + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := append([]byte{}, chunk...)
			it := NewIter(c)
			it.Next()
			if !it.Next() {
				t.Fatal(it.Err())
			}
			raw := *it.Event()
			c[tt.at] = 0xc1
			_, err := raw.Decode()
			if err == nil {
				t.Fatal("Decode succeeded on corrupted bytes")
			}
			if off := decodeErrOffset(t, err); off != tt.at {
				t.Errorf("offset %d, want %d (%v)", off, tt.at, err)
			}
		})
	}
}

func TestTime(t *testing.T) {
	st := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	tm := FromTime(st)
	if tm != (Time{Sec: st.Unix(), Nsec: 123456789}) {
		t.Errorf("FromTime = %+v", tm)
	}
	if !tm.Std().Equal(st) {
		t.Errorf("Std = %v", tm.Std())
	}
	if tm.UnixNano() != st.UnixNano() {
		t.Errorf("UnixNano = %d", tm.UnixNano())
	}
	if f := (Time{Sec: 10, Nsec: 500000000}).Float(); f != 10.5 {
		t.Errorf("Float = %v", f)
	}
	a, b := Time{1, 5}, Time{1, 6}
	if !a.Before(b) || b.Before(a) || a.Before(a) || !(Time{0, 9}).Before(a) {
		t.Error("Before is wrong")
	}
	if n := Now(); n.Sec < 1700000000 || n.Nsec >= 1e9 {
		t.Errorf("Now = %+v", n)
	}
}

func TestMapMethods(t *testing.T) {
	m := Map{{"a", int64(1)}, {"b", int64(2)}, {"a", int64(3)}}
	if i := m.Index("a"); i != 0 {
		t.Errorf("Index(a) = %d", i)
	}
	if i := m.Index("zz"); i != -1 {
		t.Errorf("Index(zz) = %d", i)
	}
	if v, ok := m.Get("b"); !ok || v != int64(2) {
		t.Errorf("Get(b) = %v, %v", v, ok)
	}
	if _, ok := m.Get("zz"); ok {
		t.Error("Get(zz) found something")
	}
	c := m.Clone()
	c.Set("a", "x")
	c.Set("new", true)
	if !valueEqual(c, Map{{"a", "x"}, {"b", int64(2)}, {"a", int64(3)}, {"new", true}}) {
		t.Errorf("after Set: %#v", c)
	}
	if !valueEqual(m, Map{{"a", int64(1)}, {"b", int64(2)}, {"a", int64(3)}}) {
		t.Errorf("Clone shares pairs: %#v", m)
	}
	if !c.Delete("a") || !valueEqual(c, Map{{"b", int64(2)}, {"new", true}}) {
		t.Errorf("after Delete: %#v", c)
	}
	if c.Delete("a") {
		t.Error("Delete of a missing key reported true")
	}
	if Map(nil).Clone() != nil {
		t.Error("Clone(nil) != nil")
	}
	if got := (Map{{"z", int64(1)}, {"a", int64(2)}}).AppendMsgpack(nil); !bytes.Equal(got, hx(t, "82 a17a 01 a161 02")) {
		t.Errorf("AppendMsgpack = % x", got)
	}
}

// An event whose header was written before its body, with the time set
// last, reads back as the same event AppendRaw writes.
func TestSetHeaderTimeAfterBody(t *testing.T) {
	body := Map{{Key: "a", Value: int64(1)}}.AppendMsgpack(nil)
	tm := Time{Sec: 1700000123, Nsec: 456789}
	b := []byte("prefix")
	mark := len(b)
	b = AppendHeader(b, Time{}, nil)
	b = append(b, body...)
	SetHeaderTime(b[mark:], tm)
	if want := AppendRaw([]byte("prefix"), tm, nil, body); !bytes.Equal(b, want) {
		t.Fatalf("got % x\nwant % x", b, want)
	}
	ev, next, err := ParseEvent(b, mark)
	if err != nil || next != len(b) || ev.Time != tm {
		t.Fatalf("ParseEvent: %+v next %d err %v", ev, next, err)
	}
}
