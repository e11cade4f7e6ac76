package prometheus

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

// rwContractSink is the remote write receiver of remotewrite_test.go on a
// listener it can drop and reopen: 503 is its transient fault, 400 its
// permanent one.
type rwContractSink struct {
	*rwSink
	addr string
	hs   *http.Server
}

func newRWContractSink(t *testing.T) *rwContractSink {
	s := &rwContractSink{rwSink: &rwSink{samples: map[string]float64{}}}
	s.listen(t, freeport.Addr(t))
	t.Cleanup(func() { _ = s.hs.Close() })
	return s
}

func (s *rwContractSink) listen(t testing.TB, addr string) {
	var ln net.Listener
	var err error
	for range 50 { // a restarted port may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.hs.Serve(ln) }()
}

func (s *rwContractSink) Config() []string {
	host, port, _ := net.SplitHostPort(s.addr)
	return []string{"host " + host, "port " + port, "uri /api/v1/write"}
}

func (s *rwContractSink) Seqs(testing.TB) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.seqs...)
}

func (s *rwContractSink) Inject(f outputtest.Fault) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = http.StatusServiceUnavailable
	if f == outputtest.Permanent {
		s.status = http.StatusBadRequest
	}
	return true
}

func (s *rwContractSink) Restart(t testing.TB) bool {
	addr := s.addr
	_ = s.hs.Close()
	s.listen(t, addr)
	return true
}

func TestRemoteWriteMetricsContract(t *testing.T) {
	outputtest.RunMetrics(t, RemoteWriteSpec(), func(t *testing.T) outputtest.MetricsSink {
		return newRWContractSink(t)
	}, outputtest.Options{})
}

// exporterScraper scrapes the exporter as Prometheus would. The exporter
// is the server and keeps one value per series, so it has no failure to
// inject, nothing to restart, and cannot show a duplicate: the contract
// checks that every point is served.
type exporterScraper struct{ addr string }

func (s *exporterScraper) Config() []string { return []string{"host 127.0.0.1", "port 0"} }

func (s *exporterScraper) Opened(t testing.TB, out plugin.Output) {
	e, ok := out.(*Exporter)
	if !ok {
		t.Fatalf("prometheus_exporter output is a %T", out)
	}
	s.addr = e.Addr()
}

func (s *exporterScraper) Seqs(t testing.TB) []int64 {
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("scrape is not the text format: %v", err)
	}
	var out []int64
	fam := fams[outputtest.SeqMetric]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() != "seq" {
				continue
			}
			n, err := strconv.ParseInt(l.GetValue(), 10, 64)
			if err != nil {
				t.Errorf("series with seq %q", l.GetValue())
				continue
			}
			if float64(n) != m.GetGauge().GetValue() {
				t.Errorf("series seq=%d has the value %v", n, m.GetGauge().GetValue())
			}
			out = append(out, n)
		}
	}
	return out
}

func (s *exporterScraper) Inject(outputtest.Fault) bool { return false }
func (s *exporterScraper) Restart(testing.TB) bool      { return false }

func TestExporterMetricsContract(t *testing.T) {
	outputtest.RunMetrics(t, ExporterSpec(), func(t *testing.T) outputtest.MetricsSink {
		return &exporterScraper{}
	}, outputtest.Options{})
}
