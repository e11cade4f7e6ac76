//go:build wasip1

// Command legacy is an OTelWasm processor in the legacy (otelwasm main)
// dialect: getSupportedTelemetry and processLogs, pulling its input with
// currentLogs(buf, limit) from a 2048-byte buffer it grows to the size the
// host reports, as the upstream SDK does. It sets attribute
// dialect=legacy on every log record. Build: see testdata/build.sh.
package main

import (
	"unsafe"

	"go.opentelemetry.io/collector/pdata/plog"
)

func main() {}

//go:wasmimport opentelemetry.io/wasm currentLogs
func currentLogs(ptr, limit uint32) uint32

//go:wasmimport opentelemetry.io/wasm setResultLogs
func setResultLogs(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm setResultStatusReason
func setResultStatusReason(ptr, n uint32)

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

var buf = make([]byte, 2048)

//go:wasmexport getSupportedTelemetry
func getSupportedTelemetry() uint32 { return 2 }

//go:wasmexport processLogs
func processLogs() uint32 {
	n := currentLogs(addr(buf), uint32(len(buf)))
	if n > uint32(len(buf)) {
		buf = make([]byte, n)
		n = currentLogs(addr(buf), n)
	}
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(buf[:n])
	if err != nil {
		r := []byte(err.Error())
		setResultStatusReason(addr(r), uint32(len(r)))
		return 1
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lrs.At(k).Attributes().PutStr("dialect", "legacy")
			}
		}
	}
	out, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	setResultLogs(addr(out), uint32(len(out)))
	return 0
}
