package telemetry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNetInputMetrics(t *testing.T) {
	r := NewRegistry("test")
	if got := string(r.MetricsJSON()); strings.Contains(got, `"net_input"`) {
		t.Fatalf("net_input object without network inputs: %s", got)
	}
	m := r.NetInput("http.0")
	if r.NetInput("http.0") != m {
		t.Fatal("NetInput is not get-or-create")
	}
	m.Connections.Set(1)
	m.ConnectionsTotal.Add(2)
	m.Refused.Add(3)
	m.Dropped.Add(4)
	m.Errors.Add(5)
	m.Unparsed.Add(6)

	var top struct {
		Floe struct {
			NetInput map[string]map[string]int64 `json:"net_input"`
		} `json:"floe"`
	}
	if err := json.Unmarshal(r.MetricsJSON(), &top); err != nil {
		t.Fatalf("%v: %s", err, r.MetricsJSON())
	}
	want := map[string]int64{"connections": 1, "connections_total": 2, "refused": 3, "dropped_records": 4,
		"decode_errors": 5, "unparsed_records": 6}
	got := top.Floe.NetInput["http.0"]
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
		for _, pm := range mf.GetMetric() {
			if len(pm.GetLabel()) == 1 && pm.GetLabel()[0].GetValue() == "http.0" && strings.HasPrefix(mf.GetName(), "floe_input_") {
				found[mf.GetName()] = pm.GetCounter().GetValue() + pm.GetGauge().GetValue()
			}
		}
	}
	wantProm := map[string]float64{MetricNetInputConnections: 1, MetricNetInputConnectionsTotal: 2, MetricNetInputRefused: 3,
		MetricNetInputDropped: 4, MetricNetInputErrors: 5, MetricNetInputUnparsed: 6}
	for k, v := range wantProm {
		if found[k] != v {
			t.Errorf("%s = %v, want %v (%v)", k, found[k], v, found)
		}
	}
}
