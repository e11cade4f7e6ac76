package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"

	"github.com/floe-io/floe/internal/event"
	proto "github.com/floe-io/floe/internal/forward"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

// forwardConfig is a forward input on addr delivering to a file.
func forwardConfig(natsURL, addr, outDir, extra string) string {
	host, port, _ := net.SplitHostPort(addr)
	nats := ""
	if natsURL != "" {
		nats = "    nats.url  " + natsURL + "\n"
	}
	return fmt.Sprintf(`[SERVICE]
    Flush     0.5
%s%s
[INPUT]
    Name    forward
    Listen  %s
    Port    %s

[OUTPUT]
    Name   file
    Match  *
    Path   %s
    File   events.log
    Mkdir  on
`, nats, extra, host, port, outDir)
}

// outLine is one line of the file output's default format:
// tag: [seconds.nanoseconds, {record}]
var outLine = regexp.MustCompile(`^(\S+): \[(\d+)\.(\d{9}), (\{.*\})\]$`)

type seqRecord struct {
	Client int `json:"client"`
	Seq    int `json:"seq"`
}

// readSeqs reads the output file: distinct (client, seq) → times seen, and
// the number of lines; every line must parse and carry want nanoseconds.
func readSeqs(t *testing.T, path string, wantNsec func(seqRecord) int) (map[seqRecord]int, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[seqRecord]int{}
	lines := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		m := outLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("line %d: unexpected %q", lines, sc.Text())
		}
		var r seqRecord
		if err := json.Unmarshal([]byte(m[4]), &r); err != nil {
			t.Fatalf("line %d: %q: %v", lines, sc.Text(), err)
		}
		if wantNsec != nil {
			if ns, _ := strconv.Atoi(m[3]); ns != wantNsec(r) {
				t.Fatalf("line %d: nanoseconds %d, want %d: %q", lines, ns, wantNsec(r), sc.Text())
			}
		}
		seen[r]++
	}
	return seen, lines
}

// 100,000 events from fluent-logger-golang clients with RequestAck: every
// Post returns only after the ack; every event arrives exactly once with its
// nanoseconds.
func TestForwardGoClientAcked100k(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const clients, perClient = 20, 5000
	dir := t.TempDir()
	addr := freePort(t)
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, forwardConfig("", addr, outDir, "    storage.path  "+filepath.Join(dir, "storage")+"\n"))
	p := startFloe(t, "floe", nil, "-c", cfg)
	p.waitLog(`forward input listening`, 60*time.Second)

	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	base := time.Unix(1700000000, 0)
	nsec := func(r seqRecord) int { return (r.Client*perClient + r.Seq) % 1e9 }
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lg, err := fluent.New(fluent.Config{FluentHost: host, FluentPort: portN, RequestAck: true,
				SubSecondPrecision: true, Timeout: 10 * time.Second, ReadTimeout: 60 * time.Second, MaxRetry: 3})
			if err != nil {
				errs <- err
				return
			}
			defer lg.Close()
			for i := 0; i < perClient; i++ {
				tm := base.Add(time.Duration(nsec(seqRecord{c, i})))
				if err := lg.PostWithTime("go.client", tm, map[string]any{"client": c, "seq": i}); err != nil {
					errs <- fmt.Errorf("client %d event %d: %w", c, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d acked events in %s (%.0f events/s, one ack round trip each)", clients*perClient, time.Since(start), float64(clients*perClient)/time.Since(start).Seconds())
	out := filepath.Join(outDir, "events.log")
	eventually(t, 2*time.Minute, "every event written", func() (bool, string) {
		n := countLines(out)
		return n >= clients*perClient, fmt.Sprint(n)
	})
	time.Sleep(time.Second)
	seen, lines := readSeqs(t, out, nsec)
	dups := lines - len(seen)
	for c := 0; c < clients; c++ {
		for i := 0; i < perClient; i++ {
			if seen[seqRecord{c, i}] == 0 {
				t.Fatalf("client %d event %d missing (%d distinct, %d lines)", c, i, len(seen), lines)
			}
		}
	}
	if dups != 0 || len(seen) != clients*perClient {
		t.Fatalf("%d distinct events, %d duplicates, want %d once each", len(seen), dups, clients*perClient)
	}
}

// fwClient is a hand-built forward client.
type fwClient struct {
	c   net.Conn
	dec *proto.Decoder
}

func dialForward(t *testing.T, addr string) *fwClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fwClient{c: c, dec: proto.NewDecoder(c, 1024, 1<<20)}
}

func (f *fwClient) send(b []byte) error {
	_ = f.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := f.c.Write(b)
	return err
}

// ack waits up to d for an ack and returns its chunk id.
func (f *fwClient) ack(d time.Duration) (string, error) {
	_ = f.c.SetReadDeadline(time.Now().Add(d))
	v, _, err := f.dec.Next()
	if err != nil {
		return "", err
	}
	return proto.ParseAck(v)
}

func seqEntries(client, from, to int, base event.Time) []byte {
	var b []byte
	for i := from; i < to; i++ {
		b = event.AppendArrayHeader(b, 2)
		b = event.Time{Sec: base.Sec, Nsec: uint32(i)}.AppendMsgpack(b)
		b = event.AppendMapHeader(b, 3)
		b = event.AppendInt(event.AppendString(b, "client"), int64(client))
		b = event.AppendString(b, "seq")
		b = event.AppendInt(b, int64(i))
		b = event.AppendString(b, "pad")
		b = event.AppendString(b, "forward-e2e-payload-0123456789")
	}
	return b
}

// An ack never precedes JetStream's PubAck: with the NATS server stopped
// (SIGSTOP), a gzip CompressedPackedForward frame is read and written to
// ingest but not acked; once NATS runs again the ack comes and the events
// arrive. Then 100,000 events in hand-built gzip frames, each acked, arrive
// exactly once.
func TestForwardAckWaitsForJetStreamAndGzip100k(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	natsProc, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	addr := freePort(t)
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, forwardConfig(natsURL, addr, outDir, ""))
	ingest := startFloe(t, "ingest", nil, "run", "--stage=ingest", "-c", cfg)
	ingest.waitLog(`forward input listening`, 60*time.Second)
	rest := startFloe(t, "rest", nil, "run", "--stage=filter,router,output", "-c", cfg, "--http-port", "0")
	rest.waitLog(`floe started`, 60*time.Second)

	base := event.Time{Sec: 1700000000}
	c := dialForward(t, addr)
	// Warm up: one acked frame proves the path works.
	if err := c.send(proto.AppendPackedForward(nil, "gz", proto.Gzip(seqEntries(0, 0, 10, base)), &proto.Options{Chunk: "warm", Size: 10, Compressed: "gzip"})); err != nil {
		t.Fatal(err)
	}
	if id, err := c.ack(60 * time.Second); err != nil || id != "warm" {
		t.Fatalf("warm-up ack %q %v", id, err)
	}

	freeze(t, natsProc)
	stopped := true
	defer func() {
		if stopped {
			_ = natsProc.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	if err := c.send(proto.AppendPackedForward(nil, "gz", proto.Gzip(seqEntries(1, 0, 10, base)), &proto.Options{Chunk: "paused", Size: 10, Compressed: "gzip"})); err != nil {
		t.Fatal(err)
	}
	if id, err := c.ack(5 * time.Second); err == nil {
		t.Fatalf("ack %q arrived while JetStream was stopped", id)
	}
	if err := natsProc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	if id, err := c.ack(2 * time.Minute); err != nil || id != "paused" {
		t.Fatalf("ack after NATS resumed: %q %v", id, err)
	}

	// 100,000 events in gzip frames of 1,000 from 4 connections.
	const conns, frames, perFrame = 4, 25, 1000
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for k := 0; k < conns; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fc := dialForward(t, addr)
			for f := 0; f < frames; f++ {
				id := fmt.Sprintf("c%d-f%d", k, f)
				from := f * perFrame
				frame := proto.AppendPackedForward(nil, "gz", proto.Gzip(seqEntries(10+k, from, from+perFrame, base)),
					&proto.Options{Chunk: id, Size: perFrame, Compressed: "gzip"})
				if err := fc.send(frame); err != nil {
					errs <- err
					return
				}
				if got, err := fc.ack(2 * time.Minute); err != nil || got != id {
					errs <- fmt.Errorf("ack %q (%v), want %q", got, err, id)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out := filepath.Join(outDir, "events.log")
	total := 20 + conns*frames*perFrame
	eventually(t, 2*time.Minute, "every event written", func() (bool, string) {
		n := countLines(out)
		return n >= total, fmt.Sprint(n)
	})
	time.Sleep(time.Second)
	seen, lines := readSeqs(t, out, func(r seqRecord) int { return r.Seq })
	for k := 0; k < conns; k++ {
		for i := 0; i < frames*perFrame; i++ {
			if seen[seqRecord{10 + k, i}] != 1 {
				t.Fatalf("connection %d event %d seen %d times", k, i, seen[seqRecord{10 + k, i}])
			}
		}
	}
	if seen[seqRecord{1, 9}] != 1 || lines != total {
		t.Fatalf("%d lines, want %d; paused frame's last event seen %d times", lines, total, seen[seqRecord{1, 9}])
	}
}

// The ingest stage is SIGKILLed (twice) while fluent-logger-golang clients
// send with acks: clients retry what was not acked, and every event that
// was acked arrives.
func TestForwardIngestKilledLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	addr := freePort(t)
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, forwardConfig(natsURL, addr, outDir, ""))
	startIngest := func() *proc {
		p := startFloe(t, "ingest", nil, "run", "--stage=ingest", "-c", cfg)
		p.waitLog(`forward input listening`, 60*time.Second)
		return p
	}
	ingest := startIngest()
	rest := startFloe(t, "rest", nil, "run", "--stage=filter,router,output", "-c", cfg, "--http-port", "0")
	rest.waitLog(`floe started`, 60*time.Second)

	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	const clients = 8
	var stop atomic.Bool
	var mu sync.Mutex
	acked := map[seqRecord]bool{}
	var failures atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lg *fluent.Fluent
			for i := 0; !stop.Load(); {
				if lg == nil {
					var err error
					lg, err = fluent.New(fluent.Config{FluentHost: host, FluentPort: portN, RequestAck: true,
						Timeout: 2 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 10 * time.Second,
						MaxRetry: 1, RetryWait: 50})
					if err != nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
				}
				if err := lg.Post("kill.test", map[string]any{"client": c, "seq": i}); err != nil {
					// Not acked: send the same event again on a new connection.
					failures.Add(1)
					lg.Close()
					lg = nil
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[seqRecord{c, i}] = true
				mu.Unlock()
				i++
			}
			if lg != nil {
				lg.Close()
			}
		}()
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for kill := 0; kill < 2; kill++ {
		target := ackedCount() + 3000
		eventually(t, 2*time.Minute, "events acked", func() (bool, string) {
			n := ackedCount()
			return n >= target, fmt.Sprint(n)
		})
		ingest.kill()
		t.Logf("ingest SIGKILLed with %d events acked", ackedCount())
		time.Sleep(500 * time.Millisecond)
		ingest = startIngest()
	}
	target := ackedCount() + 3000
	eventually(t, 2*time.Minute, "events acked after the restarts", func() (bool, string) {
		n := ackedCount()
		return n >= target, fmt.Sprint(n)
	})
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	out := filepath.Join(outDir, "events.log")
	eventually(t, 2*time.Minute, "every acked event written", func() (bool, string) {
		n := countLines(out)
		return n >= want, fmt.Sprint(n)
	})
	time.Sleep(2 * time.Second)
	seen, lines := readSeqs(t, out, nil)
	missing := 0
	for r := range acked {
		if seen[r] == 0 {
			missing++
		}
	}
	t.Logf("%d events acked, %d failed posts retried, %d lines written (%d distinct, %d duplicates from resends of unacked events)",
		want, failures.Load(), lines, len(seen), lines-len(seen))
	if missing > 0 {
		t.Fatalf("%d acked events lost", missing)
	}
	if err := rest.stop(30 * time.Second); err != nil {
		t.Error(err)
	}
	if !strings.Contains(ingest.stderr.String(), "forward input listening") {
		t.Error("restarted ingest did not listen")
	}
}

// procCPU is a process's user+system CPU time from /proc (clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

// procPeakRSS is VmHWM from /proc.
func procPeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// BenchmarkForwardToNull: fluent-logger-golang clients → forward input →
// null output in one floe process (embedded NATS). Each iteration is one
// event of about 200 bytes; the clock stops when the null output has
// delivered them all. Reports events/s, MB/s (input bytes), CPU-seconds and
// peak RSS of the floe process. Run with -benchtime=200000x.
func BenchmarkForwardToNull(b *testing.B) {
	for _, ack := range []bool{false, true} {
		name := "no_ack"
		if ack {
			name = "request_ack"
		}
		b.Run(name, func(b *testing.B) { benchForwardToNull(b, ack) })
	}
}

func benchForwardToNull(b *testing.B, ack bool) {
	dir := b.TempDir()
	addr, httpAddr := freePortB(b), freePortB(b)
	host, port, _ := net.SplitHostPort(addr)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	cfg := filepath.Join(dir, "floe.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[SERVICE]
    Flush          0.2
    storage.path   %s
    HTTP_Server    On
    HTTP_Listen    127.0.0.1
    HTTP_Port      %s

[INPUT]
    Name    forward
    Listen  %s
    Port    %s

[OUTPUT]
    Name   null
    Match  *
`, filepath.Join(dir, "storage"), httpPort, host, port)), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := execFloe(b, "-c", cfg)
	waitListening(b, addr)

	portN, _ := strconv.Atoi(port)
	const clients = 8
	payload := strings.Repeat("x", 150)
	b.ResetTimer()
	cpu0 := procCPU(cmd.Process.Pid)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		n := b.N / clients
		if c < b.N%clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lg, err := fluent.New(fluent.Config{FluentHost: host, FluentPort: portN, RequestAck: ack, SubSecondPrecision: true,
				Timeout: 10 * time.Second, MaxRetry: 3})
			if err != nil {
				b.Error(err)
				return
			}
			defer lg.Close()
			for i := 0; i < n; i++ {
				if err := lg.Post("bench", map[string]any{"client": c, "seq": i, "msg": payload}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var inBytes uint64
	var chunks int64
	deadline := time.Now().Add(5 * time.Minute)
	for {
		m := getMetricsB(httpAddr)
		inBytes = m.Input["forward.0"]["bytes"]
		chunks = m.Floe.Stage["ingest"]["chunks_out"]
		if m.Output["null.0"]["proc_records"] >= uint64(b.N) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("null output has %d of %d records", m.Output["null.0"]["proc_records"], b.N)
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	cpu := procCPU(cmd.Process.Pid) - cpu0
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(inBytes)/1e6/el.Seconds(), "MB/s")
	b.ReportMetric(cpu.Seconds(), "cpu-s")
	b.ReportMetric(float64(b.N)/float64(max(chunks, 1)), "events/chunk")
	b.ReportMetric(float64(procPeakRSS(cmd.Process.Pid))/(1<<20), "peak-RSS-MiB")
}

func freePortB(b *testing.B) string {
	return freeport.Addr(b)
}

func execFloe(b *testing.B, args ...string) *exec.Cmd {
	cmd := exec.Command(floeBin, args...)
	cmd.Dir = repoRoot()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
		if b.Failed() {
			b.Logf("floe stderr:\n%s", tail(stderr.String(), 3000))
		}
	})
	return cmd
}

func waitListening(b *testing.B, addr string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("nothing listening on %s", addr)
}

type floeMetrics struct {
	Input  map[string]map[string]uint64 `json:"input"`
	Output map[string]map[string]uint64 `json:"output"`
	Floe   struct {
		Stage map[string]map[string]int64 `json:"stage"`
	} `json:"floe"`
}

func getMetricsB(addr string) floeMetrics {
	var m floeMetrics
	resp, err := http.Get("http://" + addr + "/api/v1/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}
