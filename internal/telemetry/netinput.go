package telemetry

import "github.com/prometheus/client_golang/prometheus"

// NetInputMetrics are Floe's own metrics of a network input (forward, and
// any input that accepts connections), keyed by the input's display name and
// exported under "floe" → "net_input" → name in /api/v1/metrics and as
// floe_input_*{name="..."} in Prometheus. Records and bytes stay in
// InputMetrics, as Fluent Bit reports them.
type NetInputMetrics struct {
	Connections Counter // connections accepted
	Active      Gauge   // connections open now
	Refusals    Counter // connections closed for bad input or failed authentication
}

// Prometheus names of the network input metrics.
const (
	MetricInputConnections       = "floe_input_connections_total"
	MetricInputActiveConnections = "floe_input_active_connections"
	MetricInputRefusals          = "floe_input_refusals_total"
)

// NetInput returns the network metrics of the named input, creating them on
// first use.
func (r *Registry) NetInput(name string) *NetInputMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.netInputs.get(name)
}

func (r *Registry) netInputList() []entry[NetInputMetrics] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.netInputs.list()
}

// appendNetInputJSON appends `,"net_input":{...}` when there are network inputs.
func appendNetInputJSON(b []byte, list []entry[NetInputMetrics]) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, `,"net_input":{`...)
	for i, e := range list {
		b = objStart(b, i, e.name)
		b = kv(b, "connections", e.m.Connections.Load(), true)
		b = kv(b, "active_connections", uint64(max(e.m.Active.Load(), 0)), false)
		b = kv(b, "refusals", e.m.Refusals.Load(), false)
		b = append(b, '}')
	}
	return append(b, '}')
}

type netInputCollector struct {
	counters []counterDesc[NetInputMetrics]
	active   *prometheus.Desc
}

func newNetInputCollector() netInputCollector {
	const n = "name"
	return netInputCollector{
		counters: []counterDesc[NetInputMetrics]{
			cdesc(MetricInputConnections, "Number of connections accepted by the input.", n, func(m *NetInputMetrics) *Counter { return &m.Connections }),
			cdesc(MetricInputRefusals, "Number of connections the input closed for bad input or failed authentication.", n, func(m *NetInputMetrics) *Counter { return &m.Refusals }),
		},
		active: prometheus.NewDesc(MetricInputActiveConnections, "Number of connections open on the input.", []string{n}, nil),
	}
}

func (c *netInputCollector) describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d.d
	}
	ch <- c.active
}

func (c *netInputCollector) collect(ch chan<- prometheus.Metric, list []entry[NetInputMetrics]) {
	emit(ch, c.counters, list)
	for _, e := range list {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(e.m.Active.Load()), e.name)
	}
}
