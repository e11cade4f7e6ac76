package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two filter processes share one durable consumer: each takes a share of
// the chunks, and together they deliver every event once.
func TestFilterReplicasShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 20000
	dir := t.TempDir()
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush        0.1
    nats.url     %s
    HTTP_Server  On
    HTTP_Listen  127.0.0.1

[INPUT]
    Name     dummy
    Tag      app
    Rate     10000
    Samples  %d

[FILTER]
    Name    modify
    Match   *
    Add     seen_by replica

[OUTPUT]
    Name   file
    Match  *
    Path   %s
    File   events.log
    Mkdir  on
`, natsURL, total, outDir))
	var httpAddrs []string
	for _, name := range []string{"filter-a", "filter-b"} {
		addr := freePort(t)
		_, port, _ := strings.Cut(addr, ":")
		p := startFloe(t, name, nil, "run", "--stage=filter", "-c", cfg, "--http-port", port)
		p.waitLog(`floe started`, 30*time.Second)
		httpAddrs = append(httpAddrs, addr)
	}
	rest := startFloe(t, "rest", nil, "run", "--stage=ingest,router,output", "-c", cfg, "--http-port", "0")
	rest.waitLog(`floe started`, 30*time.Second)
	outFile := filepath.Join(outDir, "events.log")
	eventually(t, 60*time.Second, "every event delivered", func() (bool, string) {
		n := countLines(outFile)
		return n >= total, fmt.Sprint(n)
	})
	var shares []int64
	for _, addr := range httpAddrs {
		shares = append(shares, getMetrics(t, addr).Floe.Stage["filter"]["chunks_in"])
	}
	t.Logf("chunks per filter replica: %v", shares)
	for i, s := range shares {
		if s == 0 {
			t.Errorf("filter replica %d processed nothing", i)
		}
	}
	if err := rest.stop(20 * time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(time.Second) // room for a duplicate to show
	requireOnce(t, "two filter replicas", compareDistinct(total, fileIDs(t, outFile, outFileEvent("app", `{"message":"dummy","seen_by":"replica"}`))))
}
