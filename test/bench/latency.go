package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// latencySink receives the http output's json_lines and records, for each
// record, the time from its event time (the client's send time) to its
// arrival.
type latencySink struct {
	port int
	srv  *http.Server
	mu   sync.Mutex
	lat  []time.Duration
	bad  int
}

func newLatencySink() (*latencySink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &latencySink{port: l.Addr().(*net.TCPAddr).Port}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var got []time.Duration
		bad := 0
		for sc.Scan() {
			var rec struct {
				Date float64 `json:"date"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Date == 0 {
				bad++
				continue
			}
			sec := int64(rec.Date)
			t := time.Unix(sec, int64((rec.Date-float64(sec))*1e9))
			got = append(got, now.Sub(t))
		}
		s.mu.Lock()
		s.lat = append(s.lat, got...)
		s.bad += bad
		s.mu.Unlock()
	})}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *latencySink) count() (int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.lat)), s.bad
}

func (s *latencySink) wait(p *proc, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		got, bad := s.count()
		if bad > 0 {
			return fmt.Errorf("latency sink: %d records without a numeric date", bad)
		}
		if got >= want {
			if got > want {
				return fmt.Errorf("latency sink: %d records for %d expected (duplicates?)", got, want)
			}
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) at %d of %d records:\n%s", p.name, p.err, got, want, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, _ := s.count()
	return fmt.Errorf("timed out after %v at %d of %d records:\n%s", timeout, got, want, p.tail())
}

// percentiles returns p50 and p99 in milliseconds.
func (s *latencySink) percentiles() (p50, p99 float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0, 0
	}
	l := append([]time.Duration(nil), s.lat...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	at := func(q float64) float64 {
		return round(float64(l[int(q*float64(len(l)-1))].Microseconds())/1000, 2)
	}
	return at(0.50), at(0.99)
}

func (s *latencySink) close() { _ = s.srv.Close() }
