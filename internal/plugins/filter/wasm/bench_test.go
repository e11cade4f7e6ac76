package wasm

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/wasmhost"
	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// benchChunk is a chunk of n typical log records (~150 bytes of JSON each).
func benchChunk(n int) *chunk.Chunk {
	var data []byte
	for i := range n {
		body := event.Map{
			{Key: "log", Value: fmt.Sprintf("2024-01-01T00:00:00Z INFO request %d served in 12ms", i)},
			{Key: "stream", Value: "stdout"},
			{Key: "kubernetes", Value: event.Map{{Key: "pod_name", Value: "web-7d9f8"}, {Key: "namespace_name", Value: "prod"}}},
			{Key: "status", Value: int64(200)},
			{Key: "latency", Value: 0.012},
		}
		data = event.AppendRaw(data, event.Time{Sec: t0.Sec + int64(i)}, nil, body.AppendMsgpack(nil))
	}
	return &chunk.Chunk{Tag: "kube.web", Records: n, Data: data}
}

func benchFilter(b *testing.B, rt *wasmhost.Runtime, guest, fn, format string, kv ...string) {
	kv = append([]string{"wasm_path", wasmtest.Path(b, guest), "function_name", fn, "event_format", format}, kv...)
	f, _ := newFilter(b, Options{Runtime: rt}, kv...)
	c := benchChunk(1000)
	ctx := context.Background()
	if _, err := f.FilterChunk(ctx, c); err != nil { // warm up
		b.Fatal(err)
	}
	b.SetBytes(int64(len(c.Data)))
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		out, err := f.FilterChunk(ctx, c)
		if err != nil || len(out) != 1 || out[0].Records != 1000 {
			b.Fatalf("%v %v", out, err)
		}
	}
	b.StopTimer()
	perRecord := b.Elapsed().Seconds() / float64(b.N*1000)
	b.ReportMetric(perRecord*1e9, "ns/record")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*1000), "cpu-ns/record")
	b.ReportMetric(1/perRecord, "records/s")
}

// deadlines: the default (wasm_timeout 5s, code with termination checks)
// and wasm_timeout 0 (trusted code without them).
var deadlines = []struct{ name, timeout string }{{"timeout_5s", "5s"}, {"timeout_0", "0"}}

func BenchmarkFilterJSONPassthrough(b *testing.B) {
	for _, d := range deadlines {
		b.Run(d.name+"/c_echo", func(b *testing.B) {
			benchFilter(b, testRuntime(b), "c_wasi_filter", "c_echo", "json", "wasm_timeout", d.timeout)
		})
		b.Run(d.name+"/go_passthrough", func(b *testing.B) {
			benchFilter(b, testRuntime(b), "go_filter", "go_passthrough", "json", "wasm_timeout", d.timeout)
		})
		b.Run(d.name+"/c_filter_nostdlib", func(b *testing.B) {
			benchFilter(b, testRuntime(b), "c_filter_nostdlib", "c_filter", "json", "wasm_timeout", d.timeout)
		})
	}
}

// BenchmarkFilterGoJSONAddField is the whole-pipeline bench's (d) guest:
// standard Go decoding and re-encoding JSON, one call per record.
func BenchmarkFilterGoJSONAddField(b *testing.B) {
	for _, d := range deadlines {
		b.Run(d.name, func(b *testing.B) {
			benchFilter(b, testRuntime(b), "go_filter", "go_add_field", "json", "wasm_timeout", d.timeout)
		})
	}
}

func BenchmarkFilterMsgpackPassthrough(b *testing.B) {
	for _, d := range deadlines {
		b.Run(d.name+"/c_msgpack_passthrough", func(b *testing.B) {
			benchFilter(b, testRuntime(b), "c_wasi_filter", "c_msgpack_passthrough", "msgpack", "wasm_timeout", d.timeout)
		})
		b.Run(d.name+"/go_msgpack_add", func(b *testing.B) {
			benchFilter(b, testRuntime(b), "go_filter", "go_msgpack_add", "msgpack", "wasm_timeout", d.timeout)
		})
	}
}

// BenchmarkFilterLeak is the leaking guest of TestLeakingGuestMillionRecords
// (64 KiB memset a record: 2,048 loop iterations).
func BenchmarkFilterLeak(b *testing.B) {
	for _, d := range deadlines {
		b.Run(d.name, func(b *testing.B) {
			benchFilter(b, testRuntime(b), "c_wasi_filter", "c_leak", "json", "wasm_timeout", d.timeout)
		})
	}
}

var (
	interpOnce sync.Once
	interpRT   *wasmhost.Runtime
)

// Compiled (wazero's optimizing compiler) against the interpreter.
func BenchmarkCompiledVsInterpreted(b *testing.B) {
	interpOnce.Do(func() {
		var err error
		if interpRT, err = wasmhost.New(context.Background(), wasmhost.Options{Interpreter: true}); err != nil {
			b.Fatal(err)
		}
	})
	for _, c := range []struct {
		name string
		rt   *wasmhost.Runtime
	}{{"compiled", testRuntime(b)}, {"interpreted", interpRT}} {
		b.Run(c.name+"/json/c_echo", func(b *testing.B) { benchFilter(b, c.rt, "c_wasi_filter", "c_echo", "json") })
		b.Run(c.name+"/msgpack/c_msgpack_passthrough", func(b *testing.B) {
			benchFilter(b, c.rt, "c_wasi_filter", "c_msgpack_passthrough", "msgpack")
		})
		b.Run(c.name+"/json/go_passthrough", func(b *testing.B) { benchFilter(b, c.rt, "go_filter", "go_passthrough", "json") })
	}
}

// Start-up: a filter constructed in a fresh runtime (compile + first
// instance), without a compilation cache and with a warm one on disk.
func BenchmarkStartup(b *testing.B) {
	for _, guest := range []struct{ name, fn string }{{"c_wasi_filter", "c_echo"}, {"go_filter", "go_passthrough"}} {
		path := wasmtest.Path(b, guest.name)
		for _, cached := range []bool{false, true} {
			name := guest.name + "/no_cache"
			dir := ""
			if cached {
				name = guest.name + "/disk_cache"
				dir = b.TempDir()
				warm(b, dir, path, guest.fn) // fill the cache
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					warm(b, dir, path, guest.fn)
				}
			})
		}
	}
}

func warm(b *testing.B, dir, path, fn string) {
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.Options{CacheDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	set, _ := settings("wasm.0")
	f, err := NewWithOptions(ctx, set, props(b, "wasm_path", path, "function_name", fn), Options{Runtime: rt})
	if err != nil {
		b.Fatal(err)
	}
	_ = f.Close(ctx)
}

// BenchmarkBatchABI runs the batch-ABI example modules on the chunk of
// benchFilter, beside the Fluent Bit ABI guests doing the same work
// (passthrough; add "platform":"wasm") in msgpack mode.
func BenchmarkBatchABI(b *testing.B) {
	for _, d := range deadlines {
		for _, g := range []string{"passthrough", "add_field", "raw_passthrough"} {
			b.Run(d.name+"/batch_"+g, func(b *testing.B) {
				f, _ := newFilter(b, Options{Runtime: testRuntime(b)}, "wasm_path", example(b, g), "wasm_timeout", d.timeout)
				benchChunks(b, f)
			})
		}
		b.Run(d.name+"/fluentbit_c_msgpack_passthrough", func(b *testing.B) {
			benchFilter(b, testRuntime(b), "c_wasi_filter", "c_msgpack_passthrough", "msgpack", "wasm_timeout", d.timeout)
		})
		b.Run(d.name+"/fluentbit_go_msgpack_add", func(b *testing.B) {
			benchFilter(b, testRuntime(b), "go_filter", "go_msgpack_add", "msgpack", "wasm_timeout", d.timeout)
		})
	}
}

func benchChunks(b *testing.B, f *Filter) {
	c := benchChunk(1000)
	ctx := context.Background()
	if _, err := f.FilterChunk(ctx, c); err != nil { // warm up
		b.Fatal(err)
	}
	b.SetBytes(int64(len(c.Data)))
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		out, err := f.FilterChunk(ctx, c)
		if err != nil || len(out) != 1 || out[0].Records != 1000 {
			b.Fatalf("%v %v", out, err)
		}
	}
	b.StopTimer()
	perRecord := b.Elapsed().Seconds() / float64(b.N*1000)
	b.ReportMetric(perRecord*1e9, "ns/record")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*1000), "cpu-ns/record")
	b.ReportMetric(1/perRecord, "records/s")
}

// cpuTime is the CPU time (user + system) the process has used, in ns. On a
// shared machine wall time per record counts the time other processes had
// the CPU; this does not (it counts the collector's threads, though).
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
