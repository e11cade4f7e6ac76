//go:build wasip1

// Command seqexp is an OTelWasm ABI v1 exporter for the output contract: it
// writes one line per log record to its stdout, "<time_unix_nano> <body>
// seq=<attribute seq>", the whole batch in one write, and answers status 1
// (with the write error as the reason) when that write fails, as an
// exporter answers when its backend refuses a batch. The host's stdout
// writer is the backend: a test sees what the exporter delivered and can
// make it fail.
//
// Build: see ../build.sh.
package main

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/plog"
)

func main() {}

//go:wasmimport opentelemetry.io/wasm set_status_reason
func setStatusReason(ptr, n uint32)

//go:wasmexport abi_version_v1
func abiVersionV1() {}

var pinned = map[uint32][]byte{}

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	if size == 0 {
		return 0
	}
	b := make([]byte, size)
	pinned[addr(b)] = b
	return addr(b)
}

//go:wasmexport start
func start() uint32 { return 0 }

//go:wasmexport shutdown
func shutdown() uint32 { return 0 }

func fail(reason string) uint32 {
	b := []byte(reason)
	setStatusReason(addr(b), uint32(len(b)))
	return 1
}

//go:wasmexport consume_logs
func consumeLogs(ptr, n uint32) uint32 {
	in := pinned[ptr][:n]
	delete(pinned, ptr)
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(in)
	if err != nil {
		return fail(err.Error())
	}
	var b strings.Builder
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				seq := "none"
				if v, ok := lr.Attributes().Get("seq"); ok {
					seq = v.AsString()
				}
				fmt.Fprintf(&b, "%d %s seq=%s\n", lr.Timestamp(), lr.Body().AsString(), seq)
			}
		}
	}
	if _, err := os.Stdout.WriteString(b.String()); err != nil {
		return fail("backend refused the batch: " + err.Error())
	}
	return 0
}
