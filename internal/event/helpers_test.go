package event

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// hx decodes hex with optional spaces, for hand-written MessagePack.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// valueEqual compares decoded values: floats by bits (so NaN equals
// itself), byte slices by content, Maps in order.
func valueEqual(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case float32:
		b, ok := b.(float32)
		return ok && math.Float32bits(a) == math.Float32bits(b)
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	case Ext:
		b, ok := b.(Ext)
		return ok && a.Type == b.Type && bytes.Equal(a.Data, b.Data)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !valueEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case Map:
		b, ok := b.(Map)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].Key != b[i].Key || !valueEqual(a[i].Value, b[i].Value) {
				return false
			}
		}
		return true
	case nil:
		return b == nil
	}
	return a == b
}

func eventEqual(a, b Event) bool {
	return a.Time == b.Time && valueEqual(a.Meta, b.Meta) && valueEqual(a.Body, b.Body)
}

// oracleDecode decodes one value with msgpack/v5, an independent
// implementation, into the types Value returns (keeping map order).
func oracleDecode(d *msgpack.Decoder) (any, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		m := make(Map, n)
		for i := range m {
			k, err := oracleDecode(d)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("oracle: non-string key %T", k)
			}
			v, err := oracleDecode(d)
			if err != nil {
				return nil, err
			}
			m[i] = KV{ks, v}
		}
		return m, nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = oracleDecode(d); err != nil {
				return nil, err
			}
		}
		return arr, nil
	case msgpcode.IsExt(c):
		typ, n, err := d.DecodeExtHeader()
		if err != nil {
			return nil, err
		}
		data := make([]byte, n)
		if err := d.ReadFull(data); err != nil {
			return nil, err
		}
		return Ext{Type: typ, Data: data}, nil
	}
	v, err := d.DecodeInterface()
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case int8:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case uint8:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint64:
		if v > math.MaxInt64 {
			return v, nil
		}
		return int64(v), nil
	}
	return v, nil
}

func oracleDecodeBytes(b []byte) (any, error) {
	return oracleDecode(msgpack.NewDecoder(bytes.NewReader(b)))
}

// decodeErr asserts err is a *DecodeError and returns its offset.
func decodeErrOffset(t *testing.T, err error) int {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	return de.Offset
}

func jsonErrOffset(t *testing.T, err error) int {
	t.Helper()
	var je *JSONError
	if !errors.As(err, &je) {
		t.Fatalf("error %v (%T) is not a *JSONError", err, err)
	}
	return je.Offset
}

// within reports whether sub's bytes lie inside whole's backing array.
func within(whole, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	w := uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return s >= w && s+uintptr(len(sub)) <= w+uintptr(len(whole))
}

// typicalEvent is a 5-field record like tail/forward inputs produce.
func typicalEvent() Event {
	return Event{
		Time: Time{Sec: 1700000000, Nsec: 123456789},
		Meta: Map{},
		Body: Map{
			{"log", "2024-01-01T00:00:00Z INFO request served in 12ms path=/api/v1/items status=200"},
			{"stream", "stdout"},
			{"level", "info"},
			{"status", int64(200)},
			{"duration", 0.0123},
		},
	}
}
