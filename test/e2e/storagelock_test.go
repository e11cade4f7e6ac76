package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var dummyLine = regexp.MustCompile(`(?m)^\[\d+\] dummy\.0: `)

// Two floe processes on one storage path: the second refuses at once, naming
// the path and the holder, and the first keeps delivering. After a SIGKILL of
// the holder the path is free again at once (the kernel drops the flock).
func TestSecondProcessOnOneStoragePathRefuses(t *testing.T) {
	storage := t.TempDir()
	args := []string{"run", "--storage-path", storage, "-i", "dummy", "-p", "rate=20", "-o", "stdout", "-m", "*", "-f", "0.2"}
	delivered := func(p *proc) int { return len(dummyLine.FindAllString(p.stdout.String(), -1)) }

	first := startFloe(t, "first", nil, args...)
	eventually(t, 30*time.Second, "first process delivering", func() (bool, string) {
		return delivered(first) >= 3, tail(first.stdout.String(), 200)
	})

	second := startFloe(t, "second", nil, args...)
	err := second.wait(30 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("second process on the same storage path: %v, want a non-zero exit", err)
	}
	msg := second.stderr.String()
	for _, want := range []string{storage, "process " + strconv.Itoa(first.cmd.Process.Pid), "storage.path", "--storage-path"} {
		if !strings.Contains(msg, want) {
			t.Errorf("second process's message does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(second.stdout.String(), "dummy.0") {
		t.Errorf("second process delivered events from a store it does not own:\n%s", tail(second.stdout.String(), 300))
	}

	// The first one was not disturbed: it keeps delivering.
	before := delivered(first)
	eventually(t, 30*time.Second, "first process still delivering", func() (bool, string) {
		n := delivered(first)
		return n >= before+5, fmt.Sprintf("%d events, %d before the second process", n, before)
	})
	select {
	case <-first.done:
		t.Fatalf("first process exited: %v", first.err)
	default:
	}

	// A crashed holder leaves no stale lock.
	first.kill()
	third := startFloe(t, "third", nil, args...)
	eventually(t, 30*time.Second, "a new process delivering on the freed path", func() (bool, string) {
		select {
		case <-third.done:
			return false, fmt.Sprintf("exited: %v\n%s", third.err, tail(third.stderr.String(), 500))
		default:
		}
		return delivered(third) >= 3, tail(third.stdout.String(), 200)
	})
	if err := third.stop(30 * time.Second); err != nil {
		t.Fatalf("third process: %v", err)
	}
}
