package loki

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/floe-io/floe/internal/plugin/outputtest"
)

type contractSink struct {
	*lokiSink
	format string
}

func (s contractSink) Config() []string {
	host, port, _ := net.SplitHostPort(s.addr)
	return []string{"host " + host, "port " + port, "format " + s.format}
}

func (s contractSink) Seqs(t testing.TB) []int64 {
	var out []int64
	for _, e := range s.stored() {
		var rec struct {
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(e.Line), &rec); err != nil || rec.Seq == nil {
			t.Errorf("stored line %q has no seq: %v", e.Line, err)
			continue
		}
		out = append(out, *rec.Seq)
	}
	return out
}

func (s contractSink) Inject(f outputtest.Fault) bool {
	k := faultRetry
	if f == outputtest.Permanent {
		k = faultRefuse
	}
	s.mu.Lock()
	s.fault = &k
	s.mu.Unlock()
	return true
}

func (s contractSink) Restart(t testing.TB) {
	addr := s.addr
	s.srv.Close()
	s.listen(t, addr)
}

func TestContract(t *testing.T) {
	for _, f := range []string{"json", "protobuf"} {
		t.Run(f, func(t *testing.T) {
			outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink {
				return contractSink{newLokiSink(t), f}
			}, outputtest.Options{})
		})
	}
}
