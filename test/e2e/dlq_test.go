package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A sink that answers ERROR sends its chunks to the dead-letter stream;
// `floe dlq replay` delivers them once the sink is fixed.
func TestDeadLettersReplayAfterSinkIsFixed(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "state")
	sinkDir := filepath.Join(dir, "not-yet")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush        0.2
    storage.path %s

[INPUT]
    Name  stdin
    Tag   app.orders

[OUTPUT]
    Name   file
    Alias  orders
    Match  app.*
    Path   %s
    File   orders.log
    Format plain
`, storage, sinkDir))
	var in bytes.Buffer
	const n = 3000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, `{"order":%d}`+"\n", i)
	}
	first := startFloe(t, "floe", in.Bytes(), "-c", cfg)
	if err := first.wait(60 * time.Second); err != nil {
		t.Fatalf("first run: %v\n%s", err, tail(first.stderr.String(), 2000))
	}
	if !strings.Contains(first.stderr.String(), "dead letter") {
		t.Fatalf("no dead letter logged:\n%s", tail(first.stderr.String(), 2000))
	}

	list := startFloe(t, "dlq list", nil, "dlq", "list", "-c", cfg)
	if err := list.wait(30 * time.Second); err != nil {
		t.Fatalf("dlq list: %v\n%s", err, list.stderr.String())
	}
	rows := regexp.MustCompile(`(?m)^(\d+)\s+\S+\s+orders\s+app\.orders\s+(\d+)\s+.*not-yet`).FindAllStringSubmatch(list.stdout.String(), -1)
	if len(rows) == 0 {
		t.Fatalf("dlq list shows no letters of output orders:\n%s", list.stdout.String())
	}
	total := 0
	for _, r := range rows {
		var k int
		fmt.Sscan(r[2], &k)
		total += k
	}
	if total != n {
		t.Fatalf("dead letters hold %d records, want %d:\n%s", total, n, list.stdout.String())
	}
	show := startFloe(t, "dlq show", nil, "dlq", "show", "-c", cfg, rows[0][1])
	if err := show.wait(30 * time.Second); err != nil || !strings.Contains(show.stdout.String(), `app.orders: [[`) {
		t.Fatalf("dlq show: %v\n%s%s", err, show.stdout.String(), show.stderr.String())
	}

	if err := os.MkdirAll(sinkDir, 0o755); err != nil {
		t.Fatal(err)
	}
	replay := startFloe(t, "dlq replay", nil, "dlq", "replay", "-c", cfg, "--stage", "orders")
	if err := replay.wait(30 * time.Second); err != nil || !strings.Contains(replay.stdout.String(), fmt.Sprintf("replayed %d dead letter(s)", len(rows))) {
		t.Fatalf("dlq replay: %v\n%s%s", err, replay.stdout.String(), replay.stderr.String())
	}
	// Floe picks the replayed chunks up on its next start; an empty stdin
	// makes it exit once they are delivered.
	second := startFloe(t, "floe", []byte{}, "-c", cfg)
	if err := second.wait(60 * time.Second); err != nil {
		t.Fatalf("second run: %v\n%s", err, tail(second.stderr.String(), 2000))
	}
	requireOnce(t, "the sink after replay", compareIDs(seqIDs(0, n), fileIDs(t, filepath.Join(sinkDir, "orders.log"), regexp.MustCompile(`^\{"order":(\d+)\}$`))))
	after := startFloe(t, "dlq list", nil, "dlq", "list", "-c", cfg)
	if err := after.wait(30 * time.Second); err != nil || !strings.Contains(after.stdout.String(), "0 dead letter(s)") {
		t.Fatalf("letters left after replay: %v\n%s", err, after.stdout.String())
	}
}
