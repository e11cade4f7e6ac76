package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink is an HTTP endpoint that counts the json_lines records it accepts
// and answers 503 until open.
type sink struct {
	mu      sync.Mutex
	seen    map[string]int
	records atomic.Int64
	refused atomic.Int64
	open    atomic.Bool
	srv     *http.Server
	addr    string
}

func newSink(t *testing.T, open bool) *sink {
	t.Helper()
	s := &sink{seen: map[string]int{}}
	s.open.Store(open)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.open.Load() {
			s.refused.Add(1)
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		s.mu.Lock()
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			s.seen[string(line)]++
			s.records.Add(1)
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *sink) distinct() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dups := 0
	for _, n := range s.seen {
		dups += n - 1
	}
	return len(s.seen), dups
}

func httpOutput(alias, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`
[OUTPUT]
    Name         http
    Alias        %s
    Match        *
    Host         %s
    Port         %s
    URI          /ingest
    Format       json_lines
    Retry_Limit  no_limits
`, alias, host, port)
}

func stdinLines(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"n":%d}`+"\n", i)
	}
	return b.Bytes()
}

// A sink that answers RETRY (503) for 30 s and then recovers receives
// everything; meanwhile a second, healthy output is not held back.
func TestRetryingSinkRecoversAndHealthyOutputIsIsolated(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const n = 5000
	down := newSink(t, false)
	healthy := newSink(t, true)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush           0.2
    scheduler.base  1
    scheduler.cap   4
    storage.path    %s

[INPUT]
    Name  stdin
    Tag   app
`, filepath.Join(dir, "state"))+httpOutput("flaky", down.addr)+httpOutput("healthy", healthy.addr))
	start := time.Now()
	p := startFloe(t, "floe", stdinLines(n), "-c", cfg)
	eventually(t, 20*time.Second, "the healthy output has everything while the other is down", func() (bool, string) {
		return healthy.records.Load() >= n, fmt.Sprint(healthy.records.Load())
	})
	if down.records.Load() != 0 || down.refused.Load() == 0 {
		t.Fatalf("the down sink should only have refused requests: records=%d refused=%d", down.records.Load(), down.refused.Load())
	}
	t.Logf("healthy output complete after %s while the other refused %d requests", time.Since(start).Round(time.Millisecond), down.refused.Load())
	time.Sleep(time.Until(start.Add(30 * time.Second)))
	down.open.Store(true)
	t.Logf("sink recovered after %s", time.Since(start).Round(time.Second))
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatalf("floe did not finish after the sink recovered: %v", err)
	}
	for name, s := range map[string]*sink{"flaky": down, "healthy": healthy} {
		got, dups := s.distinct()
		if got != n || dups != 0 {
			t.Errorf("%s sink: %d distinct records (want %d), %d duplicates", name, got, n, dups)
		}
	}
}
