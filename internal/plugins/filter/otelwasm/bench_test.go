package otelwasm

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFilter runs 1000-record chunks through the ABI v1 Go guest:
// passthrough (no actions: decode, re-encode, set_result) and adding one
// attribute. Reported as ns per record (and records/s) for the whole path:
// events → OTLP → guest → OTLP → events.
func BenchmarkFilter(b *testing.B) {
	for _, bc := range []struct{ name, cfg, timeout string }{
		{"passthrough", `plugin_config {"actions":[]}`, "5s"},
		{"add_attribute", `plugin_config {"actions":[{"key":"inserted","action":"insert","value":"hello-from-wasm"}]}`, "5s"},
		// wasm_timeout 0: code without wazero's termination checks.
		{"passthrough_trusted", `plugin_config {"actions":[]}`, "0"},
		{"add_attribute_trusted", `plugin_config {"actions":[{"key":"inserted","action":"insert","value":"hello-from-wasm"}]}`, "0"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := mustFilter(b, "path "+guestDir+"attrproc.wasm", bc.cfg, "wasm_timeout "+bc.timeout)
			const n = 1000
			c := inputChunk(n)
			ctx := context.Background()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				out, err := f.FilterChunk(ctx, c)
				if err != nil || len(out) != 1 || out[0].Records != n {
					b.Fatalf("out=%d err=%v", len(out), err)
				}
			}
			// CPU time too: on a shared, loaded machine wall time mostly
			// measures the wait for a core.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/record")
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*n)
			b.ReportMetric(ns, "ns/record")
			b.ReportMetric(1e9/ns, "records/s")
		})
	}
}
