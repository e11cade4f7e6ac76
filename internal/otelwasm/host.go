package otelwasm

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/floe-io/floe/internal/wasmhost"
)

// HostModules are the import module names the host functions are defined
// under: the one upstream code imports, and the one its v1 document names.
var HostModules = []string{"opentelemetry.io/wasm", "otelwasm"}

// DefineHost defines the OTelWasm host modules on rt (once).
func DefineHost(ctx context.Context, rt *wasmhost.Runtime) error {
	funcs := hostFuncs()
	for _, name := range HostModules {
		if err := rt.DefineHostModule(ctx, name, funcs); err != nil {
			return err
		}
	}
	return nil
}

func state(ctx context.Context, fn string) *callState {
	st, _ := ctx.Value(stateKey{}).(*callState)
	if st == nil {
		// wazero turns the panic into a trap of the calling guest.
		panic(fmt.Errorf("%s: called outside an OTelWasm call", fn))
	}
	return st
}

func read(mod api.Module, fn string, ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Errorf("%s: %d bytes at %#x are outside the guest's memory", fn, n, ptr))
	}
	return b
}

// sized implements the buffer protocol: write src at buf when it fits in
// limit, and return its real length either way (so the guest can grow its
// buffer and call again; upstream returns 0 there, read as "empty").
func sized(mod api.Module, fn string, src []byte, buf, limit uint32) uint64 {
	if len(src) > 0 && uint32(len(src)) <= limit {
		if !mod.Memory().Write(buf, src) {
			panic(fmt.Errorf("%s: buffer %#x+%d is outside the guest's memory", fn, buf, len(src)))
		}
	}
	return uint64(len(src))
}

func hostFuncs() []wasmhost.HostFunc {
	var fs []wasmhost.HostFunc
	add := func(name string, params, results []api.ValueType, fn api.GoModuleFunc) {
		fs = append(fs, wasmhost.HostFunc{Name: name, Params: params, Results: results, Fn: fn})
	}
	setResult := func(name string, sig Signal) api.GoModuleFunc {
		return func(ctx context.Context, mod api.Module, stack []uint64) {
			st := state(ctx, name)
			b := read(mod, name, uint32(stack[0]), uint32(stack[1]))
			if st.onResult != nil {
				if err := st.onResult(sig, b); err != nil {
					panic(fmt.Errorf("%s: %w", name, err))
				}
				return
			}
			if sig != st.resSig {
				panic(fmt.Errorf("%s: called while consuming %s", name, st.resSig))
			}
			st.result.Write(b) // copies out of guest memory
			st.results++
		}
	}
	getConfig := func(name string) api.GoModuleFunc {
		return func(ctx context.Context, mod api.Module, stack []uint64) {
			st := state(ctx, name)
			stack[0] = sized(mod, name, st.config, uint32(stack[0]), uint32(stack[1]))
		}
	}
	setReason := func(name string) api.GoModuleFunc {
		return func(ctx context.Context, mod api.Module, stack []uint64) {
			st := state(ctx, name)
			st.reason = string(read(mod, name, uint32(stack[0]), uint32(stack[1])))
		}
	}
	shutdown := func(name string) api.GoModuleFunc {
		return func(ctx context.Context, mod api.Module, stack []uint64) {
			if state(ctx, name).shutdown.Load() {
				stack[0] = 1
			} else {
				stack[0] = 0
			}
		}
	}
	for _, s := range []struct {
		sig           Signal
		legacy, d, v1 string
		current       string
	}{
		{Logs, "setResultLogs", "set_result_logs", "otelwasm_set_result_logs", "currentLogs"},
		{Metrics, "setResultMetrics", "set_result_metrics", "otelwasm_set_result_metrics", "currentMetrics"},
		{Traces, "setResultTraces", "set_result_traces", "otelwasm_set_result_traces", "currentTraces"},
	} {
		for _, n := range []string{s.legacy, s.d, s.v1} {
			add(n, i32x2, noTypes, setResult(n, s.sig))
		}
		name, sig := s.current, s.sig
		add(name, i32x2, i32, func(ctx context.Context, mod api.Module, stack []uint64) {
			st := state(ctx, name)
			var src []byte
			if st.inputSig == sig {
				src = st.input
			}
			stack[0] = sized(mod, name, src, uint32(stack[0]), uint32(stack[1]))
		})
	}
	for _, n := range []string{"getPluginConfig", "get_plugin_config", "otelwasm_get_plugin_config"} {
		add(n, i32x2, i32, getConfig(n))
	}
	for _, n := range []string{"setResultStatusReason", "set_status_reason", "otelwasm_set_status_reason"} {
		add(n, i32x2, noTypes, setReason(n))
	}
	for _, n := range []string{"getShutdownRequested", "get_shutdown_requested", "otelwasm_get_shutdown_requested"} {
		add(n, noTypes, i32, shutdown(n))
	}
	add("otelwasm_log", i32x3, noTypes, func(ctx context.Context, mod api.Module, stack []uint64) {
		st := state(ctx, "otelwasm_log")
		msg := string(read(mod, "otelwasm_log", uint32(stack[1]), uint32(stack[2])))
		if st.log != nil {
			st.log(int(uint32(stack[0])), msg)
		}
	})
	add("logMessage", i32x2, noTypes, func(ctx context.Context, mod api.Module, stack []uint64) {
		st := state(ctx, "logMessage")
		msg := string(read(mod, "logMessage", uint32(stack[0]), uint32(stack[1])))
		if st.log != nil {
			st.log(2, msg)
		}
	})
	return fs
}
