package telemetry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNetInputMetrics(t *testing.T) {
	r := NewRegistry("test")
	if s := string(r.MetricsJSON()); strings.Contains(s, "net_input") {
		t.Fatalf("net_input present without network inputs: %s", s)
	}
	m := r.NetInput("forward.0")
	m.Connections.Add(3)
	m.Active.Set(2)
	m.Refusals.Add(1)
	var top struct {
		Floe struct {
			NetInput map[string]map[string]uint64 `json:"net_input"`
		} `json:"floe"`
	}
	if err := json.Unmarshal(r.MetricsJSON(), &top); err != nil {
		t.Fatal(err)
	}
	got := top.Floe.NetInput["forward.0"]
	if got["connections"] != 3 || got["active_connections"] != 2 || got["refusals"] != 1 {
		t.Fatalf("%v", got)
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
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == "forward.0" {
				found[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	for name, v := range map[string]float64{MetricInputConnections: 3, MetricInputActiveConnections: 2, MetricInputRefusals: 1} {
		if found[name] != v {
			t.Errorf("%s = %v, want %v", name, found[name], v)
		}
	}
}
