package vivo

import (
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugins/input/fluentbitmetrics"
)

// serveInternalMetrics answers /api/v1/internal/metrics: upstream serves
// Fluent Bit's own cmetrics there; Floe serves the vivo stage's own
// metrics (its streams and what it served) plus, when the process registry
// is given, the process's metrics, as one OTLP JSON document.
func (e *exporter) serveInternalMetrics(w http.ResponseWriter, r *http.Request) {
	hd := e.headers(w, true)
	hd.set("Content-Type", "application/json")
	e.cors(hd, false)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	now := time.Now()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	attrs := rm.Resource().Attributes()
	attrs.PutStr("service.name", "floe")
	attrs.PutStr("floe.stage", "vivo")
	attrs.PutStr("vivo.exporter", e.name)
	if h, err := os.Hostname(); err == nil {
		attrs.PutStr("host.name", h)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("floe/vivo")
	ms := sm.Metrics()
	ts := pcommon.NewTimestampFromTime(now)

	type streamFig struct{ chunks, bytes, first, next float64 }
	figs := make([]streamFig, len(signals))
	for i, sig := range signals {
		_, st, err := e.streamState(r.Context(), jsx.VivoStreamName(e.id, sig))
		if err != nil {
			continue
		}
		figs[i] = streamFig{float64(st.Msgs), float64(st.Bytes), float64(max(st.FirstSeq, 1) - 1), float64(st.LastSeq)}
	}
	gauge := func(name, desc string, get func(streamFig) float64) {
		m := ms.AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		g := m.SetEmptyGauge()
		for i, sig := range signals {
			dp := g.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("signal", sig)
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(get(figs[i]))
		}
	}
	gauge("vivo_stream_chunks", "Chunks held in the stream.", func(f streamFig) float64 { return f.chunks })
	gauge("vivo_stream_bytes", "Bytes held in the stream.", func(f streamFig) float64 { return f.bytes })
	gauge("vivo_stream_first_id", "Id of the oldest chunk held (next id when empty).", func(f streamFig) float64 { return f.first })
	gauge("vivo_stream_next_id", "Id the next chunk will get.", func(f streamFig) float64 { return f.next })
	counter := func(name, desc string, vals [3]uint64) {
		m := ms.AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for i, sig := range signals {
			dp := s.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("signal", sig)
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(float64(vals[i]))
		}
	}
	load := func(a *[3]atomic.Uint64) [3]uint64 { return [3]uint64{a[0].Load(), a[1].Load(), a[2].Load()} }
	counter("vivo_chunks_served_total", "Chunks served.", load(&e.chunks))
	counter("vivo_bytes_served_total", "Bytes of JSON served.", load(&e.bytes))
	counter("vivo_stream_purges_total", "Streams emptied by empty_stream_on_read.", load(&e.purges))
	one := func(name, desc string, v float64, monotonic bool) {
		m := ms.AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		var dp pmetric.NumberDataPoint
		if monotonic {
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp = s.DataPoints().AppendEmpty()
		} else {
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
		}
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(v)
	}
	one("vivo_http_requests_total", "HTTP requests.", float64(e.requests.Load()), true)
	one("vivo_http_not_found_total", "HTTP requests for unknown paths.", float64(e.notFound.Load()), true)
	one("vivo_followers", "Responses following a stream.", float64(e.follows.Load()), false)

	if reg := e.svc.cfg.Telemetry; reg != nil {
		g := prometheus.NewRegistry()
		if err := g.Register(reg.Collector()); err == nil {
			if fams, err := g.Gather(); err == nil || len(fams) > 0 {
				fluentbitmetrics.Convert(ms, fams, reg.StartTime(), now)
			}
		}
	}
	js, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	js = append(js, '\n')
	w.Header().Set("Content-Length", strconv.Itoa(len(js)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(js)
}
