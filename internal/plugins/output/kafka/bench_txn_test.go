package kafka

import (
	"context"
	"strconv"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin/outputtest"
)

// BenchmarkFlushTransactional measures what a transaction per chunk costs,
// and what the exactly-once marker adds to it, against the plain
// idempotent producer of BenchmarkFlush (same 500-record JSON chunks).
// Every flush has a chunk id of its own, so no flush is skipped as a
// redelivery.
func BenchmarkFlushTransactional(b *testing.B) {
	for _, mode := range []struct {
		name  string
		lines []string
	}{
		{"idempotent", nil},
		{"transaction", []string{"transactional_id bench", "exactly_once off"}},
		{"transaction+exactly_once", []string{"transactional_id bench"}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			s := newKfakeSink(b)
			out := openOut(b, append(s.Config(), mode.lines...)...)
			const n = 500
			chunks := make([]*chunk.Chunk, 64)
			for i := range chunks {
				chunks[i] = outputtest.Chunk(int64(i*n), n)
			}
			var bytes int64
			for i := 0; b.Loop(); i++ {
				c := *chunks[i%len(chunks)]
				c.ID = "bench-" + strconv.Itoa(i)
				if err := out.Flush(context.Background(), &c); err != nil {
					b.Fatal(err)
				}
				bytes += int64(len(c.Data))
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*n)/sec, "records/s")
			b.ReportMetric(float64(bytes)/sec/1e6, "MB/s")
			b.ReportMetric(float64(b.N)/sec, "chunks/s")
		})
	}
}
