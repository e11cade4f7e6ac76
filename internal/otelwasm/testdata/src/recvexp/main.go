//go:build wasip1

// Command recvexp is an OTelWasm ABI v1 receiver and exporter (draft names)
// in standard Go for GOOS=wasip1.
//
// As a receiver (start_logs_receiver), it emits plugin_config.count log
// records (body "record <i>", attribute seq=i) in batches of
// plugin_config.batch through set_result_logs, then waits, polling
// get_shutdown_requested every 10ms, and returns once it is set.
//
// As an exporter (consume_logs), it prints one line per log record to
// stdout: "exported <body> seq=<seq>"; a record whose body is "fail" makes
// it return status 1 with reason "refused: fail".
//
// Build: see testdata/build.sh.
package main

import (
	"encoding/json"
	"fmt"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/plog"
)

func main() {}

//go:wasmimport opentelemetry.io/wasm set_result_logs
func setResultLogs(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm set_status_reason
func setStatusReason(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm get_plugin_config
func getPluginConfig(ptr, limit uint32) uint32

//go:wasmimport opentelemetry.io/wasm get_shutdown_requested
func getShutdownRequested() uint32

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

var cfg struct {
	Count int `json:"count"`
	Batch int `json:"batch"`
}

//go:wasmexport start
func start() uint32 {
	n := getPluginConfig(0, 0)
	if n == 0 {
		return 0
	}
	buf := make([]byte, n)
	getPluginConfig(addr(buf), n)
	if err := json.Unmarshal(buf, &cfg); err != nil {
		return fail("plugin_config: " + err.Error())
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1
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

//go:wasmexport start_logs_receiver
func startLogsReceiver() {
	for i := 0; i < cfg.Count; {
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for j := 0; j < cfg.Batch && i < cfg.Count; j++ {
			lr := lrs.AppendEmpty()
			lr.Body().SetStr(fmt.Sprintf("record %d", i))
			lr.Attributes().PutInt("seq", int64(i))
			lr.SetTimestamp(1700000000_000000000)
			i++
		}
		out, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		setResultLogs(addr(out), uint32(len(out)))
	}
	for getShutdownRequested() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

//go:wasmexport consume_logs
func consumeLogs(ptr, n uint32) uint32 {
	in := pinned[ptr][:n]
	delete(pinned, ptr)
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(in)
	if err != nil {
		return fail(err.Error())
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if lr.Body().AsString() == "fail" {
					return fail("refused: fail")
				}
				seq := "none"
				if v, ok := lr.Attributes().Get("seq"); ok {
					seq = v.AsString()
				}
				fmt.Printf("exported %s seq=%s\n", lr.Body().AsString(), seq)
			}
		}
	}
	return 0
}
