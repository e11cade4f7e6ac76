package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkTailJSONToNull: a file of JSON lines of about 200 bytes → tail
// input (read_from_head, the stock json parser) → null output, through the
// whole pipeline of one floe process (embedded NATS, FLOE_IN, ingest, output
// stage). One iteration reads one file of FLOE_BENCH_TAIL_LINES lines
// (default 2,000,000); the clock starts when the file is moved into the
// watched directory of an already running floe and stops when the null
// output has delivered every line. Reports events/s, MB/s (file bytes),
// CPU-seconds and peak RSS of the floe process:
//
//	go test -run XXX -bench TailJSONToNull -benchtime 1x ./test/e2e/
//
// The file is generated once, deterministically, before the timer runs.
func BenchmarkTailJSONToNull(b *testing.B) {
	lines := 2_000_000
	if v := os.Getenv("FLOE_BENCH_TAIL_LINES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("FLOE_BENCH_TAIL_LINES=%q is not a positive number of lines", v)
		}
		lines = n
	}
	staging := b.TempDir()
	src := filepath.Join(staging, "bench.src")
	size := writeBenchLines(b, src, lines)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		benchTailOnce(b, src, lines, size)
	}
}

// writeBenchLines writes n JSON lines of about 200 bytes, each different
// (seq), with a time the stock json parser's Time_Format reads, and returns
// the file's size.
func writeBenchLines(b *testing.B, path string, n int) int64 {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("x", 80)
	for i := 0; i < n; i++ {
		fmt.Fprintf(bw, `{"time":"01/Mar/2024:10:%02d:%02d +0000","level":"info","seq":%d,"service":"checkout","msg":"request handled","path":"/api/v1/cart","pad":"%s"}`+"\n",
			(i/60)%60, i%60, i, pad)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func benchTailOnce(b *testing.B, src string, lines int, size int64) {
	dir := b.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	// A hard link in the watched directory's file system keeps the
	// generated file for the next iteration and makes the move atomic.
	staged := filepath.Join(dir, "bench.tmp")
	if err := os.Link(src, staged); err != nil {
		b.Fatal(err)
	}
	httpAddr := freePortB(b)
	_, httpPort, _ := strings.Cut(httpAddr, ":")
	cfg := filepath.Join(dir, "floe.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[SERVICE]
    Flush          0.2
    storage.path   %s
    HTTP_Server    On
    HTTP_Listen    127.0.0.1
    HTTP_Port      %s

[INPUT]
    Name              tail
    Path              %s
    Tag               bench.*
    Read_From_Head    on
    Refresh_Interval  0.1
    Parser            json

[OUTPUT]
    Name   null
    Match  *
`, filepath.Join(dir, "storage"), httpPort, filepath.Join(logs, "*.log"))), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := execFloe(b, "-c", cfg)
	waitListening(b, httpAddr)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, ok := getMetricsB(httpAddr).Input["tail.0"]; ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the tail input does not show in the metrics")
		}
		time.Sleep(20 * time.Millisecond)
	}

	cpu0 := procCPU(cmd.Process.Pid)
	b.StartTimer()
	start := time.Now()
	if err := os.Rename(staged, filepath.Join(logs, "bench.log")); err != nil {
		b.Fatal(err)
	}
	var m floeMetrics
	deadline = time.Now().Add(15 * time.Minute)
	for {
		m = getMetricsB(httpAddr)
		if m.Output["null.0"]["proc_records"] >= uint64(lines) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("null output has %d of %d records (tail read %d)", m.Output["null.0"]["proc_records"], lines, m.Input["tail.0"]["records"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	cpu := procCPU(cmd.Process.Pid) - cpu0
	peak := procPeakRSS(cmd.Process.Pid)
	// Every line once: more records than lines would be duplicates.
	time.Sleep(500 * time.Millisecond)
	m = getMetricsB(httpAddr)
	if got := m.Output["null.0"]["proc_records"]; got != uint64(lines) {
		b.Fatalf("null output delivered %d records for %d lines", got, lines)
	}
	if got := m.Input["tail.0"]["records"]; got != uint64(lines) {
		b.Fatalf("tail counted %d records for %d lines", got, lines)
	}
	chunks := m.Floe.Stage["ingest"]["chunks_out"]
	b.ReportMetric(float64(lines)/el.Seconds(), "events/s")
	b.ReportMetric(float64(size)/1e6/el.Seconds(), "MB/s")
	b.ReportMetric(cpu.Seconds(), "cpu-s")
	b.ReportMetric(float64(lines)/max(cpu.Seconds(), 0.01), "events/cpu-s")
	b.ReportMetric(float64(size)/float64(lines), "bytes/line")
	b.ReportMetric(float64(lines)/float64(max(chunks, 1)), "events/chunk")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
}
