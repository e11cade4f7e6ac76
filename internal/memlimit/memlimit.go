// Package memlimit keeps a Floe process's Go heap near a soft limit.
//
// Go's collector lets the heap grow to twice what is live before it runs
// (GOGC=100). Most of what a pipeline allocates is short-lived chunk buffers
// (its own and the NATS server's, whose file-store caches alone keep 20-30
// MiB live), so at full speed the heap doubles a live set that is mostly
// buffers in flight, and peak RSS follows. A soft limit makes the collector
// run earlier while the heap is small. It must never bind below what is
// really live, or the collector would run without end: the limit follows the
// live heap upwards (Floor or 1.5× live plus Slack, whichever is larger), so a
// process with a large live set behaves as with GOGC=50 at worst.
package memlimit

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Slack is the room above 1.5× the live heap for what Go's limit counts
// beside it (stacks, runtime structures).
const Slack = 16 << 20

// Limit is the soft limit for a live heap of live bytes under a floor.
func Limit(floor, live int64) int64 {
	return max(floor, live+live/2+Slack)
}

// Run applies floor (bytes; 0 or less: off) as the soft memory limit until
// ctx ends, raising it as the live heap grows and lowering it back. A
// GOMEMLIMIT in the environment is the operator's own choice: Run leaves it
// alone. It returns at once when there is nothing to do.
func Run(ctx context.Context, floor int64, every time.Duration) {
	if floor <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	prev := debug.SetMemoryLimit(floor)
	defer debug.SetMemoryLimit(prev)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := floor
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			continue
		}
		live := int64(min(sample[0].Value.Uint64(), math.MaxInt64/2))
		if want := Limit(floor, live); want != cur {
			debug.SetMemoryLimit(want)
			cur = want
		}
	}
}
