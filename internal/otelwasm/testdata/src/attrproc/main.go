//go:build wasip1

// Command attrproc is an OTelWasm ABI v1 processor (the draft names of
// otelwasm PR #85: abi_version_v1, alloc, consume_*, set_result_*), written in
// standard Go for GOOS=wasip1 with //go:wasmexport, in the style of the
// upstream attributesprocessor: plugin_config
// {"actions": [{"key": k, "action": "insert"|"upsert", "value": v}]} sets the
// attribute on every log record (insert only when absent), span and metric
// data point. With {"fail": "reason"} every consume returns status 1 with
// that reason, to test the status path.
//
// Build (from internal/otelwasm, see testdata/build.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false \
//	  -ldflags='-s -w' -o testdata/attrproc.wasm ./testdata/src/attrproc
package main

import (
	"encoding/json"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func main() {}

//go:wasmimport opentelemetry.io/wasm set_result_logs
func setResultLogs(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm set_result_metrics
func setResultMetrics(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm set_result_traces
func setResultTraces(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm set_status_reason
func setStatusReason(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm get_plugin_config
func getPluginConfig(ptr, limit uint32) uint32

//go:wasmexport abi_version_v1
func abiVersionV1() {}

//go:wasmexport get_supported_telemetry
func getSupportedTelemetry() uint32 { return 1 | 2 | 4 }

// pinned keeps alloc'd buffers reachable until consume takes them.
var pinned = map[uint32][]byte{}

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	if size == 0 {
		return 0
	}
	b := make([]byte, size)
	p := addr(b)
	pinned[p] = b
	return p
}

func take(ptr, n uint32) []byte {
	b, ok := pinned[ptr]
	if !ok {
		if n == 0 {
			return nil
		}
		panic("consume: unknown pointer")
	}
	delete(pinned, ptr)
	return b[:n]
}

type action struct {
	Key    string `json:"key"`
	Action string `json:"action"`
	Value  string `json:"value"`
}

type config struct {
	Actions []action `json:"actions"`
	Fail    string   `json:"fail"`
}

var cfg config

//go:wasmexport start
func start() uint32 {
	// A 16-byte buffer first: the host returns the real size when the
	// config does not fit, and the second call gets all of it.
	buf := make([]byte, 16)
	n := getPluginConfig(addr(buf), uint32(len(buf)))
	if n > uint32(len(buf)) {
		buf = make([]byte, n)
		n = getPluginConfig(addr(buf), n)
	}
	if n == 0 {
		return 0
	}
	if err := json.Unmarshal(buf[:n], &cfg); err != nil {
		return fail("plugin_config: " + err.Error())
	}
	for _, a := range cfg.Actions {
		if a.Key == "" {
			return fail("plugin_config: action without key")
		}
	}
	return 0
}

//go:wasmexport shutdown
func shutdown() uint32 { return 0 }

func fail(reason string) uint32 {
	b := []byte(reason)
	setStatusReason(addr(b), uint32(len(b)))
	return 1
}

func apply(m pcommon.Map) {
	for _, a := range cfg.Actions {
		if _, ok := m.Get(a.Key); ok && a.Action != "upsert" && a.Action != "update" {
			continue
		}
		m.PutStr(a.Key, a.Value)
	}
}

//go:wasmexport consume_logs
func consumeLogs(ptr, n uint32) uint32 {
	in := take(ptr, n)
	if cfg.Fail != "" {
		return fail(cfg.Fail)
	}
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(in)
	if err != nil {
		return fail("logs: " + err.Error())
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				apply(lrs.At(k).Attributes())
			}
		}
	}
	out, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		return fail("logs: " + err.Error())
	}
	setResultLogs(addr(out), uint32(len(out)))
	return 0
}

//go:wasmexport consume_traces
func consumeTraces(ptr, n uint32) uint32 {
	in := take(ptr, n)
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(in)
	if err != nil {
		return fail("traces: " + err.Error())
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				apply(sp.At(k).Attributes())
			}
		}
	}
	out, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return fail("traces: " + err.Error())
	}
	setResultTraces(addr(out), uint32(len(out)))
	return 0
}

//go:wasmexport consume_metrics
func consumeMetrics(ptr, n uint32) uint32 {
	in := take(ptr, n)
	md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(in)
	if err != nil {
		return fail("metrics: " + err.Error())
	}
	// Passed through unchanged, re-marshalled, to check the round trip.
	out, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		return fail("metrics: " + err.Error())
	}
	setResultMetrics(addr(out), uint32(len(out)))
	return 0
}
