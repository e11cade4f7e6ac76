package wasm

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// A guest that leaks 64 KiB a record processes 1,000,000 records in big
// chunks, two at a time (two instances): Floe's memory (Go heap plus the
// guests' linear memory) stays flat after warm-up because each instance is
// replaced when it passes 80% of wasm_memory_limit.
func TestLeakingGuestMillionRecords(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1,000,000 records (not with -short or -race)")
	}
	const (
		total     = 1_000_000
		perChunk  = 10_000
		workers   = 2
		memLimit  = 128_000_000
		goHeapCap = 64 << 20 // Go heap allowance on top of guest memory
	)
	// Earlier tests in this binary leave compiled modules in the runtime's
	// cache (tens of MB); the allowance is for what this test adds.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	f, e := newFilter(t, Options{PoolSize: workers}, "wasm_path", wasmtest.Path(t, "c_wasi_filter"), "function_name", "c_leak")
	m := e.reg.Wasm("wasm.0")

	// One big chunk of ~100-byte records, filtered over and over.
	var data []byte
	for i := range perChunk {
		body := event.Map{{Key: "message", Value: fmt.Sprintf("leaky record %06d with some text", i)}, {Key: "n", Value: int64(i)}}
		data = event.AppendRaw(data, event.Time{Sec: t0.Sec + int64(i)}, nil, body.AppendMsgpack(nil))
	}
	in := &chunk.Chunk{Tag: "leak", Records: perChunk, Data: data}

	var (
		mu                                  sync.Mutex
		chunks, out                         int
		warmHeap, maxHeap, maxGuest, maxSum uint64
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		guest := uint64(m.MemoryPages.Load()) * 65536
		heap := ms.HeapAlloc - min(ms.HeapAlloc, base.HeapAlloc)
		mu.Lock()
		defer mu.Unlock()
		chunks++
		switch {
		case chunks == 10: // warmed up
			warmHeap = heap
		case chunks > 10:
			maxHeap, maxGuest, maxSum = max(maxHeap, heap), max(maxGuest, guest), max(maxSum, heap+guest)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total / perChunk / workers {
				cs, err := f.FilterChunk(context.Background(), in)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, c := range cs {
					out += c.Records
				}
				mu.Unlock()
				sample()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took := time.Since(start)
	if out != total {
		t.Errorf("%d records out of %d", out, total)
	}
	t.Logf("Go heap of earlier tests (not counted below) %d MB", base.HeapAlloc>>20)
	t.Logf("%d records in %v (%.0f records/s, %d workers); recycles %d; Go heap after warm-up %d MB, max %d MB; guest memory max %d MB; max sum %d MB",
		total, took.Round(time.Millisecond), total/took.Seconds(), workers, m.Recycles.Load(), warmHeap>>20, maxHeap>>20, maxGuest>>20, maxSum>>20)
	if m.Recycles.Load() < total*64*1024/memLimit {
		t.Errorf("recycles %d: the leaking instances were not replaced often enough", m.Recycles.Load())
	}
	if maxGuest > workers*memLimit {
		t.Errorf("guest memory reached %d bytes, over %d instances × the %d-byte limit", maxGuest, workers, memLimit)
	}
	if maxSum > workers*memLimit+goHeapCap {
		t.Errorf("Go heap + guest memory reached %d MB", maxSum>>20)
	}
	// What a GC cannot free after 640 recycles is what the recycling leaks
	// into the host; the samples above also count garbage not yet collected.
	runtime.GC()
	var end runtime.MemStats
	runtime.ReadMemStats(&end)
	if kept := end.HeapAlloc - min(end.HeapAlloc, base.HeapAlloc); kept > 16<<20 {
		t.Errorf("Go heap holds %d MB more after the run than before it", kept>>20)
	} else {
		t.Logf("Go heap after the run and a GC: %d MB more than before it", kept>>20)
	}
	if rss := vmRSS(); rss > 0 {
		t.Logf("process RSS at the end: %d MB", rss>>20)
	}
}

// raceEnabled is set by race_test.go.
var raceEnabled bool

// vmRSS is the process's resident memory on Linux (0 elsewhere).
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, line := range splitLines(string(b)) {
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
