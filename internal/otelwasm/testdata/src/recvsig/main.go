//go:build wasip1

// Command recvsig is an OTelWasm ABI v1 receiver (draft names) of metrics
// and traces in standard Go for GOOS=wasip1.
//
// start_metrics_receiver emits plugin_config.count gauge data points
// (metric "seq", value i) and start_traces_receiver plugin_config.count
// spans (name "span <i>"), each in batches of plugin_config.batch through
// set_result_metrics / set_result_traces; then each waits, polling
// get_shutdown_requested every 10ms, and returns once it is set.
//
// Build: see testdata/build.sh.
package main

import (
	"encoding/json"
	"fmt"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func main() {}

//go:wasmimport opentelemetry.io/wasm set_result_metrics
func setResultMetrics(ptr, n uint32)

//go:wasmimport opentelemetry.io/wasm set_result_traces
func setResultTraces(ptr, n uint32)

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
		b := []byte("plugin_config: " + err.Error())
		setStatusReason(addr(b), uint32(len(b)))
		return 1
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1
	}
	return 0
}

//go:wasmexport shutdown
func shutdown() uint32 { return 0 }

func waitShutdown() {
	for getShutdownRequested() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

//go:wasmexport start_metrics_receiver
func startMetricsReceiver() {
	for i := 0; i < cfg.Count; {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "recvsig")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("seq")
		dps := m.SetEmptyGauge().DataPoints()
		for j := 0; j < cfg.Batch && i < cfg.Count; j++ {
			dp := dps.AppendEmpty()
			dp.SetIntValue(int64(i))
			dp.SetTimestamp(1700000000_000000000)
			i++
		}
		out, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
		setResultMetrics(addr(out), uint32(len(out)))
	}
	waitShutdown()
}

//go:wasmexport start_traces_receiver
func startTracesReceiver() {
	for i := 0; i < cfg.Count; {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "recvsig")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for j := 0; j < cfg.Batch && i < cfg.Count; j++ {
			sp := spans.AppendEmpty()
			sp.SetName(fmt.Sprintf("span %d", i))
			sp.SetTraceID([16]byte{1, byte(i)})
			sp.SetSpanID([8]byte{2, byte(i)})
			sp.SetStartTimestamp(1700000000_000000000)
			sp.SetEndTimestamp(1700000001_000000000)
			i++
		}
		out, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		setResultTraces(addr(out), uint32(len(out)))
	}
	waitShutdown()
}
