package storelock

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSecondAcquireNamesHolderAndPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire: %v, want a HeldError", err)
	}
	if held.PID != os.Getpid() || held.Dir != dir {
		t.Errorf("HeldError = %+v, want pid %d dir %s", held, os.Getpid(), dir)
	}
	msg := err.Error()
	for _, want := range []string{dir, strconv.Itoa(os.Getpid()), "storage.path", "--storage-path"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

// Files beside the lock (the WASM compilation cache lives under the same
// storage.path) are neither locked nor touched.
func TestOtherFilesStayShared(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "wasm-cache")
	if err := os.WriteFile(cache, []byte("compiled"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	f, err := os.OpenFile(cache, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("shared file not openable while the store is locked: %v", err)
	}
	f.Close()
	if b, _ := os.ReadFile(cache); string(b) != "compiled" {
		t.Errorf("shared file changed: %q", b)
	}
}

const helperEnv = "STORELOCK_TEST_HOLD"

// TestMain turns the test binary into a lock holder when asked, so tests can
// kill a real process that holds the lock.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		if _, err := Acquire(dir); err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestKilledHolderLeavesNoStaleLock(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	_, err = Acquire(dir)
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("Acquire while another process holds the lock: %v", err)
	}
	if held.PID != cmd.Process.Pid {
		t.Errorf("holder pid = %d, want %d", held.PID, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire right after the holder was SIGKILLed: %v", err)
	}
	defer l.Release()
	b, _ := os.ReadFile(l.Path())
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want this pid %d", b, os.Getpid())
	}
}
