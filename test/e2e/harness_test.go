// Package e2e starts real floe processes and checks what a user would see.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var floeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "floe-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	floeBin = filepath.Join(dir, "floe")
	build := exec.Command("go", "build", "-o", floeBin, "./cmd/floe")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building floe:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// syncBuffer collects a process's output safely across goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type proc struct {
	stdin  io.WriteCloser // set by startFloePipe
	t      *testing.T
	name   string
	args   []string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// startFloePipe runs floe with a pipe on its stdin (p.stdin).
func startFloePipe(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(floeBin, args...)
	p.cmd.Dir = repoRoot()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	w, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s stderr (tail):\n%s", p.name, tail(p.stderr.String(), 3000))
		}
	})
	return p
}

// startFloe runs the floe binary with args; it is killed at test end if still running.
func startFloe(t *testing.T, name string, stdin []byte, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(floeBin, args...)
	p.cmd.Dir = repoRoot()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if stdin != nil {
		p.cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s stderr (tail):\n%s", p.name, tail(p.stderr.String(), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// waitLog waits for a line of stderr matching re and returns its submatches.
func (p *proc) waitLog(re string, timeout time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.stderr.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before logging %q; stderr:\n%s", p.name, p.err, re, tail(p.stderr.String(), 3000))
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s did not log %q within %s; stderr:\n%s", p.name, re, timeout, tail(p.stderr.String(), 3000))
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(timeout time.Duration) error {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s after SIGTERM", p.name, timeout)
	}
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// wait waits for the process to exit by itself.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

// startNATS runs `floe run --stage=nats` on a free port and returns its URL.
func startNATS(t *testing.T, storage string) (*proc, string) {
	t.Helper()
	p := startFloe(t, "nats", nil, "run", "--stage=nats", "--nats-listen=127.0.0.1:0", "--storage-path="+storage)
	m := p.waitLog(`nats server listening.*addr=(\S+)`, 30*time.Second)
	return p, "nats://" + m[1]
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it is true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		ok, status := cond()
		if ok {
			return
		}
		last = status
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s (last: %s)", what, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// delivery compares the events a test expected with those that arrived,
// by identity: a lost event hidden by a duplicated one still shows.
type delivery struct {
	expected   int            // events expected
	received   int            // events (lines) that arrived
	missing    []string       // expected ids that never arrived, in expected order
	lost       int            // how many expected events never arrived (= len(missing) when ids are known)
	duplicated map[string]int // id → copies beyond the first
	dups       int            // sum of duplicated
	unexpected []string       // ids that arrived but were never expected
}

// compareIDs checks received against the ids a test sent.
func compareIDs(expected, received []string) delivery {
	d := delivery{expected: len(expected), received: len(received), duplicated: map[string]int{}}
	want := make(map[string]bool, len(expected))
	for _, id := range expected {
		want[id] = true
	}
	seen := make(map[string]int, len(received))
	for _, id := range received {
		seen[id]++
		switch {
		case seen[id] > 1:
			d.duplicated[id]++
			d.dups++
		case !want[id]:
			d.unexpected = append(d.unexpected, id)
		}
	}
	for _, id := range expected {
		if seen[id] == 0 {
			d.missing = append(d.missing, id)
		}
	}
	d.lost = len(d.missing)
	return d
}

// compareDistinct is compareIDs for a source whose ids are not known in
// advance but are unique (dummy's timestamps are strictly increasing per
// input): want distinct ids, each once.
func compareDistinct(want int, received []string) delivery {
	d := delivery{expected: want, received: len(received), duplicated: map[string]int{}}
	seen := make(map[string]bool, len(received))
	for _, id := range received {
		if seen[id] {
			d.duplicated[id]++
			d.dups++
			continue
		}
		seen[id] = true
	}
	if len(seen) < want {
		d.lost = want - len(seen)
	} else if len(seen) > want {
		d.unexpected = []string{fmt.Sprintf("%d more distinct events than generated", len(seen)-want)}
	}
	return d
}

func (d delivery) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events arrived for %d expected: %d missing", d.received, d.expected, d.lost)
	if len(d.missing) > 0 {
		fmt.Fprintf(&b, " (%s)", sample(d.missing, 10))
	}
	fmt.Fprintf(&b, ", %d duplicates", d.dups)
	if d.dups > 0 {
		var ids []string
		for id, n := range d.duplicated {
			ids = append(ids, fmt.Sprintf("%s ×%d", id, n+1))
		}
		sort.Strings(ids)
		fmt.Fprintf(&b, " (%s)", sample(ids, 10))
	}
	fmt.Fprintf(&b, ", %d unexpected", len(d.unexpected))
	if len(d.unexpected) > 0 {
		fmt.Fprintf(&b, " (%s)", sample(d.unexpected, 10))
	}
	return b.String()
}

func sample(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(", … %d more", len(ids)-n)
}

// requireOnce fails the test unless every expected event arrived exactly
// once and nothing else arrived.
func requireOnce(t *testing.T, what string, d delivery) {
	t.Helper()
	if d.lost > 0 || d.dups > 0 || len(d.unexpected) > 0 {
		t.Fatalf("%s: not every event exactly once: %s", what, d)
	}
	t.Logf("%s: %s", what, d)
}

// requireAtLeastOnce fails the test unless every expected event arrived and
// nothing else did; duplicates are tolerated up to maxDups, for the reason
// why (logged with the count, so a change in the rate shows).
func requireAtLeastOnce(t *testing.T, what string, d delivery, maxDups int, why string) {
	t.Helper()
	if d.lost > 0 || len(d.unexpected) > 0 {
		t.Fatalf("%s: events lost or unexpected: %s", what, d)
	}
	if d.dups > maxDups {
		t.Fatalf("%s: %d duplicates, more than the %d allowed (%s): %s", what, d.dups, maxDups, why, d)
	}
	t.Logf("%s: %s (duplicates allowed up to %d: %s)", what, d, maxDups, why)
}

// seqIDs is "0" … "n-1", the ids of a source that numbers its events.
func seqIDs(from, to int) []string {
	ids := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		ids = append(ids, strconv.Itoa(i))
	}
	return ids
}

// fileIDs reads a sink file line by line and returns each line's id, the
// first submatch of re; a line re does not match fails the test, naming it.
func fileIDs(t *testing.T, path string, re *regexp.Regexp) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("reading the sink: %v", err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("%s line %d is not an event as the pipeline makes it (%s): %.300q", filepath.Base(path), n, re, sc.Text())
		}
		ids = append(ids, m[1])
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return ids
}

// feeder writes numbered JSON lines ({"seq":N,"payload":"event-N"}) to a
// process's stdin at about rate lines a second, so a fault can be made to
// land while the source is still producing (written() < total).
type feeder struct {
	total   int
	written atomic.Int64
	done    chan error
}

func feed(w io.WriteCloser, total, rate int) *feeder {
	f := &feeder{total: total, done: make(chan error, 1)}
	go func() {
		const tick = 10 * time.Millisecond
		per := max(1, rate/int(time.Second/tick))
		bw := bufio.NewWriter(w)
		next := time.Now()
		for i := 0; i < total; {
			for j := 0; j < per && i < total; j, i = j+1, i+1 {
				if _, err := fmt.Fprintf(bw, `{"seq":%d,"payload":"event-%d"}`+"\n", i, i); err != nil {
					f.done <- err
					return
				}
			}
			if err := bw.Flush(); err != nil {
				f.done <- err
				return
			}
			f.written.Store(int64(i))
			next = next.Add(tick)
			time.Sleep(time.Until(next))
		}
		f.done <- nil
	}()
	return f
}

// wait waits for every line to be written (the pipe may block while the
// pipeline pushes back).
func (f *feeder) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("feeding stdin: %v (after %d of %d lines)", err, f.written.Load(), f.total)
		}
	case <-time.After(timeout):
		t.Fatalf("stdin still not fully written after %s (%d of %d lines)", timeout, f.written.Load(), f.total)
	}
}

// seqLine matches what feed writes as it reaches a file output in plain
// format, possibly with fields added by filters after it.
var seqLine = regexp.MustCompile(`^\{"seq":(\d+),"payload":"event-(?:\d+)"`)

// requireFlowing fails when a fault is about to land on a stream that has
// already finished, so that the test would prove nothing: the source must
// still be producing (produced < 0: not known) and the sink must not have
// everything yet.
func requireFlowing(t *testing.T, fault string, produced, delivered, total int) {
	t.Helper()
	what := fmt.Sprintf("%d of %d produced, %d delivered", produced, total, delivered)
	if produced < 0 {
		what = fmt.Sprintf("%d of %d delivered", delivered, total)
	}
	if produced >= total || delivered >= total {
		t.Fatalf("%s would land after the stream finished (%s): nothing tested", fault, what)
	}
	t.Logf("%s lands mid-stream: %s", fault, what)
}

// outFileEvent matches an out_file line (TAG: [SEC.NSEC, RECORD]) of the
// given tag and record; its submatch, the time, identifies a dummy event.
func outFileEvent(tag, record string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(tag) + `: \[(\d+\.\d{9}), ` + regexp.QuoteMeta(record) + `\]$`)
}

// waitForAll waits until the sink file holds every expected event; when it
// does not in time, it fails naming the events still missing.
func waitForAll(t *testing.T, timeout time.Duration, what, path string, expected []string, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	// Every id, not a line count: redelivered duplicates can make up the
	// count while a chunk still waits for its own redelivery (a message the
	// client dropped as a slow consumer comes back after the ack wait).
	for countLines(path) < len(expected) || len(compareIDs(expected, completeIDs(t, path, re)).missing) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, compareIDs(expected, completeIDs(t, path, re)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeze stops p with SIGSTOP and returns once every thread of it has
// stopped: the signal is delivered asynchronously, so a thread busy at the
// time of kill(2) may still finish what it was doing (answering a publish,
// say) after kill returns. A test that needs the process frozen before its
// next step must wait for it.
func freeze(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	task := fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, err := os.ReadDir(task)
		if err != nil {
			t.Fatalf("freeze: %v", err)
		}
		stopped := 0
		for _, id := range ids {
			b, err := os.ReadFile(filepath.Join(task, id.Name(), "stat"))
			if err != nil {
				continue // the thread exited
			}
			// The state follows the command name, which is in parentheses.
			if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
				stopped++
			}
		}
		if stopped == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("freeze: %d of %d threads stopped after 10 s", stopped, len(ids))
		}
		time.Sleep(time.Millisecond)
	}
}
