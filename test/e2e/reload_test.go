package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hot reload: a running Floe gets a second output through the reload
// endpoint while numbered events are still arriving on stdin. The first
// output gets every event exactly once across the reload; the new one gets
// every event sent after the reload, once, and none of those the first had
// already delivered (no replay). An invalid configuration sent with SIGHUP
// is refused, logged, and the running one stays.
func TestHotReloadAddsAnOutputWithoutLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total, rate = 6000, 500
	dir := t.TempDir()
	httpAddr := freePort(t)
	_, httpPort, _ := strings.Cut(httpAddr, ":")
	outA, outB := filepath.Join(dir, "a", "events.log"), filepath.Join(dir, "b", "events.log")
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
`, httpPort, filepath.Join(dir, "state"), filepath.Dir(outA))
	writeFile(t, cfg, base)
	p := startFloePipe(t, "floe", "-c", cfg)
	p.waitLog(`floe started`, 30*time.Second)
	src := feed(p.stdin, total, rate)
	eventually(t, 30*time.Second, "events flowing to output a", func() (bool, string) {
		n := countLines(outA)
		return n >= rate/2, fmt.Sprint(n)
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
`, filepath.Dir(outB)))
	deliveredBefore := map[string]bool{}
	for _, id := range completeIDs(t, outA, seqLine) {
		deliveredBefore[id] = true
	}
	requireFlowing(t, "the reload", int(src.written.Load()), len(deliveredBefore), total)
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
	// Every line written from here on was read by the reloaded pipeline.
	after := int(src.written.Load())
	if after >= total {
		t.Fatalf("the whole input was written before the reload completed: nothing tested")
	}
	t.Logf("reloaded with %d of %d lines written", after, total)
	src.wait(t, time.Minute)
	eventually(t, 30*time.Second, "both outputs have the new events", func() (bool, string) {
		a, b := countLines(outA), countLines(outB)
		return a >= total && b >= total-after, fmt.Sprintf("a=%d b=%d", a, b)
	})
	time.Sleep(time.Second) // room for a repeated chunk to show
	p.stdin.Close()
	if err := p.wait(30 * time.Second); err != nil {
		t.Fatalf("exit at end of stdin: %v", err)
	}
	requireOnce(t, "output a, across the reload", compareIDs(seqIDs(0, total), fileIDs(t, outA, seqLine)))

	// Output b: each event once, every one sent after the reload, and of
	// those sent before only some still in flight then, never one output a
	// had already delivered.
	b := compareIDs(seqIDs(after, total), fileIDs(t, outB, seqLine))
	inFlight := 0
	for _, id := range b.unexpected {
		n, err := strconv.Atoi(id)
		switch {
		case err != nil || n < 0 || n >= total:
			t.Errorf("output b has event %q, never sent", id)
		case deliveredBefore[id]:
			t.Errorf("output b replayed event %s, delivered by output a before the reload", id)
		default:
			inFlight++
		}
	}
	b.unexpected = nil
	requireOnce(t, fmt.Sprintf("output b, events sent after the reload (plus %d in flight at the reload)", inFlight), b)
}

// completeIDs is fileIDs on a file still being written: a last line
// without its newline is left out.
func completeIDs(t *testing.T, path string, re *regexp.Regexp) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the sink: %v", err)
	}
	var ids []string
	lines := strings.Split(string(data), "\n")
	for i, l := range lines[:len(lines)-1] {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("%s line %d is not an event as the pipeline makes it: %.300q", filepath.Base(path), i+1, l)
		}
		ids = append(ids, m[1])
	}
	return ids
}
