// Package gelf renders records as GELF 1.1 messages (Graylog Extended Log
// Format), the way Fluent Bit's flb_msgpack_to_gelf does:
//
//	{"version":"1.1","short_message":...,"full_message":...,"host":...,
//	 "level":N,"timestamp":SEC.MS,"_other":...,"_nested_key":...}
//
// The record keys named by Keys fill the standard fields; every other key
// becomes an additional field prefixed with "_", nested maps are flattened
// with "_" between the keys, and arrays are kept as JSON text. A record
// without its short message key is an error (GELF requires short_message).
// The timestamp is the record's timestamp key when it is a number, else the
// event time in seconds with milliseconds. "_id" is reserved by GELF and is
// renamed "__id".
package gelf

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/floe-io/floe/internal/event"
)

// Keys name the record keys of the standard fields (gelf_*_key).
type Keys struct {
	ShortMessage, FullMessage, Host, Level, Timestamp string
}

// DefaultKeys are Fluent Bit's defaults.
var DefaultKeys = Keys{ShortMessage: "short_message", FullMessage: "full_message", Host: "host",
	Level: "level", Timestamp: "timestamp"}

// ErrNoShortMessage is returned for a record without its short message.
var ErrNoShortMessage = errors.New("gelf: record has no short message")

// AppendRecord appends the GELF JSON of one record (body: a MessagePack map).
func AppendRecord(dst []byte, t event.Time, body []byte, k Keys, o event.JSONOptions) ([]byte, error) {
	v, _, err := event.Value(body, 0)
	if err != nil {
		return dst, fmt.Errorf("gelf: %w", err)
	}
	m, ok := v.(event.Map)
	if !ok {
		return dst, fmt.Errorf("gelf: record is not a map")
	}
	return AppendMap(dst, t, m, k, o)
}

// AppendMap appends the GELF JSON of a decoded record.
func AppendMap(dst []byte, t event.Time, m event.Map, k Keys, o event.JSONOptions) ([]byte, error) {
	short, ok := m.Get(k.ShortMessage)
	if !ok || short == nil {
		return dst, fmt.Errorf("%w (key %q)", ErrNoShortMessage, k.ShortMessage)
	}
	dst = append(dst, `{"version":"1.1","short_message":`...)
	dst = appendText(dst, short, o)
	if v, ok := m.Get(k.FullMessage); ok && v != nil {
		dst = append(dst, `,"full_message":`...)
		dst = appendText(dst, v, o)
	}
	if v, ok := m.Get(k.Host); ok && v != nil {
		dst = append(dst, `,"host":`...)
		dst = appendText(dst, v, o)
	}
	if v, ok := m.Get(k.Level); ok {
		if n, ok := number(v); ok && n >= 0 && n <= 7 && n == math.Trunc(n) {
			dst = append(dst, `,"level":`...)
			dst = strconv.AppendInt(dst, int64(n), 10)
		}
	}
	dst = append(dst, `,"timestamp":`...)
	if v, ok := m.Get(k.Timestamp); ok {
		if n, ok := number(v); ok {
			dst = strconv.AppendFloat(dst, n, 'f', -1, 64)
		} else {
			dst = appendTime(dst, t)
		}
	} else {
		dst = appendTime(dst, t)
	}
	std := map[string]bool{k.ShortMessage: true, k.FullMessage: true, k.Host: true, k.Level: true, k.Timestamp: true}
	last := make(map[string]int, len(m))
	for i, kv := range m {
		last[kv.Key] = i // the last of duplicate keys wins
	}
	for i, kv := range m {
		if std[kv.Key] || last[kv.Key] != i {
			continue
		}
		dst = appendField(dst, "_"+kv.Key, kv.Value, o)
	}
	return append(dst, '}'), nil
}

func appendField(dst []byte, name string, v any, o event.JSONOptions) []byte {
	if nested, ok := v.(event.Map); ok {
		for _, kv := range nested {
			dst = appendField(dst, name+"_"+kv.Key, kv.Value, o)
		}
		return dst
	}
	if name == "_id" {
		name = "__id"
	}
	dst = append(dst, ',')
	dst = event.AppendJSONString(dst, name, o)
	dst = append(dst, ':')
	switch v.(type) {
	case []any:
		// GELF fields are strings or numbers: an array travels as its JSON.
		return event.AppendJSONString(dst, string(event.AppendJSON(nil, v, o)), o)
	}
	return event.AppendJSON(dst, v, o)
}

// appendText writes a string field; non-strings become their JSON text.
func appendText(dst []byte, v any, o event.JSONOptions) []byte {
	switch x := v.(type) {
	case string:
		return event.AppendJSONString(dst, x, o)
	case []byte:
		return event.AppendJSONString(dst, string(x), o)
	}
	return event.AppendJSONString(dst, string(event.AppendJSON(nil, v, o)), o)
}

func appendTime(dst []byte, t event.Time) []byte {
	dst = strconv.AppendInt(dst, t.Sec, 10)
	ms := t.Nsec / 1e6
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}
