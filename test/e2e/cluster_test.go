package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/jsx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// A three-node NATS cluster with replicas 3: the node leading FLOE_IN,
// found at run time, is SIGKILLed while numbered events are still being
// produced and delivered, and every event arrives.
func TestClusterSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	// 15 s of feed: a fresh cluster's first consumer pull can go quiet for
	// a few seconds (CI once saw the whole feed end before any event
	// arrived, leaving the kill nothing to test).
	const total, rate = 60000, 4000
	dir := t.TempDir()
	nodes, urls := startCluster(t, dir)
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush             0.2
    nats.url          %s
    storage.replicas  3

[INPUT]
    Name  stdin
    Tag   seq

[OUTPUT]
    Name   file
    Match  *
    Path   %s
    File   events.log
    Format plain
    Mkdir  on
`, urls, outDir))
	pipeline := startFloePipe(t, "pipeline", "run", "--stage=ingest,filter,router,output", "-c", cfg)
	pipeline.waitLog(`floe started`, 60*time.Second)
	src := feed(pipeline.stdin, total, rate)
	outFile := filepath.Join(outDir, "events.log")
	eventually(t, 60*time.Second, "events flowing", func() (bool, string) {
		// Soon after the first events arrive, so the fault lands with most
		// of the stream still to come even when the start is slow.
		n := countLines(outFile)
		return n >= total/40, fmt.Sprint(n)
	})
	leader := streamLeader(t, urls, jsx.StreamIn)
	var victim *proc
	for i, p := range nodes {
		if leader == fmt.Sprintf("n%d", i) {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("%s is led by %q, not one of the test's nodes n0..n2", jsx.StreamIn, leader)
	}
	requireFlowing(t, "killing "+leader+", the leader of "+jsx.StreamIn, int(src.written.Load()), countLines(outFile), total)
	victim.kill()
	atFault := countLines(outFile)
	eventually(t, time.Minute, "a new leader of "+jsx.StreamIn, func() (bool, string) {
		l := streamLeaderOrEmpty(urls, jsx.StreamIn)
		return l != "" && l != leader, fmt.Sprintf("leader %q", l)
	})
	src.wait(t, 3*time.Minute)
	waitForAll(t, 3*time.Minute, "every event delivered after losing the leader", outFile, seqIDs(0, total), seqLine)
	if n := countLines(outFile); n <= atFault {
		t.Fatalf("no event arrived after the leader was killed (%d at the fault, %d now)", atFault, n)
	}
	time.Sleep(2 * time.Second) // room for a redelivered chunk to show
	pipeline.stdin.Close()
	if err := pipeline.stop(30 * time.Second); err != nil {
		t.Errorf("pipeline exit: %v", err)
	}
	// As for a NATS restart: a chunk the file output wrote whose ack was lost
	// with the killed leader is redelivered and written again; at most the
	// output's MaxAckPending (4) chunks of one flush interval at the feed
	// rate, with room for a backlog chunk.
	requireAtLeastOnce(t, "after losing the leader", compareIDs(seqIDs(0, total), fileIDs(t, outFile, seqLine)), 4*rate,
		"chunks written to the file whose ack went down with the leader are redelivered")
}

// streamLeader is the server name of the cluster node leading a stream.
func streamLeader(t *testing.T, urls, stream string) string {
	t.Helper()
	var l string
	eventually(t, 30*time.Second, "the leader of "+stream, func() (bool, string) {
		l = streamLeaderOrEmpty(urls, stream)
		return l != "", "no leader"
	})
	return l
}

func streamLeaderOrEmpty(urls, stream string) string {
	nc, err := nats.Connect(urls, nats.Timeout(5*time.Second))
	if err != nil {
		return ""
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	info := st.CachedInfo()
	if info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}
