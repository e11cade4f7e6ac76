package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startStalledPipeline runs every stage against a separate NATS process,
// waits until events flow, then freezes NATS with SIGSTOP so nothing that is
// in flight can be acknowledged any more.
func startStalledPipeline(t *testing.T, grace string) (*proc, *proc) {
	t.Helper()
	dir := t.TempDir()
	nats, url := startNATS(t, filepath.Join(dir, "nats"))
	t.Cleanup(func() { _ = nats.cmd.Process.Signal(syscall.SIGCONT) })
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush     0.1
    Grace     %s
    nats.url  %s

[INPUT]
    Name  dummy
    Tag   app
    Rate  200

[OUTPUT]
    Name    stdout
    Match   *
    Format  json_lines
`, grace, url))
	floe := startFloe(t, "floe", nil, "run", "-c", cfg)
	eventually(t, 30*time.Second, "events delivered", func() (bool, string) {
		return strings.Count(floe.stdout.String(), "\n") >= 20, tail(floe.stdout.String(), 200)
	})
	if err := nats.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Let publishes pile up unanswered.
	time.Sleep(time.Second)
	return floe, nats
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// A process whose NATS stopped answering still stops when asked: after the
// grace period it exits non-zero, naming what was in flight.
func TestStopWithUnresponsiveNATSEndsAfterGrace(t *testing.T) {
	const grace = 3 * time.Second
	floe, _ := startStalledPipeline(t, "3")
	start := time.Now()
	if err := floe.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// Before the fix it never exited; grace + 20 s separates the two without
	// betting on this machine's speed.
	err := floe.wait(grace + 20*time.Second)
	took := time.Since(start)
	if code := exitCode(err); code <= 0 {
		t.Fatalf("exit after SIGINT with NATS frozen: %v (code %d), want a non-zero exit", err, code)
	}
	t.Logf("exited %s after SIGINT (grace %s); stderr tail:\n%s", took.Round(100*time.Millisecond), grace, tail(floe.stderr.String(), 600))
	if took < grace {
		t.Errorf("exited after %s, before the grace period %s: in-flight work was not given its chance", took, grace)
	}
	msg := floe.stderr.String()
	for _, want := range []string{"grace period 3s over", "stage ingest had not stopped", "not yet stored by ingest", "stays upstream"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr does not say %q:\n%s", want, tail(msg, 2000))
		}
	}
}

// A second signal does not wait for the grace period.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	floe, _ := startStalledPipeline(t, "120")
	if err := floe.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	floe.waitLog(`stopping; a second signal exits at once`, 20*time.Second)
	if err := floe.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Far inside the 120 s grace period.
	err := floe.wait(30 * time.Second)
	if code := exitCode(err); code <= 0 {
		t.Fatalf("exit after a second signal: %v (code %d), want a prompt non-zero exit", err, code)
	}
	if !strings.Contains(floe.stderr.String(), "second signal") {
		t.Errorf("stderr does not say why it exited:\n%s", tail(floe.stderr.String(), 2000))
	}
}
