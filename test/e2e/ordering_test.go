package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// With ordering per_tag, two filter replicas and a SIGKILL of one of them
// mid-stream, each tag's events reach the output in the order they were
// generated, every one of them.
func TestPerTagOrderingSurvivesReplicaLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const perTag = 60000
	dir := t.TempDir()
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	out := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    nats.ack_wait 3
    Flush     0.05
    nats.url  %s
    ordering  per_tag

[INPUT]
    Name     dummy
    Tag      app.a
    Rate     6000
    Samples  %d

[INPUT]
    Name     dummy
    Tag      app.b
    Rate     6000
    Samples  %d

[FILTER]
    Name    modify
    Match   *
    Add     ordered yes

[OUTPUT]
    Name   file
    Match  *
    Path   %s
    Mkdir  on
`, natsURL, perTag, perTag, out))
	filters := []*proc{}
	for _, name := range []string{"filter-a", "filter-b"} {
		p := startFloe(t, name, nil, "run", "--stage=filter", "-c", cfg)
		p.waitLog(`floe started`, 30*time.Second)
		filters = append(filters, p)
	}
	rest := startFloe(t, "rest", nil, "run", "--stage=ingest,router,output", "-c", cfg)
	rest.waitLog(`floe started`, 30*time.Second)
	fa, fb := filepath.Join(out, "app.a"), filepath.Join(out, "app.b")
	eventually(t, 60*time.Second, "events flowing", func() (bool, string) {
		return countLines(fa) > perTag/4, fmt.Sprint(countLines(fa))
	})
	// Freeze one replica with chunks in hand (as a stuck or partitioned
	// process would be), long enough for its unacknowledged chunks to be
	// redelivered elsewhere, then kill it.
	_ = filters[0].cmd.Process.Signal(syscall.SIGSTOP)
	t.Logf("froze filter-a at %d events of app.a", countLines(fa))
	time.Sleep(5 * time.Second) // beyond nats.ack_wait (3 s)
	filters[0].kill()
	eventually(t, 2*time.Minute, "every event of both tags", func() (bool, string) {
		a, b := countLines(fa), countLines(fb)
		return a >= perTag && b >= perTag, fmt.Sprintf("a=%d b=%d", a, b)
	})
	time.Sleep(time.Second)
	if err := rest.stop(20 * time.Second); err != nil {
		t.Error(err)
	}
	line := regexp.MustCompile(`^app\.[ab]: \[(\d+\.\d{9}), \{"message":"dummy","ordered":"yes"\}\]$`)
	for _, f := range []string{fa, fb} {
		// The frozen replica's chunks were processed again by the other one
		// and republished with their Nats-Msg-Id: no duplicates either.
		requireOnce(t, filepath.Base(f), compareDistinct(perTag, fileIDs(t, f, line)))
		b, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != perTag {
			t.Fatalf("%s: %d events, want %d", filepath.Base(f), len(lines), perTag)
		}
		prev := ""
		for i, l := range lines {
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("%s line %d: %q", filepath.Base(f), i, l)
			}
			// Same width: seconds and nine-digit nanoseconds compare as strings.
			if prev != "" && m[1] <= prev {
				t.Fatalf("%s: event %d (%s) arrived after a later one (%s)", filepath.Base(f), i, m[1], prev)
			}
			prev = m[1]
		}
	}
}
