package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rssBytes reads a process's resident memory from /proc.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return -1
}

type ingestMetrics struct {
	Input map[string]map[string]uint64 `json:"input"`
	Floe  struct {
		Stage map[string]map[string]int64 `json:"stage"`
	} `json:"floe"`
}

func getMetrics(t *testing.T, addr string) ingestMetrics {
	t.Helper()
	var m ingestMetrics
	resp, err := http.Get("http://" + addr + "/api/v1/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &m)
	return m
}

// With FLOE_IN full, a stdin input stops reading (its writer blocks) and a
// dummy input pauses; both resume once the pipeline drains, nothing is
// lost, and ingest's memory stays bounded meanwhile.
func TestFullBufferPausesInputsWithoutLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const lines = 150000
	const samples = 10000
	const rssBound = 200 << 20
	dir := t.TempDir()
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	httpAddr := freePort(t)
	_, httpPort, _ := strings.Cut(httpAddr, ":")
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush                     0.2
    nats.url                  %s
    storage.total_limit_size  2M
    # byte limits count stored bytes; these events compress several-fold
    storage.compression       none
    HTTP_Server               On
    HTTP_Listen               127.0.0.1
    HTTP_Port                 %s

[INPUT]
    Name  stdin
    Tag   lines

[INPUT]
    Name     dummy
    Tag      ticks
    Rate     2000
    Samples  %d

[OUTPUT]
    Name    file
    Match   *
    Path    %s
    Mkdir   on
`, natsURL, httpPort, samples, outDir))

	cmd := exec.Command(floeBin, "run", "--stage=ingest", "-c", cfg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("ingest stderr:\n%s", tail(stderr.String(), 3000))
		}
	})

	var written atomic.Int64
	writerDone := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(stdin, 4096)
		for i := 0; i < lines; i++ {
			if _, err := fmt.Fprintf(w, `{"line":%d,"text":"%s"}`+"\n", i, strings.Repeat("x", 40)); err != nil {
				writerDone <- err
				return
			}
			written.Add(1)
		}
		if err := w.Flush(); err != nil {
			writerDone <- err
			return
		}
		writerDone <- stdin.Close()
	}()

	// Nothing consumes FLOE_IN yet: it fills, ingest pauses its inputs.
	eventually(t, 60*time.Second, "inputs paused", func() (bool, string) {
		m := getMetrics(t, httpAddr)
		return m.Floe.Stage["ingest"]["paused_inputs"] == 2, fmt.Sprint(m.Floe.Stage["ingest"])
	})
	time.Sleep(500 * time.Millisecond)
	before := written.Load()
	ticksBefore := getMetrics(t, httpAddr).Input["dummy.1"]["records"]
	time.Sleep(2 * time.Second)
	if after := written.Load(); after != before {
		t.Fatalf("stdin kept being read while paused: %d → %d lines written", before, after)
	}
	if after := getMetrics(t, httpAddr).Input["dummy.1"]["records"]; after != ticksBefore {
		t.Fatalf("dummy kept generating while paused: %d → %d", ticksBefore, after)
	}
	if before >= lines {
		t.Fatalf("the whole input fit before the pause; make it larger")
	}
	rss := rssBytes(cmd.Process.Pid)
	t.Logf("paused after %d of %d lines; ingest RSS %d MiB (bound %d MiB)", before, lines, rss>>20, rssBound>>20)
	if rss > rssBound {
		t.Fatalf("ingest RSS %d bytes while paused, bound %d", rss, rssBound)
	}

	// Start the rest of the pipeline: the buffer drains, inputs resume.
	rest := startFloe(t, "rest", nil, "run", "--stage=filter,router,output", "-c", cfg, "--http-port", "0")
	rest.waitLog(`floe started`, 30*time.Second)
	select {
	case err := <-writerDone:
		if err != nil {
			t.Fatalf("writing stdin: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("stdin writer still blocked after the pipeline drained (%d lines written)", written.Load())
	}
	eventually(t, 2*time.Minute, "every line and tick delivered", func() (bool, string) {
		a, b := countLines(filepath.Join(outDir, "lines")), countLines(filepath.Join(outDir, "ticks"))
		return a >= lines && b >= samples, fmt.Sprintf("%d lines, %d ticks", a, b)
	})
	time.Sleep(time.Second)
	requireOnce(t, "stdin lines", compareIDs(seqIDs(0, lines),
		fileIDs(t, filepath.Join(outDir, "lines"), regexp.MustCompile(`^lines: \[\d+\.\d{9}, \{"line":(\d+),"text":"x{40}"\}\]$`))))
	requireOnce(t, "dummy ticks", compareDistinct(samples, fileIDs(t, filepath.Join(outDir, "ticks"), outFileEvent("ticks", `{"message":"dummy"}`))))
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Error("ingest did not exit")
	}
	if err := rest.stop(20 * time.Second); err != nil {
		t.Error(err)
	}
}
