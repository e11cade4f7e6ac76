package wasmhost

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// BenchmarkDeadline measures what keeping wasm_timeout costs per record on
// Fluent Bit ABI guests, one record per call as the filter calls them:
//   - context_checks: wazero's WithCloseOnContextDone (an exit to Go at
//     every loop iteration and call; Options.WazeroStopChecks);
//   - inline_checks: Floe's inline checks (stopcheck.go; the default);
//   - no_deadline: CompileTrusted, nothing can stop the call (wasm_timeout 0).
func BenchmarkDeadline(b *testing.B) {
	jsonRec := []byte(`{"log":"2024-01-01T00:00:00Z INFO request 1234 served in 12ms","stream":"stdout","status":200,"latency":0.012}`)
	// The same record in MessagePack.
	mpRec := []byte("\x84\xa3log\xd9\x3a2024-01-01T00:00:00Z INFO request 1234 served in 12ms\xa6stream\xa6stdout\xa6status\xcc\xc8\xa7latency\xcb\x3f\x88\x93\x74\xbc\x6a\x7e\xfa")
	guests := []struct{ guest, fn string }{
		{"c_wasi_filter", "c_add_fields"},
		{"c_wasi_filter", "c_msgpack_passthrough"},
		{"go_filter", "go_add_field"},
		{"go_filter", "go_msgpack_add"},
	}
	for _, opt := range []string{"context_checks", "inline_checks", "no_deadline"} {
		r, err := New(context.Background(), Options{WazeroStopChecks: opt == "context_checks"})
		if err != nil {
			b.Fatal(err)
		}
		for _, g := range guests {
			b.Run(opt+"/"+g.guest+"/"+g.fn, func(b *testing.B) {
				ctx := context.Background()
				compile := r.Compile
				if opt == "no_deadline" {
					compile = r.CompileTrusted
				}
				mod, err := compile(ctx, wasmtest.Path(b, g.guest))
				if err != nil {
					b.Fatal(err)
				}
				timeout := DefaultTimeout
				if opt == "no_deadline" {
					timeout = -1
				}
				inst, err := mod.Instantiate(ctx, InstanceConfig{Timeout: timeout})
				if err != nil {
					b.Fatal(err)
				}
				defer inst.Close(ctx)
				rec := jsonRec
				if g.fn == "c_msgpack_passthrough" || g.fn == "go_msgpack_add" {
					rec = mpRec
				}
				tp, _ := inst.Alloc(ctx, 8)
				rp, _ := inst.Alloc(ctx, uint32(len(rec)+1))
				inst.Write(tp, []byte("bench\x00"))
				inst.Write(rp, append(rec, 0))
				f := inst.Function(g.fn)
				stack := make([]uint64, 6)
				for b.Loop() {
					stack = append(stack[:0], uint64(tp), 5, 1700000000, 0, uint64(rp), uint64(len(rec)))
					if err := inst.Call(ctx, g.fn, f, stack); err != nil {
						b.Fatal(err)
					}
					if stack[0] == 0 {
						b.Fatalf("%s returned NULL", g.fn)
					}
					if err := inst.Free(ctx, uint32(stack[0])); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
			})
		}
		_ = r.Close(context.Background())
	}
}
