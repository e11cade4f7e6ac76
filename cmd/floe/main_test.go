package main

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseArgsSplitsFloeFlagsFromShorthand(t *testing.T) {
	c, err := parseArgs([]string{"run", "--stage=ingest,filter", "-c", "x.conf", "--nats-url", "nats://h:4222",
		"-i", "dummy", "-p", "rate=5", "--output=out1", "-o", "stdout", "-m", "*"})
	if err != nil {
		t.Fatal(err)
	}
	if c.command != "run" || c.cfgFile != "x.conf" || c.opts.NATSURL != "nats://h:4222" || c.opts.Output != "out1" {
		t.Fatalf("%+v", c)
	}
	if strings.Join(c.opts.Stages, "|") != "ingest,filter" {
		t.Fatalf("stages %v", c.opts.Stages)
	}
	if strings.Join(c.rest, " ") != "-i dummy -p rate=5 -o stdout -m *" {
		t.Fatalf("shorthand %q", c.rest)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
}

func TestDryRunOfShorthand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--dry-run", "-i", "dummy", "-o", "stdout", "-m", "*"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "configuration test is successful") {
		t.Fatalf("code %d out %q err %q", code, out.String(), errb.String())
	}
	errb.Reset()
	code = run([]string{"--dry-run", "-i", "dummy", "-p", "rate=x", "-o", "stdout"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "key rate") {
		t.Fatalf("code %d err %q", code, errb.String())
	}
}

func TestNoConfiguration(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"run"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no configuration") {
		t.Fatalf("code %d err %q", code, errb.String())
	}
}

// The first signal starts a graceful stop; a second one exits at once.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	var errb syncWriter
	exited := make(chan int, 1)
	ctx, stop := stopOnSignal(&errb, func(code int) { exited <- code })
	defer stop()
	self, _ := os.FindProcess(os.Getpid())
	if err := self.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("first signal did not end the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) on the first signal", code)
	case <-time.After(100 * time.Millisecond):
	}
	if err := self.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code == 0 {
			t.Errorf("second signal exited with status 0")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second signal did not exit")
	}
	if !strings.Contains(errb.String(), "second signal") {
		t.Errorf("stderr %q does not say why it exited", errb.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
