package wasmhost

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// The rewriter never panics on any input, and a module wazero accepts stays
// one wazero accepts once rewritten (branch depths, wrappers, globals and
// exports all valid).
func FuzzAddStopChecks(f *testing.F) {
	f.Add(spinModule(false, true))
	f.Add(spinModule(true, true))
	f.Add(countModule())
	f.Add(wasmtest.Guest("c_filter_nostdlib"))
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, err := addStopChecks(bin)
		if err != nil {
			return
		}
		orig, err := rt.CompileModule(ctx, bin)
		if err != nil {
			return // not a valid module to begin with
		}
		_ = orig.Close(ctx)
		mod, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("valid module invalid after the rewrite: %v", err)
		}
		_ = mod.Close(ctx)
	})
}
