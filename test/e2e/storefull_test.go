package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// readiness fetches /api/v1/ready.
func readiness(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/api/v1/ready")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// When the embedded server's store is full (a small storage.max_file_store
// and an output that cannot deliver yet), inputs pause, once logged, with a
// metric and readiness false; when the output catches up and frees space
// they resume by themselves and every event arrives exactly once.
func TestFullStorePausesInputsUntilOutputsFreeSpace(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	// ~13 MB of records for a 4 MB store: with 30,000 (~6.6 MB) the reads
	// under way when the store filled took every line in about one run of
	// ten on a 2-vCPU host.
	const lines = 60000
	dir := t.TempDir()
	sk := newSink(t, false)
	httpAddr := freePort(t)
	_, httpPort, _ := strings.Cut(httpAddr, ":")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush                   0.2
    Grace                   5
    storage.max_file_store  4M
    # byte limits count stored bytes; these events compress several-fold
    storage.compression     none
    scheduler.base          1
    scheduler.cap           2
    HTTP_Server             On
    HTTP_Listen             127.0.0.1
    HTTP_Port               %s

[INPUT]
    Name  stdin
    Tag   lines
`, httpPort)+httpOutput("sink", sk.addr))

	p := startFloePipe(t, "floe", "run", "-c", cfg, "--storage-path", filepath.Join(dir, "state"))
	started := time.Now()
	var written atomic.Int64
	writerDone := make(chan error, 1)
	pad := strings.Repeat("p", 200)
	go func() {
		w := bufio.NewWriterSize(p.stdin, 4096)
		for i := 0; i < lines; i++ {
			if _, err := fmt.Fprintf(w, `{"n":%d,"pad":"%s"}`+"\n", i, pad); err != nil {
				writerDone <- err
				return
			}
			written.Add(1)
		}
		writerDone <- w.Flush()
	}()

	// The sink refuses everything: the output stream grows until the store
	// is full, and then ingest pauses.
	eventually(t, 90*time.Second, "inputs paused with the store full", func() (bool, string) {
		m := getMetrics(t, httpAddr)
		st := m.Floe.Stage["ingest"]
		return st["storage_full"] == 1 && st["paused_inputs"] == 1, fmt.Sprintf("ingest %v, %d lines written", st, written.Load())
	})
	code, body := readiness(httpAddr)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "storage is full") {
		t.Errorf("readiness with the store full: %d %q, want 503 naming the full storage", code, body)
	}
	prom := fetch(t, "http://"+httpAddr+"/api/v1/metrics/prometheus")
	if !strings.Contains(prom, `floe_stage_storage_full{stage="ingest"} 1`) {
		t.Errorf("prometheus metrics lack floe_stage_storage_full 1:\n%s", grepLines(prom, "floe_stage_"))
	}
	// Paused means paused: once the reads already under way are done (a
	// read buffer, the chunk being built, the chunks waiting for the
	// sender: on a loaded host that took over 2,000 lines) stdin is not
	// read any further.
	stalled := written.Load()
	for settle := time.Now().Add(15 * time.Second); ; {
		time.Sleep(500 * time.Millisecond)
		now := written.Load()
		if now == stalled {
			break
		}
		if time.Now().After(settle) {
			t.Errorf("stdin still being read 15 s after the inputs paused: %d lines written", now)
			break
		}
		stalled = now
	}
	time.Sleep(2 * time.Second)
	if got := written.Load(); got > stalled+300 {
		t.Errorf("stdin kept being read while paused: %d → %d lines", stalled, got)
	}
	// Logged, but not per refused publish: once per 10 s at most.
	if n, most := countLinesWith(p.stderr.String(), "level=WARN", "JetStream storage is full"), 1+int(time.Since(started)/(10*time.Second)); n < 1 || n > most {
		t.Errorf("the full store was logged %d times, want 1..%d (once per 10 s):\n%s", n, most, grepLines(p.stderr.String(), "paused"))
	}
	if n := int(written.Load()); n >= lines {
		t.Fatalf("all %d lines were taken before the store filled; the test needs more data", n)
	}

	// The output recovers: the stream is emptied as it acknowledges, space
	// returns, inputs resume by themselves.
	sk.open.Store(true)
	eventually(t, 120*time.Second, "every line written and ready again", func() (bool, string) {
		select {
		case err := <-writerDone:
			if err != nil {
				t.Fatalf("writing stdin: %v", err)
			}
			writerDone <- nil
		default:
			return false, fmt.Sprintf("%d lines written, sink has %d", written.Load(), sk.records.Load())
		}
		code, body := readiness(httpAddr)
		return code == http.StatusOK, fmt.Sprintf("readiness %d %q", code, body)
	})
	if !strings.Contains(p.stderr.String(), "inputs resumed") {
		t.Errorf("no 'inputs resumed' line:\n%s", tail(p.stderr.String(), 2000))
	}
	p.stdin.Close()
	if err := p.wait(120 * time.Second); err != nil {
		t.Fatalf("floe after end of input: %v", err)
	}

	// Identity: each line once.
	seen := make([]int, lines)
	sk.mu.Lock()
	var bad []string
	for line, count := range sk.seen {
		var rec struct {
			N *int `json:"n"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.N == nil || *rec.N < 0 || *rec.N >= lines {
			bad = append(bad, line)
			continue
		}
		seen[*rec.N] += count
	}
	sk.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d unexpected records, e.g. %.200s", len(bad), bad[0])
	}
	var missing, dups []int
	for n, c := range seen {
		switch {
		case c == 0:
			missing = append(missing, n)
		case c > 1:
			dups = append(dups, n)
		}
	}
	if len(missing) > 0 || len(dups) > 0 {
		t.Fatalf("%d of %d lines missing (first %v), %d duplicated (first %v)", len(missing), lines, head(missing), len(dups), head(dups))
	}
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// countLinesWith counts the lines of s containing every one of subs.
func countLinesWith(s string, subs ...string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(l, sub)
		}
		if all {
			n++
		}
	}
	return n
}
