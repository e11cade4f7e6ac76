package telemetry

// GoPluginMetrics are the metrics of an external Go output plugin's process
// (a fluent-bit-go helper or an SDK plugin), keyed by the plugin's
// registered name; exported under "floe" → "go_plugins" → name in
// /api/v1/metrics and as floe_go_plugin_*{name="..."} in Prometheus. The
// records, bytes, retries and errors of each instance are the output's own
// metrics (fluentbit_output_*).
type GoPluginMetrics struct {
	Restarts Counter // plugin processes restarted after dying
	Panics   Counter // flushes that panicked inside an SDK plugin
}

// Prometheus names of the Go plugin metrics.
const (
	MetricGoPluginRestarts = "floe_go_plugin_restarts_total"
	MetricGoPluginPanics   = "floe_go_plugin_panics_total"
)

// GoPlugin returns the metrics of the named plugin, creating them on first use.
func (r *Registry) GoPlugin(name string) *GoPluginMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.goplugins.get(name)
}

func (r *Registry) goPluginList() []entry[GoPluginMetrics] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.goplugins.list()
}

func appendGoPluginJSON(b []byte, list []entry[GoPluginMetrics]) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, `,"go_plugins":{`...)
	for i, e := range list {
		b = objStart(b, i, e.name)
		b = kv(b, "restarts", e.m.Restarts.Load(), true)
		b = kv(b, "panics", e.m.Panics.Load(), false)
		b = append(b, '}')
	}
	return append(b, '}')
}

func goPluginCounters() []counterDesc[GoPluginMetrics] {
	const n = "name"
	return []counterDesc[GoPluginMetrics]{
		cdesc(MetricGoPluginRestarts, "Number of Go plugin processes restarted after dying.", n, func(m *GoPluginMetrics) *Counter { return &m.Restarts }),
		cdesc(MetricGoPluginPanics, "Number of flushes that panicked inside a Go SDK plugin.", n, func(m *GoPluginMetrics) *Counter { return &m.Panics }),
	}
}
