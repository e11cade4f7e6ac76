package prometheus

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// metricsChunk builds an OTLP metrics chunk: a counter per input, a gauge
// and a histogram.
func metricsChunk(t testing.TB, records float64, buckets []uint64) *chunk.Chunk {
	return metricsChunkAt(t, records, buckets, time.Unix(1700000000, 0))
}

// metricsChunkAt is metricsChunk with every data point stamped at.
func metricsChunkAt(t testing.TB, records float64, buckets []uint64, at time.Time) *chunk.Chunk {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.NewTimestampFromTime(at)

	c := ms.AppendEmpty()
	c.SetName("fluentbit_input_records_total")
	c.SetDescription("Number of input records.")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, name := range []string{"dummy.0", "tail.1"} {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("name", name)
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(records * float64(i+1))
	}

	g := ms.AppendEmpty()
	g.SetName("process.open_fds")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(42)
	dp.SetTimestamp(ts)

	h := ms.AppendEmpty()
	h.SetName("request_seconds")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hist.DataPoints().AppendEmpty()
	hp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	hp.BucketCounts().FromRaw(buckets)
	var n uint64
	for _, b := range buckets {
		n += b
	}
	hp.SetCount(n)
	hp.SetSum(3.5)
	hp.SetTimestamp(ts)

	data, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return &chunk.Chunk{ID: "m", Tag: "metrics", Type: chunk.Metrics, Records: 1, Data: data}
}

func scrape(t *testing.T, e *Exporter) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + e.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("scrape is not the text format: %v\n%s", err, body)
	}
	return fams
}

func openExporter(t *testing.T, lines ...string) *Exporter {
	t.Helper()
	out, err := ExporterSpec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(ExporterSpec(),
		append([]string{"host 127.0.0.1", "port 0"}, lines...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plugin.Close(context.Background(), out) })
	return out.(*Exporter)
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestExporterServesLatestValues(t *testing.T) {
	e := openExporter(t, "add_label app floe", "add_label env prod")
	if err := e.Flush(context.Background(), metricsChunk(t, 10, []uint64{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(context.Background(), metricsChunk(t, 25, []uint64{2, 2, 4})); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, e)
	c := fams["fluentbit_input_records_total"]
	if c == nil || c.GetType() != dto.MetricType_COUNTER || len(c.Metric) != 2 {
		t.Fatalf("counter family %v", c)
	}
	if c.GetHelp() != "Number of input records." {
		t.Errorf("help %q", c.GetHelp())
	}
	for _, m := range c.Metric {
		l := labelsOf(m)
		want := map[string]float64{"dummy.0": 25, "tail.1": 50}[l["name"]]
		if m.GetCounter().GetValue() != want || l["app"] != "floe" || l["env"] != "prod" {
			t.Errorf("series %v = %v, want %v with add_label labels", l, m.GetCounter().GetValue(), want)
		}
	}
	g := fams["process_open_fds"]
	if g == nil || g.GetType() != dto.MetricType_GAUGE || g.Metric[0].GetGauge().GetValue() != 42 {
		t.Errorf("gauge %v", g)
	}
	h := fams["request_seconds"]
	if h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("histogram %v", h)
	}
	hv := h.Metric[0].GetHistogram()
	if hv.GetSampleCount() != 8 || hv.GetSampleSum() != 3.5 || len(hv.Bucket) < 2 ||
		hv.Bucket[0].GetCumulativeCount() != 2 || hv.Bucket[1].GetCumulativeCount() != 4 {
		t.Errorf("histogram %v", hv)
	}
}

// Two filter workers can deliver a metric's snapshots out of order: the
// newest data point stays, an older one arriving later does not replace it.
func TestExporterKeepsNewestDataPoint(t *testing.T) {
	e := openExporter(t)
	t0 := time.Unix(1700000000, 0)
	for _, c := range []*chunk.Chunk{
		metricsChunkAt(t, 20, []uint64{2, 2, 4}, t0.Add(time.Second)),
		metricsChunkAt(t, 10, []uint64{1, 2, 3}, t0), // older, arrives last
	} {
		if err := e.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range scrape(t, e)["fluentbit_input_records_total"].Metric {
		l := labelsOf(m)
		want := map[string]float64{"dummy.0": 20, "tail.1": 40}[l["name"]]
		if m.GetCounter().GetValue() != want {
			t.Errorf("series %v = %v, want the newest %v", l, m.GetCounter().GetValue(), want)
		}
	}
	if err := e.Flush(context.Background(), metricsChunkAt(t, 30, []uint64{2, 2, 4}, t0.Add(2*time.Second))); err != nil {
		t.Fatal(err)
	}
	for _, m := range scrape(t, e)["fluentbit_input_records_total"].Metric {
		if l := labelsOf(m); l["name"] == "dummy.0" && m.GetCounter().GetValue() != 30 {
			t.Errorf("a newer data point did not replace the value: %v", m.GetCounter().GetValue())
		}
	}
}

func TestExporterRefusesLogs(t *testing.T) {
	e := openExporter(t)
	err := e.Flush(context.Background(), outputtest.Chunk(0, 3))
	if !plugin.IsPermanent(err) {
		t.Fatalf("logs chunk answered %v, want ERROR", err)
	}
	bad := &chunk.Chunk{ID: "x", Type: chunk.Metrics, Data: []byte{0xff, 0xff}}
	if err := e.Flush(context.Background(), bad); !plugin.IsPermanent(err) {
		t.Fatalf("garbage metrics chunk answered %v, want ERROR", err)
	}
}

func TestExporterConfigErrors(t *testing.T) {
	for _, lines := range [][]string{{"add_label app"}, {"add_label 1bad v"}} {
		_, err := ExporterSpec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(ExporterSpec(),
			append([]string{"host 127.0.0.1", "port 0"}, lines...)...))
		if err == nil || !strings.Contains(err.Error(), "add_label") {
			t.Errorf("%v: %v", lines, err)
		}
	}
}
