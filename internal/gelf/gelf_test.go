package gelf

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/floe-io/floe/internal/event"
)

func kv(pairs ...any) event.Map {
	var m event.Map
	for i := 0; i < len(pairs); i += 2 {
		m = append(m, event.KV{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}

var t0 = event.Time{Sec: 1700000000, Nsec: 5_123_456}

func TestAppendRecord(t *testing.T) {
	m := kv("short_message", "disk full", "host", "db1", "level", int64(3), "full_message", "trace\nhere",
		"user", kv("id", int64(7), "name", "ann"), "_id", "x", "id", "y", "tags", []any{"a", int64(1)}, "n", 1.5, "n", 2.5)
	got, err := AppendRecord(nil, t0, m.AppendMsgpack(nil), DefaultKeys, event.DefaultJSON)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	checks := map[string]any{"version": "1.1", "short_message": "disk full", "full_message": "trace\nhere", "host": "db1",
		"level": 3.0, "timestamp": 1700000000.005, "_user_id": 7.0, "_user_name": "ann", "_tags": `["a",1]`, "_n": 2.5}
	for k, v := range checks {
		if doc[k] != v {
			t.Errorf("%s = %#v, want %#v\n%s", k, doc[k], v, got)
		}
	}
	if _, ok := doc["_id"]; ok {
		t.Errorf("reserved field _id sent: %s", got)
	}
}

func TestCustomKeysAndTimestamp(t *testing.T) {
	k := Keys{ShortMessage: "msg", Host: "hostname", Level: "sev", Timestamp: "ts", FullMessage: "stack"}
	m := kv("msg", "hi", "hostname", "h", "sev", "4", "ts", 1700000001.25, "short_message", "other")
	got, err := AppendMap(nil, t0, m, k, event.DefaultJSON)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["short_message"] != "hi" || doc["host"] != "h" || doc["level"] != 4.0 || doc["timestamp"] != 1700000001.25 || doc["_short_message"] != "other" {
		t.Errorf("got %s", got)
	}
}

func TestNoShortMessage(t *testing.T) {
	_, err := AppendMap(nil, t0, kv("message", "x"), DefaultKeys, event.DefaultJSON)
	if !errors.Is(err, ErrNoShortMessage) {
		t.Fatalf("err = %v, want ErrNoShortMessage", err)
	}
}

func FuzzAppendRecord(f *testing.F) {
	f.Add(kv("short_message", "a", "x", kv("y", int64(1))).AppendMsgpack(nil))
	f.Add([]byte{0x81, 0xa1, 'a', 0xc1})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := AppendRecord(nil, t0, b, DefaultKeys, event.JSONOptions{NaNToNull: true})
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON %q from %x", out, b)
		}
	})
}
