package httpout

import (
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

// jsonSink is an HTTP server taking the output's default json format (an
// array of records), the way a log collector's HTTP endpoint does.
type jsonSink struct {
	t     *testing.T
	addr  string
	mu    sync.Mutex
	seqs  []int64
	fault *outputtest.Fault
	srv   *http.Server
}

func newJSONSink(t *testing.T) outputtest.Sink {
	s := &jsonSink{t: t}
	s.listen(t, freeport.Addr(t))
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *jsonSink) listen(t testing.TB, addr string) {
	ln, err := freeport.Listen(addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go s.srv.Serve(ln)
}

func (s *jsonSink) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.fault
	s.fault = nil
	s.mu.Unlock()
	if f != nil {
		if *f == outputtest.Permanent {
			http.Error(w, "mapping error", http.StatusBadRequest)
		} else {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}
		return
	}
	var recs []struct {
		Seq int64 `json:"seq"`
	}
	if err := json.NewDecoder(r.Body).Decode(&recs); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, rec := range recs {
		s.seqs = append(s.seqs, rec.Seq)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *jsonSink) Config() []string {
	host, port, _ := net.SplitHostPort(s.addr)
	return []string{"host " + host, "port " + port, "uri /ingest"}
}

func (s *jsonSink) Seqs(testing.TB) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.seqs...)
}

func (s *jsonSink) Inject(f outputtest.Fault) bool {
	s.mu.Lock()
	s.fault = &f
	s.mu.Unlock()
	return true
}

func (s *jsonSink) Restart(t testing.TB) {
	addr := s.addr
	s.srv.Close()
	s.listen(t, addr)
}

func TestContract(t *testing.T) {
	outputtest.Run(t, Spec(), newJSONSink, outputtest.Options{})
}
