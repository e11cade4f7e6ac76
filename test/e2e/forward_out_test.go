package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// One floe sends 20,000 records read from stdin through its forward output
// (shared key, gzip, acks) to another floe's forward input; the sender exits
// only once everything is acked, and the receiver holds every record once.
func TestForwardOutputToForwardInput(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const n = 20000
	dir := t.TempDir()
	addr := freePort(t)
	host, port, _ := net.SplitHostPort(addr)
	outDir := filepath.Join(dir, "out")
	recv := filepath.Join(dir, "recv.conf")
	writeFile(t, recv, fmt.Sprintf(`[SERVICE]
    Flush         0.5
    storage.path  %s

[INPUT]
    Name        forward
    Listen      %s
    Port        %s
    Shared_Key  e2e-key

[OUTPUT]
    Name   file
    Match  *
    Path   %s
    File   events.log
    Mkdir  on
`, filepath.Join(dir, "recv-storage"), host, port, outDir))
	r := startFloe(t, "receiver", nil, "-c", recv)
	r.waitLog(`forward input listening`, 60*time.Second)

	send := filepath.Join(dir, "send.conf")
	writeFile(t, send, fmt.Sprintf(`[SERVICE]
    Flush         0.5
    storage.path  %s

[INPUT]
    Name  stdin
    Tag   sent

[OUTPUT]
    Name                  forward
    Match                 *
    Host                  %s
    Port                  %s
    Shared_Key            e2e-key
    Self_Hostname         sender
    Compress              gzip
    Require_Ack_Response  on
`, filepath.Join(dir, "send-storage"), host, port))
	s := startFloe(t, "sender", stdinLines(n), "-c", send)
	if err := s.wait(3 * time.Minute); err != nil {
		t.Fatalf("sender did not exit cleanly after delivering: %v\n%s", err, tail(s.stderr.String(), 3000))
	}
	out := filepath.Join(outDir, "events.log")
	eventually(t, 2*time.Minute, "every record written by the receiver", func() (bool, string) {
		c := countLines(out)
		return c >= n, fmt.Sprint(c)
	})
	time.Sleep(time.Second) // anything doubled would land now
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[int]int{}
	lines := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		m := outLine.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != "sent" {
			t.Fatalf("line %d: unexpected %q", lines, sc.Text())
		}
		var rec struct {
			N *int `json:"n"`
		}
		if err := json.Unmarshal([]byte(m[4]), &rec); err != nil || rec.N == nil {
			t.Fatalf("line %d: %q: %v", lines, sc.Text(), err)
		}
		seen[*rec.N]++
	}
	for i := 0; i < n; i++ {
		if seen[i] != 1 {
			t.Fatalf("record %d seen %d times (%d distinct, %d lines)", i, seen[i], len(seen), lines)
		}
	}
	if lines != n {
		t.Fatalf("%d lines, want %d", lines, n)
	}
}
