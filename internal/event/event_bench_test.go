package event

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func benchEventBytes() []byte {
	ev := typicalEvent()
	return ev.AppendMsgpack(nil)
}

// BenchmarkDecodeEvent: ParseEvent + Decode of a typical 5-field record,
// with msgpack/v5 decoding the same body into map[string]any for reference.
func BenchmarkDecodeEvent(b *testing.B) {
	raw := benchEventBytes()
	b.Run("floe", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			re, _, err := ParseEvent(raw, 0)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := re.Decode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	re, _, err := ParseEvent(raw, 0)
	if err != nil {
		b.Fatal(err)
	}
	body := re.Body
	b.Run("msgpack-v5-body-map", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := msgpack.Unmarshal(body, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floe-body-only", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Value(body, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIterChunk walks a 1,000-event chunk without decoding values.
func BenchmarkIterChunk(b *testing.B) {
	const events = 1000
	one := benchEventBytes()
	chunk := make([]byte, 0, events*len(one))
	for range events {
		chunk = append(chunk, one...)
	}
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	var it Iter
	for b.Loop() {
		it.Reset(chunk)
		n := 0
		for it.Next() {
			n++
		}
		if it.Err() != nil || n != events {
			b.Fatalf("%d events, %v", n, it.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}

// BenchmarkEncodeEvent encodes a decoded record into a reused buffer.
func BenchmarkEncodeEvent(b *testing.B) {
	ev := typicalEvent()
	buf := ev.AppendMsgpack(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendMsgpack(buf[:0])
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	body := typicalEvent().Body
	for _, o := range []struct {
		name string
		o    JSONOptions
	}{{"escape_unicode", DefaultJSON}, {"raw_utf8", JSONOptions{}}} {
		b.Run(o.name, func(b *testing.B) {
			buf := AppendJSON(nil, body, o.o)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendJSON(buf[:0], body, o.o)
			}
		})
	}
}

func BenchmarkFromJSON(b *testing.B) {
	line := AppendJSON(nil, typicalEvent().Body, DefaultJSON)
	for _, tc := range []struct {
		name string
		line []byte
	}{
		{"AppendFromJSON", line},
		// The whole-pipeline bench's lines: short strings, an integer, a decimal.
		{"AppendFromJSON/bench_line", []byte(`{"seq":12345,"level":"info","service":"checkout","latency_ms":123.4,"message":"GET /api/v1/orders/12345 200"}`)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.line)))
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				var err error
				if out, err = AppendFromJSON(out[:0], tc.line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("MapFromJSON", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := MapFromJSON(line); err != nil {
				b.Fatal(err)
			}
		}
	})
}
