package telemetry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestWasmMetrics(t *testing.T) {
	r := NewRegistry("test")
	if got := string(r.MetricsJSON()); strings.Contains(got, `"wasm"`) {
		t.Fatalf("wasm object without WASM filters: %s", got)
	}
	m := r.Wasm("wasm.0")
	if r.Wasm("wasm.0") != m {
		t.Fatal("Wasm is not get-or-create")
	}
	m.Calls.Add(1)
	m.RecordsIn.Add(2)
	m.RecordsOut.Add(3)
	m.Drops.Add(4)
	m.Traps.Add(5)
	m.Timeouts.Add(6)
	m.Recycles.Add(7)
	m.Errors.Add(8)
	m.MemoryPages.Set(9)
	m.LatencyNanosTotal.Add(10)

	var top struct {
		Floe struct {
			Wasm map[string]map[string]int64 `json:"wasm"`
		} `json:"floe"`
	}
	if err := json.Unmarshal(r.MetricsJSON(), &top); err != nil {
		t.Fatalf("%v: %s", err, r.MetricsJSON())
	}
	want := map[string]int64{"calls": 1, "records_in": 2, "records_out": 3, "drops": 4, "traps": 5,
		"timeouts": 6, "recycles": 7, "errors": 8, "memory_pages": 9, "latency_nanos_total": 10}
	got := top.Floe.Wasm["wasm.0"]
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (%v)", k, got[k], v, got)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "name" || m.GetLabel()[0].GetValue() != "wasm.0" {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				found[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				found[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	for name, v := range map[string]float64{MetricWasmCalls: 1, MetricWasmRecordsIn: 2, MetricWasmRecordsOut: 3,
		MetricWasmDrops: 4, MetricWasmTraps: 5, MetricWasmTimeouts: 6, MetricWasmRecycles: 7, MetricWasmErrors: 8,
		MetricWasmMemoryPages: 9, MetricWasmLatencyNanos: 10} {
		if found[name] != v {
			t.Errorf("%s{name=\"wasm.0\"} = %v, want %v", name, found[name], v)
		}
	}
}
