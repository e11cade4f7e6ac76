package telemetry

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// NetInputMetrics are Floe's own metrics of a network input (http, tcp,
// udp, syslog, forward, opentelemetry), keyed by the input's display name and
// exported under "floe" → "net_input" → name in /api/v1/metrics and as
// floe_input_*{name="..."} in Prometheus. Records and bytes stay in
// InputMetrics, as Fluent Bit's.
type NetInputMetrics struct {
	Connections      Gauge   // connections open now
	ConnectionsTotal Counter // connections accepted (datagram sockets: none)
	// Refused counts what was turned away at the door: requests answered
	// 503 while paused or 413 for their size, connections over a limit or
	// failing their TLS handshake.
	Refused Counter
	// Dropped counts records lost on purpose: datagrams received while the
	// input is paused (udp, unix_udp syslog) have nowhere to wait.
	Dropped Counter
	// Errors counts input that could not be decoded: bad requests, invalid
	// JSON, broken framing. Each is also logged with its reason.
	Errors Counter
	// Unparsed counts records whose parser failed; they are kept with
	// their raw text (syslog: under "message").
	Unparsed Counter
}

// Prometheus names of the network input metrics.
const (
	MetricNetInputConnections      = "floe_input_connections"
	MetricNetInputConnectionsTotal = "floe_input_connections_total"
	MetricNetInputRefused          = "floe_input_refused_total"
	MetricNetInputDropped          = "floe_input_dropped_records_total"
	MetricNetInputErrors           = "floe_input_decode_errors_total"
	MetricNetInputUnparsed         = "floe_input_unparsed_records_total"
)

// NetInput returns the network metrics of the named input, creating them on
// first use. Call it once at setup and keep the pointer.
func (r *Registry) NetInput(name string) *NetInputMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.netins.get(name)
}

func (r *Registry) netInputList() []entry[NetInputMetrics] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.netins.list()
}

// appendNetInputJSON appends `,"net_input":{...}` when there are network inputs.
func appendNetInputJSON(b []byte, list []entry[NetInputMetrics]) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, `,"net_input":{`...)
	for i, e := range list {
		b = objStart(b, i, e.name)
		b = append(b, `"connections":`...)
		b = strconv.AppendInt(b, e.m.Connections.Load(), 10)
		b = kv(b, "connections_total", e.m.ConnectionsTotal.Load(), false)
		b = kv(b, "refused", e.m.Refused.Load(), false)
		b = kv(b, "dropped_records", e.m.Dropped.Load(), false)
		b = kv(b, "decode_errors", e.m.Errors.Load(), false)
		b = kv(b, "unparsed_records", e.m.Unparsed.Load(), false)
		b = append(b, '}')
	}
	return append(b, '}')
}

type netInputCollector struct {
	counters []counterDesc[NetInputMetrics]
	conns    *prometheus.Desc
}

func newNetInputCollector() netInputCollector {
	const n = "name"
	return netInputCollector{
		counters: []counterDesc[NetInputMetrics]{
			cdesc(MetricNetInputConnectionsTotal, "Number of connections accepted by the input.", n, func(m *NetInputMetrics) *Counter { return &m.ConnectionsTotal }),
			cdesc(MetricNetInputRefused, "Number of requests or connections the input turned away.", n, func(m *NetInputMetrics) *Counter { return &m.Refused }),
			cdesc(MetricNetInputDropped, "Number of records the input dropped while paused.", n, func(m *NetInputMetrics) *Counter { return &m.Dropped }),
			cdesc(MetricNetInputErrors, "Number of payloads the input could not decode.", n, func(m *NetInputMetrics) *Counter { return &m.Errors }),
			cdesc(MetricNetInputUnparsed, "Number of records kept unparsed because their parser failed.", n, func(m *NetInputMetrics) *Counter { return &m.Unparsed }),
		},
		conns: prometheus.NewDesc(MetricNetInputConnections, "Number of connections open on the input.", []string{n}, nil),
	}
}

func (c *netInputCollector) describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d.d
	}
	ch <- c.conns
}

func (c *netInputCollector) collect(ch chan<- prometheus.Metric, list []entry[NetInputMetrics]) {
	emit(ch, c.counters, list)
	for _, e := range list {
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(e.m.Connections.Load()), e.name)
	}
}
