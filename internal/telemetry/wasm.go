package telemetry

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// WasmMetrics are Floe's per-module metrics of a WASM filter (keyed by the
// filter's display name), exported under "floe" → "wasm" → name in
// /api/v1/metrics and as floe_wasm_*{name="..."} in Prometheus.
type WasmMetrics struct {
	Calls      Counter // guest function calls
	RecordsIn  Counter // records given to the module
	RecordsOut Counter // records passed on (results, and failed records kept by on_error keep)
	Drops      Counter // records dropped (NULL/empty result, or failed with on_error drop)
	Traps      Counter // calls that trapped (or exited, or hit the memory cap)
	Timeouts   Counter // calls stopped at their deadline
	Recycles   Counter // instances discarded and replaced
	Errors     Counter // records whose call failed or whose result was invalid
	// MemoryPages is the linear memory of the live instances, in 64 KiB pages.
	MemoryPages Gauge
	// LatencyNanosTotal is the time spent in guest calls, in nanoseconds.
	LatencyNanosTotal Gauge
}

// Prometheus names of the WASM metrics.
const (
	MetricWasmCalls        = "floe_wasm_calls_total"
	MetricWasmRecordsIn    = "floe_wasm_records_in_total"
	MetricWasmRecordsOut   = "floe_wasm_records_out_total"
	MetricWasmDrops        = "floe_wasm_drops_total"
	MetricWasmTraps        = "floe_wasm_traps_total"
	MetricWasmTimeouts     = "floe_wasm_timeouts_total"
	MetricWasmRecycles     = "floe_wasm_recycles_total"
	MetricWasmErrors       = "floe_wasm_errors_total"
	MetricWasmLatencyNanos = "floe_wasm_latency_nanoseconds_total"
	MetricWasmMemoryPages  = "floe_wasm_memory_pages"
)

// Wasm returns the WASM metrics of the named filter, creating them on
// first use.
func (r *Registry) Wasm(name string) *WasmMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wasms.get(name)
}

func (r *Registry) wasmList() []entry[WasmMetrics] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wasms.list()
}

// appendWasmJSON appends `,"wasm":{...}` when there are WASM modules.
func appendWasmJSON(b []byte, list []entry[WasmMetrics]) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, `,"wasm":{`...)
	for i, e := range list {
		b = objStart(b, i, e.name)
		b = kv(b, "calls", e.m.Calls.Load(), true)
		b = kv(b, "records_in", e.m.RecordsIn.Load(), false)
		b = kv(b, "records_out", e.m.RecordsOut.Load(), false)
		b = kv(b, "drops", e.m.Drops.Load(), false)
		b = kv(b, "traps", e.m.Traps.Load(), false)
		b = kv(b, "timeouts", e.m.Timeouts.Load(), false)
		b = kv(b, "recycles", e.m.Recycles.Load(), false)
		b = kv(b, "errors", e.m.Errors.Load(), false)
		b = append(b, `,"memory_pages":`...)
		b = strconv.AppendInt(b, e.m.MemoryPages.Load(), 10)
		b = append(b, `,"latency_nanos_total":`...)
		b = strconv.AppendInt(b, e.m.LatencyNanosTotal.Load(), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

type wasmCollector struct {
	counters []counterDesc[WasmMetrics]
	latency  *prometheus.Desc
	pages    *prometheus.Desc
}

func newWasmCollector() wasmCollector {
	const n = "name"
	return wasmCollector{
		counters: []counterDesc[WasmMetrics]{
			cdesc(MetricWasmCalls, "Number of WASM guest calls.", n, func(m *WasmMetrics) *Counter { return &m.Calls }),
			cdesc(MetricWasmRecordsIn, "Number of records given to the WASM module.", n, func(m *WasmMetrics) *Counter { return &m.RecordsIn }),
			cdesc(MetricWasmRecordsOut, "Number of records passed on by the WASM filter.", n, func(m *WasmMetrics) *Counter { return &m.RecordsOut }),
			cdesc(MetricWasmDrops, "Number of records dropped by the WASM filter.", n, func(m *WasmMetrics) *Counter { return &m.Drops }),
			cdesc(MetricWasmTraps, "Number of WASM calls that trapped.", n, func(m *WasmMetrics) *Counter { return &m.Traps }),
			cdesc(MetricWasmTimeouts, "Number of WASM calls stopped at their deadline.", n, func(m *WasmMetrics) *Counter { return &m.Timeouts }),
			cdesc(MetricWasmRecycles, "Number of WASM instances discarded and replaced.", n, func(m *WasmMetrics) *Counter { return &m.Recycles }),
			cdesc(MetricWasmErrors, "Number of records whose WASM call failed or returned an invalid result.", n, func(m *WasmMetrics) *Counter { return &m.Errors }),
		},
		latency: prometheus.NewDesc(MetricWasmLatencyNanos, "Time spent in WASM guest calls, in nanoseconds.", []string{n}, nil),
		pages:   prometheus.NewDesc(MetricWasmMemoryPages, "Linear memory of the live WASM instances, in 64 KiB pages.", []string{n}, nil),
	}
}

func (w *wasmCollector) describe(ch chan<- *prometheus.Desc) {
	for _, d := range w.counters {
		ch <- d.d
	}
	ch <- w.latency
	ch <- w.pages
}

func (w *wasmCollector) collect(ch chan<- prometheus.Metric, list []entry[WasmMetrics]) {
	emit(ch, w.counters, list)
	for _, e := range list {
		ch <- prometheus.MustNewConstMetric(w.latency, prometheus.CounterValue, float64(e.m.LatencyNanosTotal.Load()), e.name)
		ch <- prometheus.MustNewConstMetric(w.pages, prometheus.GaugeValue, float64(e.m.MemoryPages.Load()), e.name)
	}
}
