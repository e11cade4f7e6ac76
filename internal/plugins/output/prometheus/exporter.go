// Package prometheus holds Fluent Bit's prometheus_exporter output: it keeps
// the latest value of every series of the metrics chunks it is given and
// serves them in the Prometheus text format on http://host:port/metrics.
//
// Metrics chunks carry OTLP (ExportMetricsServiceRequest). Gauges become
// gauges; monotonic cumulative sums become counters and other sums gauges;
// cumulative histograms become histograms and summaries summaries (delta
// histograms and exponential histograms are skipped with a warning, since
// the text format cannot say what they mean). Metric and label names are
// sanitized to [a-zA-Z_:][a-zA-Z0-9_:]*. Labels are the data point's
// attributes plus every add_label ("add_label name value", may repeat),
// which win over an attribute of the same name. A series keeps its last
// value; add_timestamp on adds the point's timestamp to each sample.
//
// A logs or traces chunk answers ERROR: the exporter serves metrics only.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/proto"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
)

// ExporterSpec describes the prometheus_exporter output plugin.
func ExporterSpec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput, Name: "prometheus_exporter", Desc: "Prometheus Exporter",
		Keys: []plugin.Key{
			{Name: "host", Default: "0.0.0.0", Desc: "address to listen on"},
			{Name: "port", Type: plugin.Int, Default: "2021", Desc: "TCP port to listen on"},
			{Name: "add_label", Multi: true, Desc: "label added to every series, 'name value'; may repeat"},
			{Name: "add_timestamp", Type: plugin.Bool, Default: "off", Desc: "add the point's timestamp to each sample"},
		},
		NewOutput: NewExporter,
	}
}

// Exporter serves the latest metrics it was given.
type Exporter struct {
	log       *slog.Logger
	srv       *http.Server
	ln        net.Listener
	addLabels [][2]string
	stamp     bool

	mu   sync.RWMutex
	fams map[string]*family
}

type family struct {
	mf     *dto.MetricFamily // Metric is rebuilt from series when served
	series map[string]*dto.Metric
	// stamp is the time of each series' value: an older one arriving later
	// (chunks delivered out of order by parallel workers or a redelivery)
	// does not replace it.
	stamp map[string]pcommon.Timestamp
}

// NewExporter starts the exporter's HTTP server.
func NewExporter(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	e := &Exporter{log: set.Logger, fams: map[string]*family{}, stamp: p.Bool("add_timestamp")}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for _, v := range p.All("add_label") {
		name, value, ok := strings.Cut(strings.TrimSpace(v), " ")
		value = strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, p.Errorf("add_label", "add_label %q needs a name and a value, e.g. 'app floe'", v)
		}
		if sanitizeName(name, false) != name {
			return nil, p.Errorf("add_label", "%q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
		}
		e.addLabels = append(e.addLabels, [2]string{name, value})
	}
	port := p.Int("port")
	if port < 0 || port > 65535 {
		return nil, p.Errorf("port", "port %d is out of range (0-65535)", port)
	}
	addr := net.JoinHostPort(strings.Trim(strings.TrimSpace(p.String("host")), "[]"), strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, p.Errorf("port", "prometheus_exporter cannot listen on %s: %v", addr, err)
	}
	e.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", e.serve)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("prometheus_exporter server stopped", "error", err)
		}
	}()
	return e, nil
}

// Addr is the address the exporter listens on.
func (e *Exporter) Addr() string { return e.ln.Addr().String() }

// Close stops the HTTP server.
func (e *Exporter) Close(ctx context.Context) error {
	return e.srv.Shutdown(ctx)
}

// Flush records the latest value of every series of a metrics chunk.
func (e *Exporter) Flush(_ context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Metrics {
		return plugin.Permanent(fmt.Errorf("prometheus_exporter: %s chunks are not supported (metrics only)", c.Signal()))
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(c.Data); err != nil {
		return plugin.Permanent(fmt.Errorf("prometheus_exporter: chunk %s is not an OTLP metrics request: %w", c.ID, err))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				e.record(ms.At(k))
			}
		}
	}
	return nil
}

func (e *Exporter) record(m pmetric.Metric) {
	name := sanitizeName(m.Name(), true)
	if name == "" {
		return
	}
	var typ dto.MetricType
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		typ = dto.MetricType_GAUGE
		e.numbers(name, m, typ, m.Gauge().DataPoints())
		return
	case pmetric.MetricTypeSum:
		typ = dto.MetricType_GAUGE
		if m.Sum().IsMonotonic() && m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative {
			typ = dto.MetricType_COUNTER
		}
		e.numbers(name, m, typ, m.Sum().DataPoints())
		return
	case pmetric.MetricTypeHistogram:
		if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
			e.log.Warn("prometheus_exporter: delta histogram skipped", "metric", m.Name())
			return
		}
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			h := &dto.Histogram{SampleCount: proto.Uint64(dp.Count()), SampleSum: proto.Float64(dp.Sum())}
			var cum uint64
			for b := range dp.ExplicitBounds().Len() {
				if b < dp.BucketCounts().Len() {
					cum += dp.BucketCounts().At(b)
				}
				h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(dp.ExplicitBounds().At(b)), CumulativeCount: proto.Uint64(cum)})
			}
			e.put(name, m, dto.MetricType_HISTOGRAM, dp.Attributes(), dp.Timestamp(), &dto.Metric{Histogram: h})
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			s := &dto.Summary{SampleCount: proto.Uint64(dp.Count()), SampleSum: proto.Float64(dp.Sum())}
			for q := range dp.QuantileValues().Len() {
				qv := dp.QuantileValues().At(q)
				s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(qv.Quantile()), Value: proto.Float64(qv.Value())})
			}
			e.put(name, m, dto.MetricType_SUMMARY, dp.Attributes(), dp.Timestamp(), &dto.Metric{Summary: s})
		}
	default:
		e.log.Warn("prometheus_exporter: metric type not representable, skipped", "metric", m.Name(), "type", m.Type().String())
	}
}

func (e *Exporter) numbers(name string, m pmetric.Metric, typ dto.MetricType, dps pmetric.NumberDataPointSlice) {
	for i := range dps.Len() {
		dp := dps.At(i)
		v := dp.DoubleValue()
		if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			v = float64(dp.IntValue())
		}
		pm := &dto.Metric{}
		if typ == dto.MetricType_COUNTER {
			pm.Counter = &dto.Counter{Value: proto.Float64(v)}
		} else {
			pm.Gauge = &dto.Gauge{Value: proto.Float64(v)}
		}
		e.put(name, m, typ, dp.Attributes(), dp.Timestamp(), pm)
	}
}

// put stores one series' value; a metric name seen with another type
// replaces the family, as the latest description wins.
func (e *Exporter) put(name string, m pmetric.Metric, typ dto.MetricType, attrs pcommon.Map, ts pcommon.Timestamp, pm *dto.Metric) {
	f := e.fams[name]
	if f == nil || f.mf.GetType() != typ {
		f = &family{mf: &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum()}, series: map[string]*dto.Metric{}, stamp: map[string]pcommon.Timestamp{}}
		e.fams[name] = f
	}
	if h := m.Description(); h != "" {
		f.mf.Help = proto.String(h)
	}
	labels := map[string]string{}
	attrs.Range(func(k string, v pcommon.Value) bool {
		labels[sanitizeName(k, false)] = v.AsString()
		return true
	})
	for _, l := range e.addLabels {
		labels[l[0]] = l[1]
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var key strings.Builder
	for _, k := range keys {
		pm.Label = append(pm.Label, &dto.LabelPair{Name: proto.String(k), Value: proto.String(labels[k])})
		key.WriteString(k)
		key.WriteByte(0)
		key.WriteString(labels[k])
		key.WriteByte(0)
	}
	if e.stamp && ts != 0 {
		pm.TimestampMs = proto.Int64(int64(ts) / int64(time.Millisecond))
	}
	k := key.String()
	if prev, ok := f.stamp[k]; ok && ts != 0 && ts < prev {
		return
	}
	f.series[k] = pm
	f.stamp[k] = ts
}

func (e *Exporter) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.RLock()
	names := make([]string, 0, len(e.fams))
	for n := range e.fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*dto.MetricFamily
	for _, n := range names {
		f := e.fams[n]
		mf := &dto.MetricFamily{Name: f.mf.Name, Help: f.mf.Help, Type: f.mf.Type}
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			mf.Metric = append(mf.Metric, f.series[k])
		}
		out = append(out, mf)
	}
	e.mu.RUnlock()
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range out {
		if err := enc.Encode(mf); err != nil {
			e.log.Warn("prometheus_exporter: encoding a metric family failed", "metric", mf.GetName(), "error", err)
			return
		}
	}
}

// sanitizeName replaces characters a Prometheus metric (colons allowed) or
// label name cannot hold with '_', and prefixes a leading digit with '_'.
func sanitizeName(s string, metric bool) string {
	if s == "" {
		return ""
	}
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (metric && c == ':')
		if !ok {
			b[i] = '_'
		}
	}
	if b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}
