// Package fluentbitmetrics is Fluent Bit's fluentbit_metrics input: every
// scrape_interval it takes the process's own metrics (the telemetry
// registry: fluentbit_input_records_total{name="dummy.0"}, …, floe_*) and
// writes them as one metrics chunk, an OTLP ExportMetricsServiceRequest.
//
// Keys as plugins/in_fluentbit_metrics: scrape_interval (a time, default
// 2 seconds) and scrape_on_start (off: the first scrape comes one interval
// after start). The tag defaults to the instance name (fluentbit_metrics.N).
//
// Mapping (Convert): a Prometheus counter becomes a cumulative monotonic
// Sum whose start time is the process start, a gauge or untyped metric a
// Gauge, a histogram a cumulative Histogram (bucket counts made
// per-bucket), a summary a Summary; labels become data point attributes and
// the help text the description. A chunk's record count is its number of
// data points.
//
// Writing needs a Writer that takes metrics payloads: ingest's writer
// implements WriteSignal(ctx, signal, tag, data, records) for this.
package fluentbitmetrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/receipts"
	"github.com/floe-io/floe/internal/telemetry"
)

// Name is the plugin name.
const Name = "fluentbit_metrics"

// ScopeName is the OTLP instrumentation scope of the scraped metrics.
const ScopeName = "floe/fluentbit_metrics"

// Spec describes the fluentbit_metrics input.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: Name,
		Desc: "Floe's own metrics as a metrics stream",
		Keys: []plugin.Key{
			{Name: "scrape_interval", Type: plugin.Seconds, Default: "2", Desc: "time between scrapes"},
			{Name: "scrape_on_start", Type: plugin.Bool, Default: "off", Desc: "scrape once at start"},
		},
		NewInput: New,
	}
}

// SignalWriter is the optional Writer method for metrics and traces
// payloads (one chunk each, never merged with others).
type SignalWriter interface {
	WriteSignal(ctx context.Context, signal, tag string, data []byte, records int) (plugin.Receipt, error)
}

// Input is a configured fluentbit_metrics input.
type Input struct {
	tag      string
	log      *slog.Logger
	interval time.Duration
	onStart  bool
	gather   prometheus.Gatherer
	start    time.Time
	host     string
}

// New builds the input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	in := &Input{
		tag:      p.String("tag"),
		log:      set.Logger,
		interval: time.Duration(p.Seconds("scrape_interval") * float64(time.Second)),
		onStart:  p.Bool("scrape_on_start"),
	}
	if in.tag == "" {
		in.tag = set.Name
	}
	if in.log == nil {
		in.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if in.interval <= 0 {
		return nil, p.Errorf("scrape_interval", "scrape_interval must be positive")
	}
	reg := set.Telemetry
	if reg == nil {
		in.log.Warn("no metrics registry given: only the process figures will be scraped")
		reg = telemetry.NewRegistry("")
	}
	g := prometheus.NewRegistry()
	if err := g.Register(reg.Collector()); err != nil {
		return nil, err
	}
	in.gather = g
	in.start = reg.StartTime()
	in.host, _ = os.Hostname()
	return in, nil
}

// NewFromGatherer builds an input over any gatherer (tests, other stages).
func NewFromGatherer(tag string, g prometheus.Gatherer, interval time.Duration, onStart bool, start time.Time) *Input {
	host, _ := os.Hostname()
	return &Input{tag: tag, log: slog.New(slog.NewTextHandler(io.Discard, nil)), interval: interval,
		onStart: onStart, gather: g, start: start, host: host}
}

// Run scrapes every interval until ctx ends.
func (in *Input) Run(ctx context.Context, w plugin.Writer) error {
	sw, ok := w.(SignalWriter)
	if !ok {
		return errors.New("fluentbit_metrics: this pipeline cannot take metrics chunks (the writer has no WriteSignal)")
	}
	var tr receipts.Tracker
	tr.Logger = in.log
	scrape := func() error {
		data, points, err := in.Scrape(time.Now())
		if err != nil {
			in.log.Warn("scrape failed", "error", err)
			return nil
		}
		if points == 0 {
			return nil
		}
		r, err := sw.WriteSignal(ctx, chunk.Metrics, in.tag, data, points)
		if err != nil {
			return err
		}
		tr.Add(r)
		return nil
	}
	if in.onStart {
		if err := scrape(); err != nil {
			return ignoreCancel(ctx, err)
		}
	}
	t := time.NewTicker(in.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := scrape(); err != nil {
				return ignoreCancel(ctx, err)
			}
		}
	}
}

func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Scrape gathers the metrics and encodes them as an OTLP
// ExportMetricsServiceRequest; it returns the number of data points.
func (in *Input) Scrape(now time.Time) ([]byte, int, error) {
	fams, err := in.gather.Gather()
	if err != nil && len(fams) == 0 {
		return nil, 0, err
	}
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	attrs := rm.Resource().Attributes()
	attrs.PutStr("service.name", "floe")
	if in.host != "" {
		attrs.PutStr("host.name", in.host)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	points := Convert(sm.Metrics(), fams, in.start, now)
	data, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	return data, points, err
}

// Convert appends Prometheus metric families to an OTLP metric slice and
// returns the number of data points. start is the start time of cumulative
// values; now stamps points without a timestamp of their own.
func Convert(ms pmetric.MetricSlice, fams []*dto.MetricFamily, start, now time.Time) int {
	points := 0
	startTS := pcommon.NewTimestampFromTime(start)
	for _, f := range fams {
		if len(f.GetMetric()) == 0 {
			continue
		}
		m := ms.AppendEmpty()
		m.SetName(f.GetName())
		m.SetDescription(f.GetHelp())
		if u := f.GetUnit(); u != "" {
			m.SetUnit(u)
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for _, pm := range f.GetMetric() {
				dp := sum.DataPoints().AppendEmpty()
				number(dp, pm, pm.GetCounter().GetValue(), startTS, now)
				points++
			}
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for _, pm := range f.GetMetric() {
				histogram(h.DataPoints().AppendEmpty(), pm, startTS, now)
				points++
			}
		case dto.MetricType_SUMMARY:
			s := m.SetEmptySummary()
			for _, pm := range f.GetMetric() {
				dp := s.DataPoints().AppendEmpty()
				sv := pm.GetSummary()
				labels(dp.Attributes(), pm)
				dp.SetStartTimestamp(startTS)
				dp.SetTimestamp(stamp(pm, now))
				dp.SetCount(sv.GetSampleCount())
				dp.SetSum(sv.GetSampleSum())
				for _, q := range sv.GetQuantile() {
					qv := dp.QuantileValues().AppendEmpty()
					qv.SetQuantile(q.GetQuantile())
					qv.SetValue(q.GetValue())
				}
				points++
			}
		default: // gauge, untyped
			g := m.SetEmptyGauge()
			for _, pm := range f.GetMetric() {
				v := pm.GetGauge().GetValue()
				if pm.Untyped != nil {
					v = pm.GetUntyped().GetValue()
				}
				number(g.DataPoints().AppendEmpty(), pm, v, 0, now)
				points++
			}
		}
	}
	return points
}

func number(dp pmetric.NumberDataPoint, pm *dto.Metric, v float64, start pcommon.Timestamp, now time.Time) {
	labels(dp.Attributes(), pm)
	if start != 0 {
		dp.SetStartTimestamp(start)
	}
	dp.SetTimestamp(stamp(pm, now))
	dp.SetDoubleValue(v)
}

func histogram(dp pmetric.HistogramDataPoint, pm *dto.Metric, start pcommon.Timestamp, now time.Time) {
	hv := pm.GetHistogram()
	labels(dp.Attributes(), pm)
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(stamp(pm, now))
	dp.SetCount(hv.GetSampleCount())
	dp.SetSum(hv.GetSampleSum())
	var prev uint64
	for _, b := range hv.GetBucket() {
		c := b.GetCumulativeCount()
		if math.IsInf(b.GetUpperBound(), 1) {
			continue // the +Inf bucket is the overflow bucket below
		}
		dp.ExplicitBounds().Append(b.GetUpperBound())
		dp.BucketCounts().Append(c - min(prev, c))
		prev = c
	}
	total := hv.GetSampleCount()
	dp.BucketCounts().Append(total - min(prev, total))
}

func labels(m pcommon.Map, pm *dto.Metric) {
	for _, l := range pm.GetLabel() {
		m.PutStr(l.GetName(), l.GetValue())
	}
}

func stamp(pm *dto.Metric, now time.Time) pcommon.Timestamp {
	if pm.TimestampMs != nil {
		return pcommon.Timestamp(uint64(pm.GetTimestampMs()) * uint64(time.Millisecond))
	}
	return pcommon.NewTimestampFromTime(now)
}
