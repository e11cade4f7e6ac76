package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hot reload: a running Floe gets a second output through the reload
// endpoint; new events reach both outputs and none is lost across the
// reload. An invalid configuration sent with SIGHUP is refused, logged, and
// the running one stays.
func TestHotReloadAddsAnOutputWithoutLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	httpAddr := freePort(t)
	_, httpPort, _ := strings.Cut(httpAddr, ":")
	outA, outB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cfg := filepath.Join(dir, "floe.conf")
	base := fmt.Sprintf(`[SERVICE]
    Flush        0.2
    Hot_Reload   On
    HTTP_Server  On
    HTTP_Listen  127.0.0.1
    HTTP_Port    %s
    storage.path %s

[INPUT]
    Name  stdin
    Tag   app

[OUTPUT]
    Name   file
    Alias  first
    Match  *
    Path   %s
    File   events.log
    Format plain
    Mkdir  on
`, httpPort, filepath.Join(dir, "state"), outA)
	writeFile(t, cfg, base)
	p := startFloePipe(t, "floe", "-c", cfg)
	p.waitLog(`floe started`, 30*time.Second)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			fmt.Fprintf(p.stdin, `{"n":%d}`+"\n", i)
		}
	}
	send(0, 1000)
	eventually(t, 30*time.Second, "first batch at output a", func() (bool, string) {
		n := countLines(filepath.Join(outA, "events.log"))
		return n == 1000, fmt.Sprint(n)
	})

	// An invalid configuration is refused and logged; Floe keeps running.
	writeFile(t, cfg, base+"\n[OUTPUT]\n    Name  nosuch\n    Match *\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(`reload refused.*unknown output plugin`, 15*time.Second)

	// A good configuration with a second output.
	writeFile(t, cfg, base+fmt.Sprintf(`
[OUTPUT]
    Name   file
    Alias  second
    Match  *
    Path   %s
    File   events.log
    Format plain
    Mkdir  on
`, outB))
	resp, err := http.Post("http://"+httpAddr+"/api/v2/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload answered %d: %s", resp.StatusCode, body)
	}
	p.waitLog(`configuration reloaded`, 30*time.Second)
	send(1000, 3000)
	eventually(t, 30*time.Second, "both outputs have the new events", func() (bool, string) {
		a, b := countLines(filepath.Join(outA, "events.log")), countLines(filepath.Join(outB, "events.log"))
		return a == 3000 && b >= 2000, fmt.Sprintf("a=%d b=%d", a, b)
	})
	p.stdin.Close()
	if err := p.wait(30 * time.Second); err != nil {
		t.Fatalf("exit at end of stdin: %v", err)
	}
	a, _ := os.ReadFile(filepath.Join(outA, "events.log"))
	for i := 0; i < 3000; i++ {
		if !strings.Contains(string(a), fmt.Sprintf(`{"n":%d}`+"\n", i)) {
			t.Fatalf("event %d missing at output a", i)
		}
	}
}
