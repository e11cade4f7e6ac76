package prometheus

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// benchMetrics is a chunk of n gauge points, one series each.
func benchMetrics(b *testing.B, n int) *chunk.Chunk {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty()
	g.SetName("bench_value")
	dps := g.SetEmptyGauge().DataPoints()
	ts := pcommon.NewTimestampFromTime(time.Unix(1700000000, 0))
	for i := range n {
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("series", strconv.Itoa(i))
		dp.Attributes().PutStr("host", "web-1")
		dp.SetDoubleValue(float64(i))
		dp.SetTimestamp(ts)
	}
	data, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return &chunk.Chunk{ID: "b", Type: chunk.Metrics, Records: 1, Data: data}
}

func BenchmarkRemoteWrite(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	out, err := RemoteWriteSpec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(RemoteWriteSpec(), "host "+host, "port "+port))
	if err != nil {
		b.Fatal(err)
	}
	c := benchMetrics(b, 1000)
	b.SetBytes(int64(len(c.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := out.Flush(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkExporterFlush(b *testing.B) {
	out, err := ExporterSpec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(ExporterSpec(), "host 127.0.0.1", "port 0"))
	if err != nil {
		b.Fatal(err)
	}
	defer plugin.Close(context.Background(), out)
	c := benchMetrics(b, 1000)
	b.SetBytes(int64(len(c.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := out.Flush(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "points/s")
}
