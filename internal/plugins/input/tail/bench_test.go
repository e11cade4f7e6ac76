package tail

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// nullWriter drops what it is given (the null output), counting it.
type nullWriter struct {
	records, bytes atomic.Int64
	buf            []byte
}

type doneReceipt struct{}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (doneReceipt) Done() <-chan struct{} { return closed }
func (doneReceipt) Err() error            { return nil }

func (w *nullWriter) Write(_ context.Context, _ string, data []byte, records int) (plugin.Receipt, error) {
	w.records.Add(int64(records))
	w.bytes.Add(int64(len(data)))
	return doneReceipt{}, nil
}

// ChunkBuffer lends the same buffer each time, as ingest's pool does for a
// busy file once the chunk before is stored: this writer drops it at once.
func (w *nullWriter) ChunkBuffer(n int) []byte {
	if cap(w.buf) < n {
		w.buf = make([]byte, 0, n)
	}
	return w.buf[:0]
}

var _ plugin.ChunkWriter = (*nullWriter)(nil)

func (w *nullWriter) WriteChunk(ctx context.Context, _ string, tag string, data []byte, records int) (plugin.Receipt, error) {
	return w.Write(ctx, tag, data, records)
}

// BenchmarkTailJSONToNull reads a file of JSON lines of about 200 bytes
// with the json parser into a sink that drops them. Each iteration reads
// the whole file (FLOE_BENCH_TAIL_LINES lines, default 200,000; the
// acceptance figure uses 2000000):
//
//	FLOE_BENCH_TAIL_LINES=2000000 go test -run XXX -bench TailJSONToNull -benchtime 1x ./internal/plugins/input/tail/
func BenchmarkTailJSONToNull(b *testing.B) {
	lines := 200000
	if v := os.Getenv("FLOE_BENCH_TAIL_LINES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("FLOE_BENCH_TAIL_LINES=%q", v)
		}
		lines = n
	}
	path := filepath.Join(b.TempDir(), "bench.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("x", 96)
	for i := 0; i < lines; i++ {
		fmt.Fprintf(bw, `{"time":"2024-03-01T10:00:00.%06dZ","level":"info","seq":%d,"service":"checkout","msg":"request handled","pad":"%s"}`+"\n", i%1000000, i, pad)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(path)
	reg, err := parser.Load(nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuSeconds()
	b.ResetTimer()
	var records int64
	for i := 0; i < b.N; i++ {
		p := plugintest.Props(Spec(), "path "+path, "read_from_head on", "exit_on_eof on", "parser json", "buffer_chunk_size 256k", "buffer_max_size 256k")
		in, err := newTail(plugin.Settings{Name: "tail.0", Parsers: reg}, p)
		if err != nil {
			b.Fatal(err)
		}
		w := &nullWriter{}
		if err := in.Run(context.Background(), w); err != nil {
			b.Fatal(err)
		}
		if w.records.Load() != int64(lines) {
			b.Fatalf("%d records, want %d", w.records.Load(), lines)
		}
		records += w.records.Load()
	}
	cpu := cpuSeconds() - cpu0
	sec := b.Elapsed().Seconds()
	// On a shared machine wall time mostly measures the neighbours; CPU
	// time spent by this process is the steadier figure.
	b.ReportMetric(cpu, "cpu-s")
	b.ReportMetric(float64(records)/cpu, "events/cpu-s")
	b.ReportMetric(float64(records)/sec, "events/s")
	b.ReportMetric(float64(fi.Size())*float64(b.N)/sec/1e6, "MB/s")
	b.ReportMetric(float64(fi.Size())/float64(lines), "bytes/line")
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
