package fluentbitmetrics

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

func props(t *testing.T, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeInput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: Name})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1]})
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindInput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

type receipt struct{ done chan struct{} }

func (r receipt) Done() <-chan struct{} { return r.done }
func (r receipt) Err() error            { return nil }

// signalWriter records metrics payloads as ingest's writer would take them.
type signalWriter struct {
	mu     sync.Mutex
	writes []write
	got    chan struct{}
}

type write struct {
	signal, tag string
	data        []byte
	records     int
}

func (w *signalWriter) Write(context.Context, string, []byte, int) (plugin.Receipt, error) {
	panic("logs written by fluentbit_metrics")
}

func (w *signalWriter) WriteSignal(_ context.Context, signal, tag string, data []byte, records int) (plugin.Receipt, error) {
	w.mu.Lock()
	w.writes = append(w.writes, write{signal, tag, data, records})
	w.mu.Unlock()
	select {
	case w.got <- struct{}{}:
	default:
	}
	d := make(chan struct{})
	close(d)
	return receipt{d}, nil
}

type logsOnly struct{}

func (logsOnly) Write(context.Context, string, []byte, int) (plugin.Receipt, error) { return nil, nil }

func TestScrapesRegistryAsOTLP(t *testing.T) {
	reg := telemetry.NewRegistry("9.9.9")
	reg.Input("dummy.0").Records.Add(42)
	reg.Output("stdout.0").ProcRecords.Add(7)
	reg.Stage("router").Pending.Set(3)
	in, err := New(context.Background(), plugin.Settings{Name: "fluentbit_metrics.1", Telemetry: reg},
		props(t, "scrape_interval", "0.05", "scrape_on_start", "on"))
	if err != nil {
		t.Fatal(err)
	}
	w := &signalWriter{got: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	deadline := time.After(5 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.writes)
		w.mu.Unlock()
		if n >= 3 {
			break
		}
		select {
		case <-w.got:
		case <-deadline:
			t.Fatalf("%d scrapes within 5s", n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wr := w.writes[0]
	if wr.signal != chunk.Metrics || wr.tag != "fluentbit_metrics.1" {
		t.Errorf("write %s %s", wr.signal, wr.tag)
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(wr.data); err != nil {
		t.Fatal(err)
	}
	md := req.Metrics()
	if md.DataPointCount() != wr.records || wr.records == 0 {
		t.Errorf("records %d, data points %d", wr.records, md.DataPointCount())
	}
	rm := md.ResourceMetrics().At(0)
	if v, _ := rm.Resource().Attributes().Get("service.name"); v.Str() != "floe" {
		t.Errorf("service.name %q", v.Str())
	}
	ms := rm.ScopeMetrics().At(0).Metrics()
	found := map[string]bool{}
	for i := range ms.Len() {
		m := ms.At(i)
		switch m.Name() {
		case telemetry.MetricInputRecords:
			if m.Type() != pmetric.MetricTypeSum || !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
				t.Errorf("%s: %s", m.Name(), m.Type())
			}
			dp := m.Sum().DataPoints().At(0)
			if name, _ := dp.Attributes().Get("name"); name.Str() != "dummy.0" || dp.DoubleValue() != 42 {
				t.Errorf("%s{%v} = %v", m.Name(), dp.Attributes().AsRaw(), dp.DoubleValue())
			}
			if dp.StartTimestamp().AsTime().Unix() != reg.StartTime().Unix() {
				t.Errorf("start time %v", dp.StartTimestamp().AsTime())
			}
			found[m.Name()] = true
		case telemetry.MetricStagePending:
			if m.Type() != pmetric.MetricTypeGauge {
				t.Errorf("%s: %s", m.Name(), m.Type())
			}
			found[m.Name()] = true
		case telemetry.MetricOutputProcRecords, telemetry.MetricUptime:
			found[m.Name()] = true
		}
	}
	if len(found) != 4 {
		t.Errorf("found only %v", found)
	}
}

func TestNeedsASignalWriter(t *testing.T) {
	in, err := New(context.Background(), plugin.Settings{Name: "fluentbit_metrics.0"}, props(t, "scrape_on_start", "on"))
	if err != nil {
		t.Fatal(err)
	}
	err = in.Run(context.Background(), logsOnly{})
	if err == nil || !strings.Contains(err.Error(), "WriteSignal") {
		t.Errorf("Run with a logs-only writer: %v", err)
	}
}

func TestDefaultsAndBadInterval(t *testing.T) {
	in, err := New(context.Background(), plugin.Settings{Name: "fluentbit_metrics.0"}, props(t))
	if err != nil {
		t.Fatal(err)
	}
	x := in.(*Input)
	if x.interval != 2*time.Second || x.onStart || x.tag != "fluentbit_metrics.0" {
		t.Errorf("defaults: %v %v %q", x.interval, x.onStart, x.tag)
	}
	if _, err := New(context.Background(), plugin.Settings{}, props(t, "scrape_interval", "0")); err == nil {
		t.Error("scrape_interval 0 accepted")
	}
}

func TestConvertHistogramAndSummary(t *testing.T) {
	g := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lat", Help: "latency", Buckets: []float64{1, 5}})
	h.Observe(0.5)
	h.Observe(3)
	h.Observe(9)
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "sz", Objectives: map[float64]float64{0.5: 0.05}})
	s.Observe(10)
	u := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "u"}, func() float64 { return 4 })
	g.MustRegister(h, s, u)
	in := NewFromGatherer("t", g, time.Second, false, time.Unix(100, 0))
	data, points, err := in.Scrape(time.Unix(200, 0))
	if err != nil || points != 3 {
		t.Fatalf("%d points, %v", points, err)
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(data); err != nil {
		t.Fatal(err)
	}
	ms := req.Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		m := ms.At(i)
		switch m.Name() {
		case "lat":
			dp := m.Histogram().DataPoints().At(0)
			if got := dp.BucketCounts().AsRaw(); len(got) != 3 || got[0] != 1 || got[1] != 1 || got[2] != 1 || dp.Count() != 3 || dp.Sum() != 12.5 {
				t.Errorf("histogram: %v bounds %v count %d sum %v", got, dp.ExplicitBounds().AsRaw(), dp.Count(), dp.Sum())
			}
		case "sz":
			if dp := m.Summary().DataPoints().At(0); dp.Count() != 1 || dp.QuantileValues().Len() != 1 {
				t.Errorf("summary %d %d", dp.Count(), dp.QuantileValues().Len())
			}
		case "u":
			if dp := m.Gauge().DataPoints().At(0); dp.DoubleValue() != 4 || dp.Timestamp().AsTime().Unix() != 200 {
				t.Errorf("untyped %v", dp.DoubleValue())
			}
		}
	}
}
