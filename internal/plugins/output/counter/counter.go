// Package counter is Fluent Bit's counter output: for every chunk it prints
// the current time, the number of events in the chunk and the running total.
package counter

import (
	"context"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// Spec describes the counter output plugin. It has no keys of its own.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "counter",
		Desc:      "Records counter",
		NewOutput: New,
	}
}

// New builds a counter output printing to os.Stdout.
func New(_ context.Context, _ plugin.Settings, _ *plugin.Props) (plugin.Output, error) {
	return &Output{w: os.Stdout, now: time.Now}, nil
}

// Output counts events.
type Output struct {
	w   io.Writer
	now func() time.Time

	mu    sync.Mutex
	total uint64
}

// BorrowsData: Flush keeps no reference to the chunk's data
// (plugin.DataBorrower).
func (o *Output) BorrowsData() {}

// Flush prints one line, as out_counter's
//
//	printf("%f,%lu (total = %"PRIu64")\n", flb_time_to_double(&now), cnt, total)
//
// where cnt counts every top-level MessagePack object of the chunk
// (flb_mp_count), so group markers are counted too. Like upstream it always
// answers OK: counting stops at the first undecodable byte and printing is
// best effort.
func (o *Output) Flush(_ context.Context, c *chunk.Chunk) error {
	n := count(c.Data)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.total += uint64(n)
	_, _ = o.w.Write(Line(nil, event.FromTime(o.now()), n, o.total))
	return nil
}

// Line appends one counter line.
func Line(dst []byte, t event.Time, n int, total uint64) []byte {
	dst = strconv.AppendFloat(dst, t.Float(), 'f', 6, 64)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, " (total = "...)
	dst = strconv.AppendUint(dst, total, 10)
	return append(dst, ")\n"...)
}

// count counts the chunk's top-level objects up to the first one that does
// not decode.
func count(data []byte) int {
	n := 0
	for off := 0; off < len(data); n++ {
		next, err := event.Skip(data, off)
		if err != nil {
			break
		}
		off = next
	}
	return n
}
