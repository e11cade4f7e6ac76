package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stageOverride is a Compose override file mounting cfg as every stage's
// configuration and out at /out of the output stage.
func stageOverride(cfg, out string) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for _, s := range []string{"ingest", "filter", "router", "output"} {
		fmt.Fprintf(&b, "  %s:\n    volumes:\n      - %q\n", s, cfg+":/etc/floe/floe.conf:ro")
		if s == "output" {
			fmt.Fprintf(&b, "      - %q\n", out+":/out")
		}
	}
	return b.String()
}

// The top-level docker-compose.yml with three filters: 100,000 events arrive
// exactly once; then a second wave of 100,000 while one filter container is
// killed (docker kill: SIGKILL) and another stopped (docker stop: SIGTERM)
// mid-stream, and still every event arrives exactly once: the killed
// filter's chunks come back after the ack wait and are republished with
// their Nats-Msg-Id, which the server deduplicates.
func TestComposeScaledFiltersDeliverEveryEventOnce(t *testing.T) {
	image := requireDocker(t)
	t.Logf("image %s ready (%s)", image, imageDuration.Round(time.Second))
	const wave = 100000
	const body = `{"message":"dummy","via":"filter"}`
	dir := t.TempDir()
	out := worldWritableDir(t)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    nats.ack_wait 3
    Flush         0.1
    Log_Level     info
    HTTP_Server   On
    HTTP_Port     2020
    Health_Check  On

[INPUT]
    Name     dummy
    Tag      app
    Rate     10000
    Samples  %d

[FILTER]
    Name   modify
    Match  app
    Add    via filter

[OUTPUT]
    Name   file
    Match  app
    Path   /out
    File   events.log
`, wave))
	override := filepath.Join(dir, "override.yml")
	writeFile(t, override, stageOverride(cfg, out))

	p := newProject(t, image, "docker-compose.yml", override)
	start := time.Now()
	p.must(5*time.Minute, "up", "-d", "--scale", "filter=3")
	t.Logf("compose up (%s): %s", strings.Join(composeCmd, " "), time.Since(start).Round(time.Millisecond))
	filters := p.containers("filter")
	if len(filters) != 3 {
		t.Fatalf("%d filter containers, want 3", len(filters))
	}

	outFile := filepath.Join(out, "events.log")
	waveStart := time.Now()
	eventually(t, 2*time.Minute, "the first 100,000 events at the output", func() (bool, string) {
		n := countLines(outFile)
		return n >= wave, fmt.Sprintf("%d lines", n)
	})
	t.Logf("wave 1: %d events in %s", wave, time.Since(waveStart).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // room for a duplicate to show
	checkEvents(t, outFile, body, wave, 0, "")

	// Every filter took part.
	for _, id := range filters {
		if n := filterChunks(t, id); n == 0 {
			t.Errorf("filter container %.12s processed no chunk: the filters do not share the work", id)
		} else {
			t.Logf("filter %.12s: %d chunks", id, n)
		}
	}

	// Wave 2: a restarted ingest generates another 100,000 events (new
	// timestamps); one filter is killed and another stopped while they flow.
	p.must(2*time.Minute, "restart", "ingest")
	waveStart = time.Now()
	eventually(t, 2*time.Minute, "the second wave flowing", func() (bool, string) {
		n := countLines(outFile)
		return n >= wave+wave/20, fmt.Sprintf("%d lines", n)
	})
	requireFlowing(t, fmt.Sprintf("docker kill of filter %.12s", filters[1]), -1, countLines(outFile)-wave, wave)
	docker(t, "kill", filters[1])
	requireFlowing(t, fmt.Sprintf("docker stop of filter %.12s", filters[0]), -1, countLines(outFile)-wave, wave)
	stopStart := time.Now()
	docker(t, "stop", "-t", "30", filters[0])
	t.Logf("the stop took %s", time.Since(stopStart).Round(time.Millisecond))
	eventually(t, 2*time.Minute, "all 200,000 events with one filter killed and one stopped", func() (bool, string) {
		n := countLines(outFile)
		return n >= 2*wave, fmt.Sprintf("%d lines", n)
	})
	t.Logf("wave 2: %d events in %s", wave, time.Since(waveStart).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	checkEvents(t, outFile, body, 2*wave, 0, "")

	state := docker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", filters[0])
	if state != "exited 0" {
		t.Errorf("stopped filter: state %q, want a clean exit (exited 0) that restart: unless-stopped leaves stopped", state)
	}
}

// The three-node NATS cluster of deploy/compose/cluster.yml (replicas 3):
// one NATS container is stopped mid-stream and no event is lost.
func TestComposeClusterSurvivesNATSNodeStop(t *testing.T) {
	image := requireDocker(t)
	// The cluster keys of --stage=nats must be known to this floe.
	if out, err := exec.Command(floeBin, "validate", "-c", filepath.Join(repoRoot(), "deploy", "compose", "nats-cluster.conf")).CombinedOutput(); err != nil {
		t.Fatalf("floe validate deploy/compose/nats-cluster.conf: %v\n%s", err, out)
	}
	const total = 60000
	const body = `{"message":"dummy"}`
	dir := t.TempDir()
	out := worldWritableDir(t)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush             0.2
    Log_Level         info
    HTTP_Server       On
    HTTP_Port         2020
    # cluster.yml sets 3
    storage.replicas  ${FLOE_STORAGE_REPLICAS:-1}

[INPUT]
    Name     dummy
    Tag      app
    Rate     5000
    Samples  %d

[OUTPUT]
    Name   file
    Match  app
    Path   /out
    File   events.log
`, total))
	override := filepath.Join(dir, "override.yml")
	writeFile(t, override, stageOverride(cfg, out))

	p := newProject(t, image, filepath.Join("deploy", "compose", "cluster.yml"), override)
	start := time.Now()
	p.must(5*time.Minute, "up", "-d")
	t.Logf("compose up: %s", time.Since(start).Round(time.Millisecond))

	node := p.containers("nats-1")
	if len(node) != 1 {
		t.Fatalf("%d nats-1 containers", len(node))
	}
	outFile := filepath.Join(out, "events.log")
	// Soon after the first events arrive: the stream (12 s) must still be
	// flowing when the node stops, even after a slow start.
	eventually(t, 2*time.Minute, "events flowing through the cluster", func() (bool, string) {
		n := countLines(outFile)
		return n >= total/40, fmt.Sprintf("%d lines", n)
	})
	t.Logf("events flowing %s after compose up", time.Since(start).Round(time.Millisecond))
	requireFlowing(t, "docker stop of nats-1", -1, countLines(outFile), total)
	docker(t, "stop", "-t", "30", node[0])
	eventually(t, 3*time.Minute, "every event delivered with nats-1 stopped", func() (bool, string) {
		n := countLines(outFile)
		return n >= total, fmt.Sprintf("%d lines", n)
	})
	time.Sleep(2 * time.Second)
	// A chunk the output wrote to the file whose ack went to the stopping
	// node is redelivered and written again: at most the output's
	// MaxAckPending (4) chunks of one flush interval (0.2 s at 5,000 a
	// second), with room for a backlog chunk.
	checkEvents(t, outFile, body, total, 4*5000, "chunks written to the file whose ack the stopping node lost are redelivered")
}

// checkEvents asserts the out_file file holds want distinct dummy events
// (by tag and time), each with the expected body, each once, or with up to
// maxDups duplicates for the reason why.
func checkEvents(t *testing.T, path, body string, want, maxDups int, why string) {
	t.Helper()
	d := compareDistinct(want, fileIDs(t, path, outFileEvent("app", body)))
	if maxDups == 0 {
		requireOnce(t, "output", d)
	} else {
		requireAtLeastOnce(t, "output", d, maxDups, why)
	}
}

// filterChunks reads the chunks a filter container has taken in from its
// /api/v1/metrics (the image has no shell: floe healthcheck prints the body).
func filterChunks(t *testing.T, id string) int {
	t.Helper()
	raw := docker(t, "exec", id, "/floe", "healthcheck", "--url", "http://127.0.0.1:2020/api/v1/metrics")
	var m struct {
		Floe struct {
			Stage map[string]struct {
				ChunksIn int `json:"chunks_in"`
			} `json:"stage"`
		} `json:"floe"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("metrics of %.12s: %v: %s", id, err, tail(raw, 500))
	}
	return m.Floe.Stage["filter"].ChunksIn
}
