package otlplog

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// benchLogs is 1,000 records shaped like an SDK's: a string body, three
// attributes, severity and trace context.
func benchLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "bench")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("bench/logger")
	for i := 0; i < 1000; i++ {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(1700000000e9 + int64(i)))
		lr.SetObservedTimestamp(pcommon.Timestamp(1700000001e9 + int64(i)))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr("GET /api/v1/orders/12345 200 12ms user=alice region=eu-west-1")
		lr.Attributes().PutStr("http.method", "GET")
		lr.Attributes().PutInt("http.status_code", 200)
		lr.Attributes().PutDouble("duration_ms", 12.5)
		lr.SetTraceID(traceID)
		lr.SetSpanID(spanID)
	}
	return ld
}

func BenchmarkFromLogs(b *testing.B) {
	ld := benchLogs()
	size := 0
	_ = FromLogs(ld, nil, 0, func(data []byte, _ int) error { size += len(data); return nil })
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		_ = FromLogs(ld, nil, 256<<10, func([]byte, int) error { return nil })
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkToLogs(b *testing.B) {
	var chunk []byte
	_ = FromLogs(benchLogs(), nil, 0, func(data []byte, _ int) error { chunk = append(chunk, data...); return nil })
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ToLogs(chunk, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
}
