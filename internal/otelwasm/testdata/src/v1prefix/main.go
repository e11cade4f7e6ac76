//go:build wasip1

// Command v1prefix is an OTelWasm ABI v1 processor with the final
// otelwasm_-prefixed names (otelwasm PR #85 head), importing from module
// "otelwasm" as the v1 document names it. It splits its input: each log
// record goes out in its own otelwasm_set_result_logs call, with attribute
// dialect=v1prefix, so the host must keep every batch (upstream keeps only
// the last). Build: see testdata/build.sh.
package main

import (
	"unsafe"

	"go.opentelemetry.io/collector/pdata/plog"
)

func main() {}

//go:wasmimport otelwasm otelwasm_set_result_logs
func setResultLogs(ptr, n uint32)

//go:wasmexport otelwasm_abi_version_0_1_0
func marker() {}

var pinned = map[uint32][]byte{}

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport otelwasm_memory_allocate
func alloc(size uint32) uint32 {
	if size == 0 {
		return 0
	}
	b := make([]byte, size)
	pinned[addr(b)] = b
	return addr(b)
}

//go:wasmexport otelwasm_start
func start() uint32 { return 0 }

//go:wasmexport otelwasm_shutdown
func shutdown() uint32 { return 0 }

//go:wasmexport otelwasm_get_supported_telemetry
func supported() uint32 { return 2 }

//go:wasmexport otelwasm_consume_logs
func consumeLogs(ptr, n uint32) uint32 {
	in := pinned[ptr][:n]
	delete(pinned, ptr)
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(in)
	if err != nil {
		return 1
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				one := plog.NewLogs()
				lr := one.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
				lrs.At(k).CopyTo(lr)
				lr.Attributes().PutStr("dialect", "v1prefix")
				out, _ := (&plog.ProtoMarshaler{}).MarshalLogs(one)
				setResultLogs(addr(out), uint32(len(out)))
			}
		}
	}
	return 0
}
