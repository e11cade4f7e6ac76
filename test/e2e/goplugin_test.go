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
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	proto "github.com/floe-io/floe/internal/forward"
	"github.com/floe-io/floe/internal/goplugin"
)

var (
	fbPluginOnce sync.Once
	fbPluginPath string
	fbPluginErr  error
)

// fbPlugin builds the fluent-bit-go test plugin (internal/goplugin/testdata/fbplugin)
// with `go build -buildmode=c-shared`, and floe-plugin-host beside the floe
// binary, once per test run.
func fbPlugin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("fluent-bit-go plugins need cgo and gcc; gcc not found")
	}
	fbPluginOnce.Do(func() {
		dir := filepath.Dir(floeBin)
		if fbPluginErr = goplugin.BuildHelper(filepath.Join(dir, goplugin.HostBinaryName)); fbPluginErr != nil {
			return
		}
		fbPluginPath = filepath.Join(dir, "out_floetest.so")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", fbPluginPath, ".")
		cmd.Dir = filepath.Join(repoRoot(), "internal", "goplugin", "testdata", "fbplugin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			fbPluginErr = fmt.Errorf("go build -buildmode=c-shared: %v\n%s", err, out)
		}
	})
	if fbPluginErr != nil {
		t.Fatal(fbPluginErr)
	}
	return fbPluginPath
}

// pluginLine is one line the test plugin writes.
type pluginLine struct {
	Init   string            `json:"init"`
	Props  map[string]string `json:"props"`
	Exit   string            `json:"exit"`
	ID     string            `json:"id"`
	Tag    string            `json:"tag"`
	Sec    int64             `json:"sec"`
	Nsec   int64             `json:"nsec"`
	Record struct {
		Seq int `json:"seq"`
	} `json:"record"`
}

type pluginOut struct {
	inits, exits []pluginLine
	seqs         map[int]int // seq → times seen
	lines        int
	records      []pluginLine
}

func readPluginOut(t *testing.T, path string) pluginOut {
	t.Helper()
	out := pluginOut{seqs: map[int]int{}}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l pluginLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		switch {
		case l.Init != "":
			out.inits = append(out.inits, l)
		case l.Exit != "":
			out.exits = append(out.exits, l)
		default:
			out.lines++
			out.seqs[l.Record.Seq]++
			out.records = append(out.records, l)
		}
	}
	return out
}

// seqTime is the timestamp the test gives event seq.
func seqTime(seq int) event.Time {
	return event.Time{Sec: 1700000000 + int64(seq/10), Nsec: uint32(seq*7919) % 1e9}
}

// sendSeqs sends events [from, to) to a forward input in acked frames of per events.
func sendSeqs(t *testing.T, addr, tag string, from, to, per int, pause time.Duration) {
	t.Helper()
	c := dialForward(t, addr)
	for i := from; i < to; i += per {
		end := min(i+per, to)
		var b []byte
		for s := i; s < end; s++ {
			b = event.AppendArrayHeader(b, 2)
			b = seqTime(s).AppendMsgpack(b)
			b = event.AppendMapHeader(b, 2)
			b = event.AppendInt(event.AppendString(b, "seq"), int64(s))
			b = event.AppendString(event.AppendString(b, "msg"), "hello from floe")
		}
		id := fmt.Sprintf("c%d", i)
		if err := c.send(proto.AppendPackedForward(nil, tag, b, &proto.Options{Chunk: id, Size: end - i})); err != nil {
			t.Fatal(err)
		}
		if got, err := c.ack(60 * time.Second); err != nil || got != id {
			t.Fatalf("ack of %s: %q %v", id, got, err)
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// goPluginConfig writes a plugins_file naming so and a main config with a
// forward input and the given output sections.
func goPluginConfig(t *testing.T, dir, so, addr, service, outputs string) string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "plugins.conf"), "[PLUGINS]\n    Path "+so+"\n")
	host, port, _ := net.SplitHostPort(addr)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush         0.2
    storage.path  %s
    plugins_file  plugins.conf
%s
[INPUT]
    Name    forward
    Listen  %s
    Port    %s
%s`, filepath.Join(dir, "state"), service, host, port, outputs))
	return cfg
}

func metricsJSON(t *testing.T, addr string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func metricAt(m map[string]any, path ...string) float64 {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return -1
		}
		cur = mm[p]
	}
	f, ok := cur.(float64)
	if !ok {
		return -1
	}
	return f
}

// A fluent-bit-go plugin built with -buildmode=c-shared, loaded through a
// plugins_file, runs as two instances: each sees its own properties (and no
// core key), every record arrives once per instance with its timestamp, and
// each instance's exit callback runs once at shutdown.
func TestGoPluginTwoInstancesOwnPropertiesAndTimestamps(t *testing.T) {
	so := fbPlugin(t)
	dir := t.TempDir()
	addr := freePort(t)
	outA, outB := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	cfg := goPluginConfig(t, dir, so, addr, "", fmt.Sprintf(`
[OUTPUT]
    Name        floetest
    Match       app.*
    Id          A
    Color       red
    Out         %s
    Workers     2
    Retry_Limit 3

[OUTPUT]
    Name   floetest
    Alias  second
    Match  app.*
    Id     B
    Color  blue
    Out    %s
`, outA, outB))
	p := startFloe(t, "floe", nil, "-c", cfg, "--http-port", "0")
	p.waitLog(`forward input listening`, 120*time.Second)
	const n = 2000
	sendSeqs(t, addr, "app.go", 0, n, 100, 0)
	for _, out := range []string{outA, outB} {
		eventually(t, 2*time.Minute, "every record at "+filepath.Base(out), func() (bool, string) {
			o := readPluginOut(t, out)
			return len(o.seqs) >= n, fmt.Sprint(len(o.seqs))
		})
	}
	if err := p.stop(60 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, c := range []struct{ out, id, color string }{{outA, "A", "red"}, {outB, "B", "blue"}} {
		o := readPluginOut(t, c.out)
		if len(o.inits) != 1 {
			t.Fatalf("instance %s initialised %d times, want 1", c.id, len(o.inits))
		}
		props := o.inits[0].Props
		if props["id"] != c.id || props["color"] != c.color || props["out"] != c.out || props["name"] != "" {
			t.Errorf("instance %s saw properties %v", c.id, props)
		}
		if len(o.exits) != 1 || o.exits[0].Exit != c.id {
			t.Errorf("instance %s: exit callbacks %v, want one", c.id, o.exits)
		}
		for _, r := range o.records {
			want := seqTime(r.Record.Seq)
			if r.ID != c.id || r.Tag != "app.go" || r.Sec != want.Sec || r.Nsec != int64(want.Nsec) {
				t.Fatalf("instance %s got %+v, want time %d.%09d", c.id, r, want.Sec, want.Nsec)
			}
		}
		for s := 0; s < n; s++ {
			if o.seqs[s] != 1 {
				t.Fatalf("instance %s: record %d seen %d times (%d lines, %d distinct)", c.id, s, o.seqs[s], o.lines, len(o.seqs))
			}
		}
	}
}

// FLB_RETRY twice then FLB_OK delivers every record exactly once, and the
// retries are counted.
func TestGoPluginRetryTwiceThenOKDeliversOnce(t *testing.T) {
	so := fbPlugin(t)
	dir := t.TempDir()
	addr := freePort(t)
	out := filepath.Join(dir, "out.jsonl")
	cfg := goPluginConfig(t, dir, so, addr, "    scheduler.base 0.2\n    scheduler.cap 1\n", fmt.Sprintf(`
[OUTPUT]
    Name        floetest
    Alias       flaky
    Match       *
    Id          R
    Retries     2
    Retry_Limit 5
    Out         %s
`, out))
	p := startFloe(t, "floe", nil, "-c", cfg, "--http-port", "0")
	p.waitLog(`forward input listening`, 120*time.Second)
	m := p.waitLog(`http server listening.*addr=(\S+)`, 30*time.Second)
	const n = 600
	sendSeqs(t, addr, "retry.me", 0, n, 200, 0)
	eventually(t, 2*time.Minute, "every record", func() (bool, string) {
		o := readPluginOut(t, out)
		return len(o.seqs) >= n, fmt.Sprint(len(o.seqs))
	})
	time.Sleep(time.Second)
	o := readPluginOut(t, out)
	for s := 0; s < n; s++ {
		if o.seqs[s] != 1 {
			t.Fatalf("record %d seen %d times (%d lines)", s, o.seqs[s], o.lines)
		}
	}
	metrics := metricsJSON(t, m[1])
	chunks := metricAt(metrics, "floe", "stage", "output", "chunks_in")
	retries := metricAt(metrics, "output", "flaky", "retries")
	if retries < 2 || chunks < 3*(retries/2) {
		t.Fatalf("retries %v over %v chunk deliveries; want 2 retries per chunk", retries, chunks)
	}
	if got := metricAt(metrics, "output", "flaky", "proc_records"); got != n {
		t.Fatalf("proc_records %v, want %d", got, n)
	}
}

// FLB_ERROR sets the chunk aside on the dead-letter stream, whole.
func TestGoPluginErrorGoesToDeadLetters(t *testing.T) {
	so := fbPlugin(t)
	dir := t.TempDir()
	addr := freePort(t)
	cfg := goPluginConfig(t, dir, so, addr, "", fmt.Sprintf(`
[OUTPUT]
    Name   floetest
    Alias  broken
    Match  *
    Id     E
    Mode   error
    Out    %s
`, filepath.Join(dir, "out.jsonl")))
	p := startFloe(t, "floe", nil, "-c", cfg, "--http-port", "0")
	p.waitLog(`forward input listening`, 120*time.Second)
	m := p.waitLog(`http server listening.*addr=(\S+)`, 30*time.Second)
	const n = 300
	sendSeqs(t, addr, "app.bad", 0, n, 100, 0)
	// The dead-letter stream is read with `floe dlq`, which opens the store
	// itself: only once Floe has set every record aside and stopped, since
	// one store has one owner.
	eventually(t, 2*time.Minute, "every record counted as a dead letter", func() (bool, string) {
		got := metricAt(metricsJSON(t, m[1]), "floe", "dropped", "output", "broken", "dead_letter")
		return got == n, fmt.Sprint(got)
	})
	if err := p.stop(30 * time.Second); err != nil {
		t.Fatalf("stop floe: %v", err)
	}
	rows := regexp.MustCompile(`(?m)^(\d+)\s+\S+\s+broken\s+app\.bad\s+(\d+)\s+.*FLB_ERROR`)
	eventually(t, 30*time.Second, "dead letters of every record", func() (bool, string) {
		list := startFloe(t, "dlq list", nil, "dlq", "list", "-c", cfg)
		if err := list.wait(30 * time.Second); err != nil {
			return false, err.Error()
		}
		total := 0
		for _, r := range rows.FindAllStringSubmatch(list.stdout.String(), -1) {
			k, _ := strconv.Atoi(r[2])
			total += k
		}
		return total == n, list.stdout.String()
	})
	if o := readPluginOut(t, filepath.Join(dir, "out.jsonl")); o.lines != 0 {
		t.Fatalf("plugin answering FLB_ERROR wrote %d records", o.lines)
	}
}

// pluginHostPIDs lists the floe-plugin-host children of pid.
func pluginHostPIDs(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], goplugin.HostBinaryName[:15]) {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// SIGKILL of the helper process while records flow loses nothing: the
// chunks in flight are given again to a restarted helper, and the restart
// is counted.
func TestGoPluginHelperKilledMidStreamLosesNothing(t *testing.T) {
	so := fbPlugin(t)
	dir := t.TempDir()
	addr := freePort(t)
	out := filepath.Join(dir, "out.jsonl")
	cfg := goPluginConfig(t, dir, so, addr, "", fmt.Sprintf(`
[OUTPUT]
    Name      floetest
    Alias     slow
    Match     *
    Id        K
    Delay_ms  100
    Workers   2
    Out       %s
`, out))
	p := startFloe(t, "floe", nil, "-c", cfg, "--http-port", "0")
	p.waitLog(`forward input listening`, 120*time.Second)
	m := p.waitLog(`http server listening.*addr=(\S+)`, 30*time.Second)
	const n = 3000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		sendSeqs(t, addr, "kill.me", 0, n, 50, 50*time.Millisecond)
	}()
	var pids []int
	eventually(t, time.Minute, "records flowing", func() (bool, string) {
		pids = pluginHostPIDs(p.cmd.Process.Pid)
		got := len(readPluginOut(t, out).seqs)
		return got > 0 && len(pids) == 1, fmt.Sprintf("%d records, helpers %v", got, pids)
	})
	before := len(readPluginOut(t, out).seqs)
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if before >= n {
		t.Fatalf("kill landed after every record was delivered (%d)", before)
	}
	t.Logf("helper %d killed with %d of %d records delivered", pids[0], before, n)
	<-sent
	eventually(t, 2*time.Minute, "every record after the restart", func() (bool, string) {
		o := readPluginOut(t, out)
		return len(o.seqs) >= n, fmt.Sprint(len(o.seqs))
	})
	o := readPluginOut(t, out)
	for s := 0; s < n; s++ {
		if o.seqs[s] == 0 {
			t.Fatalf("record %d lost", s)
		}
	}
	// The chunk the plugin had written when it was killed is given again:
	// at-least-once, so a few duplicates are allowed and reported.
	t.Logf("%d lines for %d records (%d duplicates from the chunks in flight at the kill)", o.lines, n, o.lines-n)
	now := pluginHostPIDs(p.cmd.Process.Pid)
	if len(now) != 1 || now[0] == pids[0] {
		t.Fatalf("helpers after the kill: %v (killed %d)", now, pids[0])
	}
	if r := metricAt(metricsJSON(t, m[1]), "floe", "go_plugins", "floetest", "restarts"); r < 1 {
		t.Fatalf("restarts metric %v, want ≥ 1", r)
	}
}

// A plugin that asks for a reserved key is refused at start, naming the key.
func TestGoPluginReservedKeyRefusedAtStart(t *testing.T) {
	so := fbPlugin(t)
	dir := t.TempDir()
	cfg := goPluginConfig(t, dir, so, freePort(t), "", fmt.Sprintf(`
[OUTPUT]
    Name      floetest
    Match     *
    Id        X
    Read_Key  Retry_Limit
    Out       %s
`, filepath.Join(dir, "out.jsonl")))
	p := startFloe(t, "floe", nil, "-c", cfg)
	err := p.wait(2 * time.Minute)
	if err == nil {
		t.Fatal("floe started a plugin that reads a reserved key")
	}
	if !strings.Contains(p.stderr.String(), `reserved key "retry_limit"`) {
		t.Fatalf("error does not name the key:\n%s", tail(p.stderr.String(), 2000))
	}
}

// floe validate loads every plugin and reports a plugin without a required
// symbol, a missing plugin file and a missing plugins_file with file and line.
func TestGoPluginValidateReportsMissingSymbolWithFileAndLine(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("needs gcc to build a broken plugin")
	}
	dir := t.TempDir()
	// A shared object that registers but has no FLBPluginInit.
	src := filepath.Join(dir, "noinit.c")
	writeFile(t, src, "struct def { int type, proxy, flags; char *name, *desc; };\n"+
		"int FLBPluginRegister(struct def *d) { d->type = 2; d->proxy = 11; d->name = \"noinit\"; return 0; }\n"+
		"int FLBPluginFlush(void *d, int n, char *t) { return 1; }\n")
	so := filepath.Join(dir, "out_noinit.so")
	if out, err := exec.Command(gcc, "-shared", "-fPIC", "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(dir, "plugins.conf"), "[PLUGINS]\n    Path "+so+"\n    Path "+filepath.Join(dir, "nosuch.so")+"\n")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, `[SERVICE]
    plugins_file plugins.conf
[INPUT]
    Name dummy
[OUTPUT]
    Name  noinit
    Match *
`)
	p := startFloe(t, "validate", nil, "validate", "-c", cfg)
	if err := p.wait(2 * time.Minute); err == nil {
		t.Fatal("validate accepted a broken plugin")
	}
	errOut := p.stderr.String()
	plugins := filepath.Join(dir, "plugins.conf")
	for _, want := range []string{
		plugins + ":2: key path: ",
		"missing symbol FLBPluginInit",
		plugins + ":3: key path: ",
		"nosuch.so",
		cfg + ":6: key name: unknown output plugin \"noinit\"",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
}
