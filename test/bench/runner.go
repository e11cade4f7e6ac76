package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
)

// proc is one child process of a run.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (s *suite) start(work, name, stdin, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(work, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	var in io.Closer
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			lf.Close()
			return nil, err
		}
		// Through a pipe, as stdin is fed in practice (exec copies into
		// it): Fluent Bit's stdin input cannot read a regular file, epoll
		// refuses it.
		cmd.Stdin, in = struct{ io.Reader }{f}, f
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		if in != nil {
			in.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		if in != nil {
			in.Close()
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 30 s) and waits for it.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// usage is the process's CPU-seconds and peak RSS (MiB) from wait4.
func (p *proc) usage() (cpu, rssMiB float64) {
	st := p.cmd.ProcessState
	if st == nil {
		return 0, 0
	}
	cpu = (st.UserTime() + st.SystemTime()).Seconds()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		rssMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return cpu, rssMiB
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// metrics reads /api/v1/metrics: records and bytes of a plugin instance.
func metrics(port int, kind, name string) (records, bytes int64, err error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/api/v1/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]map[string]map[string]int64
	if err := json.Unmarshal(body, &m); err != nil {
		var loose map[string]json.RawMessage // "floe" holds other shapes
		if json.Unmarshal(body, &loose) != nil {
			return 0, 0, fmt.Errorf("metrics: %w", err)
		}
		m = map[string]map[string]map[string]int64{}
		var sub map[string]map[string]int64
		if json.Unmarshal(loose[kind], &sub) == nil {
			m[kind] = sub
		}
	}
	v := m[kind][name]
	if kind == "output" {
		return v["proc_records"], v["proc_bytes"], nil
	}
	return v["records"], v["bytes"], nil
}

// warm reads path through to bring it into the page cache; anything that
// is not a regular file (a port number) is left alone.
func warm(path string) error {
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// waitListening waits until addr accepts TCP connections.
func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats server at %s: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runOne runs scenario sc with n input events in one mode of one engine.
func (s *suite) runOne(engine, mode string, sc scenario, n int64) (res result) {
	res = result{Scenario: sc.name, Engine: engine, Mode: mode, Input: n,
		PeakRSSMiB: map[string]float64{}, ProcessCPUSeconds: map[string]float64{}}
	work := filepath.Join(s.dir, sc.name+"-"+engine+"-"+mode)
	if s.warm {
		work += "-warmup"
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	// One WASM compilation cache for every run (<storage.path>/wasm-cache),
	// so runs measure filtering, not compiling (see warmUp).
	if engine == "floe" {
		if err := os.MkdirAll(filepath.Join(work, "state"), 0o755); err != nil {
			res.Error = err.Error()
			return res
		}
		_ = os.MkdirAll(filepath.Join(s.dir, "wasm-cache"), 0o755)
		if err := os.Symlink(filepath.Join(s.dir, "wasm-cache"), filepath.Join(work, "state", "wasm-cache")); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	var procs []*proc
	var counted []*proc // whose CPU makes the figure
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
		var cpu float64
		for _, p := range procs {
			c, rss := p.usage()
			res.ProcessCPUSeconds[p.name] = round(c, 3)
			res.PeakRSSMiB[p.name] = round(rss, 1)
		}
		for _, p := range counted {
			c, _ := p.usage()
			cpu += c
		}
		res.CPUSeconds = round(cpu, 3)
		// Rates count input events: the work is done on each of them, even
		// those a filter drops.
		if res.Error == "" && res.Seconds > 0 {
			res.EventsPerSec = round(float64(res.Input)/res.Seconds, 0)
			res.MBPerSec = round(float64(res.InputBytes)/res.Seconds/1e6, 2)
			res.CPUSecPerMEvents = round(cpu/float64(res.Input)*1e6, 3)
		}
	}()
	fail := func(err error) result {
		res.Error = err.Error()
		for _, p := range procs {
			if p.exited() && p.err != nil {
				res.Error += fmt.Sprintf("\n%s exited: %v\n%s", p.name, p.err, p.tail())
			}
		}
		return res
	}

	var input, stdin string
	switch sc.input {
	case "tail", "stdin":
		path, err := s.workload(n)
		if err != nil {
			return fail(err)
		}
		input = path
		if sc.input == "stdin" {
			stdin = path
		}
	case "forward":
		input = strconv.Itoa(freePort())
	}
	want := sc.kept(n)
	// The host may page out memory nobody touched lately (this one runs
	// DAMON's proactive reclaim), page cache included: read the input and
	// the binary back in, so each engine starts from a warm cache rather
	// than the second one run from what the first brought in.
	bin := s.floe
	if engine == "fluent-bit" {
		bin = s.fluent
	}
	for _, f := range []string{bin, input} {
		if err := warm(f); err != nil {
			return fail(err)
		}
	}

	natsURL := ""
	outPort := freePort()
	var sink *latencySink
	sinkPort := 0
	if sc.latency {
		var err error
		if sink, err = newLatencySink(); err != nil {
			return fail(err)
		}
		defer sink.close()
		sinkPort = sink.port
	}
	var out *proc // the process whose metrics say when it is done
	var inPort int
	var inProc *proc
	var t0 time.Time
	switch {
	case engine == "fluent-bit":
		cfg, err := s.config(engine, sc, n, input, "", work, outPort, sinkPort)
		if err != nil {
			return fail(err)
		}
		t0 = time.Now()
		p, err := s.start(work, "fluent-bit", stdin, s.fluent, "-c", cfg)
		if err != nil {
			return fail(err)
		}
		procs, counted, out, inProc, inPort = append(procs, p), append(counted, p), p, p, outPort
	case mode == "all-in-one":
		cfg, err := s.config(engine, sc, n, input, "", work, outPort, sinkPort)
		if err != nil {
			return fail(err)
		}
		t0 = time.Now()
		p, err := s.start(work, "floe", stdin, s.floe, "-c", cfg)
		if err != nil {
			return fail(err)
		}
		procs, counted, out, inProc, inPort = append(procs, p), append(counted, p), p, p, outPort
	default: // stages, stages-fused, replicas-N: one process per stage (or per stage group) on one NATS server
		natsAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
		natsURL = "nats://" + natsAddr
		cfg, err := s.config(engine, sc, n, input, natsURL, work, outPort, sinkPort)
		if err != nil {
			return fail(err)
		}
		t0 = time.Now()
		np, err := s.start(work, "nats", "", s.floe, "run", "--stage=nats", "--nats-listen="+natsAddr,
			"--storage-path="+filepath.Join(work, "nats"))
		if err != nil {
			return fail(err)
		}
		procs, counted = append(procs, np), append(counted, np)
		// Stages started before their server retry after nats.go's
		// ReconnectWait (1 s), which would be measured as pipeline time.
		if err := waitListening(natsAddr, 10*time.Second); err != nil {
			return fail(err)
		}
		inPort = freePort()
		ing, err := s.start(work, "ingest", stdin, s.floe, "run", "--stage=ingest", "-c", cfg, "--http-port", strconv.Itoa(inPort))
		if err != nil {
			return fail(err)
		}
		procs, inProc = append(procs, ing), ing
		stages := []string{"filter", "router", "output"}
		if mode == "stages-fused" {
			// Filter and router in one process hand chunks over in memory
			// ([SERVICE] fuse): one durable hop fewer than stages.
			stages = []string{"filter,router", "output"}
		}
		replicas := 1
		if len(sc.replicas) > 0 {
			// Fill FLOE_IN first, so the figure is the filters' alone.
			if _, err := fmt.Sscanf(mode, "replicas-%d", &replicas); err != nil {
				return fail(err)
			}
			if err := waitCount(ing, inPort, "input", sc.input+".0", n, runTimeout(n)); err != nil {
				return fail(fmt.Errorf("filling FLOE_IN: %w", err))
			}
			ing.stop()
			stages = []string{"router,output"}
			t0 = time.Now()
			counted = nil
		} else {
			counted = append(counted, ing)
		}
		for _, st := range stages {
			port := freePort()
			if st == "output" || st == "router,output" {
				port = outPort
			}
			p, err := s.start(work, st, "", s.floe, "run", "--stage="+st, "-c", cfg, "--http-port", strconv.Itoa(port))
			if err != nil {
				return fail(err)
			}
			procs, counted = append(procs, p), append(counted, p)
			if st == "output" || st == "router,output" {
				out = p
			}
		}
		for i := 0; i < replicas && len(sc.replicas) > 0; i++ {
			p, err := s.start(work, fmt.Sprintf("filter-%d", i+1), "", s.floe, "run", "--stage=filter", "-c", cfg,
				"--http-port", strconv.Itoa(freePort()))
			if err != nil {
				return fail(err)
			}
			procs, counted = append(procs, p), append(counted, p)
		}
	}

	var sentBytes int64
	if sc.input == "forward" {
		var clientCPU float64
		var err error
		if sc.packed {
			clientCPU, sentBytes, err = sendPacked(input, n, inProc)
		} else {
			clientCPU, err = sendForward(input, n, sc.rate, inProc)
		}
		res.ClientCPUSeconds = round(clientCPU, 3)
		if err != nil {
			return fail(err)
		}
	}
	if sink != nil {
		if err := sink.wait(out, want, runTimeout(n)); err != nil {
			return fail(err)
		}
		res.LatencyP50Ms, res.LatencyP99Ms = sink.percentiles()
	} else if err := waitCount(out, outPort, "output", "null.0", want, runTimeout(n)); err != nil {
		return fail(err)
	}
	res.Seconds = round(time.Since(t0).Seconds(), 3)
	res.Events = want
	if inProc != nil && !inProc.exited() {
		if _, b, err := metrics(inPort, "input", sc.input+".0"); err == nil {
			res.InputBytes = b
		}
	}
	if sentBytes > 0 {
		// The forward traffic on the wire, the same for both engines.
		res.InputBytes = sentBytes
	}
	if res.InputBytes == 0 && input != "" && sc.input != "forward" {
		if st, err := os.Stat(input); err == nil {
			res.InputBytes = st.Size()
		}
	}
	return res
}

// waitCount waits until the plugin's count reaches want; a process that
// exits cleanly (stdin at end of input: everything delivered) counts as
// done, one that fails does not.
func waitCount(p *proc, port int, kind, name string, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var got int64
	for time.Now().Before(deadline) {
		if p.exited() {
			if p.err == nil && kind == "output" {
				return nil
			}
			return fmt.Errorf("%s exited (%v) at %d of %d records:\n%s", p.name, p.err, got, want, p.tail())
		}
		if r, _, err := metrics(port, kind, name); err == nil {
			got = r
			if r >= want {
				if r > want {
					return fmt.Errorf("%s: %d records for %d expected (duplicates?)", name, r, want)
				}
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %v at %d of %d records of %s:\n%s", timeout, got, want, name, p.tail())
}

// sendForward sends n events over the forward protocol with
// fluent-logger-golang and returns the client's CPU-seconds.
func sendForward(portStr string, n int64, rate int, p *proc) (float64, error) {
	var logger *fluent.Fluent
	var err error
	for i := 0; i < 200; i++ { // the input listens a moment after start
		logger, err = fluent.New(fluent.Config{FluentHost: "127.0.0.1", FluentPort: mustAtoi(portStr),
			Async: false, SubSecondPrecision: true, Timeout: 5 * time.Second, WriteTimeout: 30 * time.Second})
		if err == nil {
			break
		}
		if p.exited() {
			return 0, errors.New("server exited before the client connected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return 0, fmt.Errorf("forward client: %w", err)
	}
	before := selfCPU()
	now := time.Now()
	start := now
	for i := int64(0); i < n; i++ {
		if rate > 0 {
			// Paced: each event carries its send time, for latency.
			if i%100 == 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
			}
			now = time.Now()
		}
		rec := map[string]any{"seq": i, "level": "info", "service": "checkout", "latency_ms": 12.5,
			"message": "GET /api/v1/orders/" + strconv.FormatInt(i, 10) + " 200"}
		if err := logger.PostWithTime("bench", now, rec); err != nil {
			return selfCPU() - before, fmt.Errorf("forward client at event %d: %w", i, err)
		}
	}
	err = logger.Close()
	return selfCPU() - before, err
}

func mustAtoi(s string) int {
	v, _ := strconv.Atoi(s)
	return v
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func round(v float64, places int) float64 {
	p := 1.0
	for i := 0; i < places; i++ {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
