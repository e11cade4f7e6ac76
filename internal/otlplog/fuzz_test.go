package otlplog

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/floe-io/floe/internal/event"
)

func fuzzChunks(t testing.TB) [][]byte {
	var seeds [][]byte
	_ = FromLogs(sampleLogs(), nil, 0, func(data []byte, _ int) error {
		seeds = append(seeds, append([]byte(nil), data...))
		return nil
	})
	ev := event.Event{Time: event.Time{Sec: 5}, Meta: kv("otlp", kv("trace_id", "0102", "severity_text", "info")),
		Body: kv("message", "m", "n", []any{int64(1), nil, 1.5})}
	seeds = append(seeds, chunkOf(ev, groupStart(0, 0, kv("attributes", kv("a", "b")), kv("name", "s")), ev, groupEndEv))
	return append(seeds, []byte{0x92, 0x92, 0xd7, 0x00}, nil)
}

// FuzzToLogs: arbitrary chunk bytes never panic; what maps counts exactly
// the records the chunk holds and marshals to OTLP protobuf and back.
func FuzzToLogs(f *testing.F) {
	for _, s := range fuzzChunks(f) {
		f.Add(s)
	}
	opt := &Options{BodyKeys: []string{"message", "log"}, BodyKeyAttributes: true, SeverityTextKey: "level",
		TraceIDKey: "trace_id", SpanIDKey: "span_id", SeverityNumberKey: "sev"}
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, n, err := ToLogs(data, opt)
		if ld.LogRecordCount() != n {
			t.Fatalf("count %d, logs hold %d", n, ld.LogRecordCount())
		}
		if err != nil {
			return
		}
		want := 0
		it := event.NewIter(data)
		for it.Next() {
			if it.Event().Kind() == event.KindRecord {
				want++
			}
		}
		if n != want {
			t.Fatalf("mapped %d records, chunk holds %d", n, want)
		}
		b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		if err != nil {
			t.Fatal(err)
		}
		back, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
		if err != nil || back.LogRecordCount() != n {
			t.Fatalf("protobuf round trip: %v, %d records", err, back.LogRecordCount())
		}
	})
}

// FuzzFromLogs: any OTLP protobuf that pdata accepts maps to well-formed
// events, cut into batches that are whole groups, and maps back to as many
// records.
func FuzzFromLogs(f *testing.F) {
	b, _ := (&plog.ProtoMarshaler{}).MarshalLogs(sampleLogs())
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data)
		if err != nil {
			return
		}
		var all []byte
		total := 0
		err = FromLogs(ld, nil, 512, func(batch []byte, records int) error {
			it := event.NewIter(batch)
			n, depth := 0, 0
			for it.Next() {
				raw := it.Event()
				if _, err := raw.Decode(); err != nil {
					t.Fatalf("event does not decode: %v", err)
				}
				switch raw.Kind() {
				case event.KindGroupStart:
					depth++
				case event.KindGroupEnd:
					depth--
				default:
					n++
				}
			}
			if it.Err() != nil || n != records || depth != 0 {
				t.Fatalf("batch: err %v, %d records (says %d), depth %d", it.Err(), n, records, depth)
			}
			total += records
			all = append(all, batch...)
			return nil
		})
		if err != nil || total != ld.LogRecordCount() {
			t.Fatalf("err %v, %d records of %d", err, total, ld.LogRecordCount())
		}
		if _, n, err := ToLogs(all, nil); err != nil || n != total {
			t.Fatalf("back: %v, %d of %d", err, n, total)
		}
	})
}
