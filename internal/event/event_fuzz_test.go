package event

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// seedChunks are real events in every layout and time form.
func seedChunks(t testing.TB) [][]byte {
	typ := typicalEvent()
	all := Event{Time: Time{Sec: 1700000000, Nsec: 1}, Meta: Map{{"m", int64(1)}}, Body: allKindsUpTo(40)}
	gs := Event{Time: Time{Sec: GroupStartSec}, Meta: Map{{"schema", "otlp"}}, Body: Map{{"resource", Map{{"attributes", Map{}}}}, {"scope", Map{}}}}
	ge := Event{Time: Time{Sec: GroupEndSec}}
	rec := Event{Time: Time{Sec: 5}, Body: Map{{"k", "v"}, {"k", []any{1.5, nil}}}}
	mixed := cat(
		gs.AppendMsgpack(nil),
		typ.AppendMsgpack(nil),
		hx(t, "92 ce 6553f100 81 a1 61 01"),             // v1, int time
		hx(t, "92 cb 41d954fc40200000 81 a1 62 02"),     // v1, float time
		hx(t, "92 92 c7 08 00 6553f100 00000001 80 80"), // v2, ext8 time
		ge.AppendMsgpack(nil),
	)
	return [][]byte{
		typ.AppendMsgpack(nil),
		all.AppendMsgpack(nil),
		rec.AppendMsgpack(nil),
		mixed,
		mixed[:len(mixed)-3],
		{},
	}
}

// FuzzDecodeChunk: iterating arbitrary bytes never panics; every event that
// parses decodes, re-encodes and decodes again to the same event.
func FuzzDecodeChunk(f *testing.F) {
	for _, s := range seedChunks(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		it := NewIter(data)
		prev := 0
		for it.Next() {
			raw := it.Event()
			if raw.Offset != prev || it.Offset() != raw.Offset+len(raw.Raw) {
				t.Fatalf("offsets: event at %d (len %d), previous end %d, iterator at %d", raw.Offset, len(raw.Raw), prev, it.Offset())
			}
			prev = it.Offset()
			ev, err := raw.Decode()
			if err != nil {
				t.Fatalf("event at %d parsed but does not decode: %v", raw.Offset, err)
			}
			if ev.Kind() != raw.Kind() || ev.Time.Nsec >= 1e9 || ev.Time.Sec > 0xffffffff {
				t.Fatalf("bad time %+v / kind %v", ev.Time, raw.Kind())
			}
			enc := ev.AppendMsgpack(nil)
			raw2, next, err := ParseEvent(enc, 0)
			if err != nil || next != len(enc) {
				t.Fatalf("re-encoded event does not parse: %v (next %d of %d)", err, next, len(enc))
			}
			ev2, err := raw2.Decode()
			if err != nil {
				t.Fatalf("re-encoded event does not decode: %v", err)
			}
			if !eventEqual(ev, ev2) {
				t.Fatalf("round trip changed the event:\n%#v\n%#v", ev, ev2)
			}
			_ = AppendJSON(nil, ev.Body, DefaultJSON)
			_ = AppendJSON(nil, ev.Meta, JSONOptions{NaNToNull: true})
		}
		if err := it.Err(); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError: %v", err, err)
			}
			if de.Offset < it.Offset() || de.Offset > len(data) {
				t.Fatalf("error offset %d outside [%d, %d]: %v", de.Offset, it.Offset(), len(data), err)
			}
		} else if it.Offset() != len(data) {
			t.Fatalf("iteration stopped at %d of %d without an error", it.Offset(), len(data))
		}
	})
}

// FuzzValue: Value and Skip agree on validity and on where the value ends;
// a decoded value re-encodes to bytes that decode to the same value.
func FuzzValue(f *testing.F) {
	for _, s := range seedChunks(f) {
		f.Add(s)
	}
	for _, v := range []any{allKindsUpTo(40), []any{int64(-1), uint64(1 << 63), float32(1.5)}, Ext{Type: -1, Data: []byte("xyz")}} {
		f.Add(AppendValue(nil, v))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, end, err := Value(data, 0)
		send, serr := Skip(data, 0)
		if (err == nil) != (serr == nil) {
			t.Fatalf("Value error %v, Skip error %v", err, serr)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(data) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if end != send || end <= 0 || end > len(data) {
			t.Fatalf("Value ends at %d, Skip at %d (len %d)", end, send, len(data))
		}
		enc := AppendValue(nil, v)
		v2, end2, err := Value(enc, 0)
		if err != nil || end2 != len(enc) {
			t.Fatalf("re-encoded value: %v (end %d of %d)", err, end2, len(enc))
		}
		if !valueEqual(v, v2) {
			t.Fatalf("round trip changed the value:\n%#v\n%#v", v, v2)
		}
		_ = AppendJSON(nil, v, DefaultJSON)
	})
}

// jsonDepth is the container nesting depth of valid JSON text.
func jsonDepth(b []byte) int {
	depth, maxd, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			maxd = max(maxd, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return maxd
}

// FuzzFromJSON: never panics; valid JSON objects (within the nesting
// limit) always convert, to MessagePack that decodes to what encoding/json sees.
func FuzzFromJSON(f *testing.F) {
	seeds := []string{
		`{"log":"GET /index.html 200","kubernetes":{"pod":"web-1","labels":{"app":"web"}},"ts":1.5,"n":[1,-2,3.25e2]}`,
		`{"a":"\u00e9\ud83d\ude00\n\"\\\/","b":[[],{},[{}]],"c":null,"d":true,"e":false}`,
		`{"big":12345678901234567890,"neg":-9223372036854775808,"tiny":1e-300,"huge":1e400}`,
		`{"a":1,"a":2}`,
		` [1, 2.0, "x"] `,
		`{"a":}`,
		`"\ud800"`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := AppendFromJSON(nil, data)
		if err != nil {
			var je *JSONError
			if !errors.As(err, &je) || je.Offset < 0 || je.Offset > len(data) {
				t.Fatalf("bad error %v", err)
			}
			if json.Valid(data) && jsonDepth(data) <= maxDepth {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			if _, merr := MapFromJSON(data); merr == nil {
				t.Fatal("MapFromJSON accepted what AppendFromJSON rejected")
			}
			return
		}
		v, end, err := Value(out, 0)
		if err != nil || end != len(out) {
			t.Fatalf("output does not decode: %v (end %d of %d)", err, end, len(out))
		}
		if _, isMap := v.(Map); isMap {
			if _, err := MapFromJSON(data); err != nil {
				t.Fatalf("MapFromJSON: %v", err)
			}
		}
		var ref any
		if utf8.Valid(data) && json.Unmarshal(data, &ref) == nil && !sameAsStdJSONDup(v, ref) {
			t.Fatalf("differs from encoding/json:\n%#v\n%#v", v, ref)
		}
	})
}

// sameAsStdJSONDup is sameAsStdJSON with encoding/json's duplicate-key
// rule (last value wins).
func sameAsStdJSONDup(v, ref any) bool {
	switch v := v.(type) {
	case Map:
		r, ok := ref.(map[string]any)
		if !ok {
			return false
		}
		last := map[string]any{}
		for _, kv := range v {
			last[kv.Key] = kv.Value
		}
		if len(last) != len(r) {
			return false
		}
		for k, lv := range last {
			rv, ok := r[k]
			if !ok || !sameAsStdJSONDup(lv, rv) {
				return false
			}
		}
		return true
	case []any:
		r, ok := ref.([]any)
		if !ok || len(r) != len(v) {
			return false
		}
		for i := range v {
			if !sameAsStdJSONDup(v[i], r[i]) {
				return false
			}
		}
		return true
	}
	return sameAsStdJSON(v, ref)
}
