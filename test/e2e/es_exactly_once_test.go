package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// esSink is a bulk API endpoint with Elasticsearch's item semantics for
// create: a document is keyed by its _id, a second create of the same _id
// is answered 409, a create without _id gets a fresh id. It signals on took
// once it has stored a bulk and then waits before answering, so the test
// can kill the output stage after the sink took a bulk and before the chunk
// was acknowledged: the moment that makes a redelivery.
type esSink struct {
	mu        sync.Mutex
	bySeq     map[int]int // seq -> documents holding it
	ids       map[string]bool
	items     int
	conflicts int
	auto      int
	took      chan struct{}
}

func (s *esSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var items []string
	errors := false
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 64<<20)
	s.mu.Lock()
	for sc.Scan() {
		var action map[string]struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || !sc.Scan() {
			s.mu.Unlock()
			http.Error(w, "malformed bulk", http.StatusBadRequest)
			return
		}
		var doc struct {
			Seq int `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			s.mu.Unlock()
			http.Error(w, "malformed document", http.StatusBadRequest)
			return
		}
		s.items++
		id := action["create"].ID
		if id == "" {
			s.auto++
			id = fmt.Sprintf("auto-%d", s.auto)
		}
		if s.ids[id] {
			s.conflicts++
			errors = true
			items = append(items, `{"create":{"_id":"`+id+`","status":409,"error":{"type":"version_conflict_engine_exception"}}}`)
			continue
		}
		s.ids[id] = true
		s.bySeq[doc.Seq]++
		items = append(items, `{"create":{"_id":"`+id+`","status":201,"result":"created"}}`)
	}
	s.mu.Unlock()
	select {
	case s.took <- struct{}{}:
	default:
	}
	time.Sleep(300 * time.Millisecond)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"took":1,"errors":%v,"items":[`, errors)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(it)
	}
	b.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
}

func (s *esSink) stored() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// The output stage is SIGKILLed mid-stream and restarted, several times,
// while it delivers to a bulk API: every record is stored exactly once,
// because each document's _id derives from the chunk's id and the record's
// index, so a redelivered chunk's creates are refused as existing (issue 14 item 11).
func TestESOutputKilledStoresEveryRecordOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 30000
	dir := t.TempDir()
	sink := &esSink{bySeq: map[int]int{}, ids: map[string]bool{}, took: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sink}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	host, port, _ := net.SplitHostPort(ln.Addr().String())

	var in bytes.Buffer
	for i := range total {
		fmt.Fprintf(&in, `{"seq":%d,"payload":"event-%d"}`+"\n", i, i)
	}
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    nats.ack_wait 3
    Flush     0.2
    nats.url  %s

[INPUT]
    Name  stdin
    Tag   seq

[OUTPUT]
    Name                es
    Match               seq
    Host                %s
    Port                %s
    Suppress_Type_Name  on
    Retry_Limit         no_limits
`, natsURL, host, port))

	start := func(name, stage string) *proc {
		p := startFloe(t, name, nil, "run", "--stage="+stage, "-c", cfg)
		p.waitLog(`floe started`, 60*time.Second)
		return p
	}
	filter := start("filter", "filter")
	router := start("router", "router")
	output := start("output", "output")
	ingest := startFloe(t, "ingest", in.Bytes(), "run", "--stage=ingest", "-c", cfg)

	kills := 0
	deadline := time.Now().Add(4 * time.Minute)
	for sink.stored() < total {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records stored after %d kills", sink.stored(), total, kills)
		}
		select {
		case <-sink.took:
			// The sink holds a bulk the output has not been answered for.
			if kills < 8 {
				output.kill()
				kills++
				output = start("output", "output")
			}
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := ingest.wait(60 * time.Second); err != nil {
		t.Fatalf("ingest did not finish at end of stdin: %v", err)
	}
	time.Sleep(2 * time.Second) // let any redelivery land before counting
	for _, p := range []*proc{filter, router, output} {
		if err := p.stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}

	sink.mu.Lock()
	defer sink.mu.Unlock()
	missing, dups := 0, 0
	for i := range total {
		switch n := sink.bySeq[i]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	t.Logf("%d kills; %d bulk items received, %d refused as already stored (redeliveries), %d documents, %d auto ids",
		kills, sink.items, sink.conflicts, len(sink.ids), sink.auto)
	if sink.conflicts == 0 {
		t.Errorf("no chunk was delivered twice, so the test proved nothing")
	}
	if missing != 0 || dups != 0 || sink.auto != 0 {
		t.Fatalf("%d records missing, %d stored more than once, %d documents without a stable _id", missing, dups, sink.auto)
	}
}
