package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startCluster runs three `floe run --stage=nats` nodes forming one cluster
// and returns them and the client URL list.
func startCluster(t *testing.T, dir string) ([]*proc, string) {
	t.Helper()
	var clientAddrs, routeAddrs []string
	for i := 0; i < 3; i++ {
		clientAddrs = append(clientAddrs, freePort(t))
		routeAddrs = append(routeAddrs, freePort(t))
	}
	var nodes []*proc
	for i := 0; i < 3; i++ {
		var routes []string
		for j, r := range routeAddrs {
			if j != i {
				routes = append(routes, "nats-route://"+r)
			}
		}
		cfg := filepath.Join(dir, fmt.Sprintf("node%d.conf", i))
		writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    nats.server_name     n%d
    nats.listen          %s
    nats.cluster.name    floe-test
    nats.cluster.listen  %s
    nats.cluster.routes  %s
    storage.path         %s
`, i, clientAddrs[i], routeAddrs[i], strings.Join(routes, ","), filepath.Join(dir, fmt.Sprintf("n%d", i))))
		p := startFloe(t, fmt.Sprintf("nats-%d", i), nil, "run", "--stage=nats", "-c", cfg)
		nodes = append(nodes, p)
	}
	for _, p := range nodes {
		p.waitLog(`nats server listening`, 30*time.Second)
	}
	var urls []string
	for _, a := range clientAddrs {
		urls = append(urls, "nats://"+a)
	}
	return nodes, strings.Join(urls, ",")
}

// A three-node NATS cluster with replicas 3: one node is killed mid-stream
// and nothing is lost.
func TestClusterSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 60000
	dir := t.TempDir()
	nodes, urls := startCluster(t, dir)
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush             0.2
    nats.url          %s
    storage.replicas  3

[INPUT]
    Name     dummy
    Tag      app
    Rate     6000
    Samples  %d

[OUTPUT]
    Name   file
    Match  *
    Path   %s
    File   events.log
    Mkdir  on
`, urls, total, outDir))
	pipeline := startFloe(t, "pipeline", nil, "run", "--stage=ingest,filter,router,output", "-c", cfg)
	pipeline.waitLog(`floe started`, 60*time.Second)
	outFile := filepath.Join(outDir, "events.log")
	eventually(t, 60*time.Second, "events flowing", func() (bool, string) {
		n := countLines(outFile)
		return n > total/5, fmt.Sprint(n)
	})
	nodes[1].kill()
	t.Logf("killed nats-1 at %d events delivered", countLines(outFile))
	eventually(t, 3*time.Minute, "every event delivered after losing a node", func() (bool, string) {
		n := countLines(outFile)
		return n >= total, fmt.Sprint(n)
	})
	time.Sleep(time.Second)
	if err := pipeline.stop(30 * time.Second); err != nil {
		t.Errorf("pipeline exit: %v", err)
	}
	checkUnique(t, outFile, total)
}

// checkUnique asserts the out_file lines carry exactly want distinct events.
func checkUnique(t *testing.T, path string, want int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^\S+: \[(\d+\.\d{9}), \{"message":"dummy"\}\]$`)
	seen := map[string]bool{}
	dups := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("unexpected line %q", sc.Text())
		}
		if seen[m[1]] {
			dups++
		}
		seen[m[1]] = true
	}
	if len(seen) != want || dups != 0 {
		t.Fatalf("%d distinct events (want %d), %d duplicates", len(seen), want, dups)
	}
}
