package opentelemetry

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/grpc/codes"

	"github.com/floe-io/floe/internal/plugin/outputtest"
)

// contractSink runs the shared output contract against the pdata OTLP
// receiver: a 503 or Unavailable is the transient fault, a 400 or
// InvalidArgument the permanent one.
type contractSink struct {
	*otlpSink
	extra []string
}

func (s contractSink) Config() []string { return s.config(s.extra...) }

func (s contractSink) Seqs(t testing.TB) []int64 { return s.seqs(t) }

func (s contractSink) Inject(f outputtest.Fault) bool {
	switch {
	case f == outputtest.Transient && s.grpc:
		s.inject(fault{code: codes.Unavailable, message: "receiver busy"})
	case f == outputtest.Transient:
		s.inject(fault{httpStatus: http.StatusServiceUnavailable, message: "receiver busy"})
	case s.grpc:
		s.inject(fault{code: codes.InvalidArgument, message: "bad data"})
	default:
		s.inject(fault{httpStatus: http.StatusBadRequest, message: "bad data"})
	}
	return true
}

func (s contractSink) Restart(t testing.TB) {
	addr := s.addr
	s.stop()
	s.listen(t, addr)
}

func TestContract(t *testing.T) {
	for _, c := range []struct {
		name  string
		grpc  bool
		extra []string
	}{
		{"http_protobuf", false, nil},
		{"http_json_gzip", false, []string{"format json", "compress gzip"}},
		{"grpc", true, nil},
		{"grpc_gzip", true, []string{"compress gzip"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink {
				return contractSink{newSink(t, c.grpc), c.extra}
			}, outputtest.Options{})
		})
	}
}

// metricsContractSink runs the metrics contract against the same receiver.
type metricsContractSink struct{ contractSink }

func (s metricsContractSink) Seqs(t testing.TB) []int64 {
	s.mu.Lock()
	mds := append([]pmetric.Metrics(nil), s.metrics...)
	s.mu.Unlock()
	var out []int64
	for _, md := range mds {
		out = append(out, outputtest.MetricSeqs(t, md)...)
	}
	return out
}

func (s metricsContractSink) Restart(t testing.TB) bool {
	s.contractSink.Restart(t)
	return true
}

func TestMetricsContract(t *testing.T) {
	for _, c := range []struct {
		name  string
		grpc  bool
		extra []string
	}{
		{"http_protobuf", false, nil},
		{"http_json_labels", false, []string{"format json", "add_label env test"}},
		{"grpc", true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			outputtest.RunMetrics(t, Spec(), func(t *testing.T) outputtest.MetricsSink {
				return metricsContractSink{contractSink{newSink(t, c.grpc), c.extra}}
			}, outputtest.Options{})
		})
	}
}
