package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	sdkPluginOnce sync.Once
	sdkPluginPath string
	sdkPluginErr  error
)

// sdkPlugin builds pkg/pluginsdk/testdata/sdkplugin once per test run.
func sdkPlugin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	sdkPluginOnce.Do(func() {
		sdkPluginPath = filepath.Join(filepath.Dir(floeBin), "sdkplugin")
		cmd := exec.Command("go", "build", "-o", sdkPluginPath, "./pkg/pluginsdk/testdata/sdkplugin")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			sdkPluginErr = fmt.Errorf("building the SDK plugin: %v\n%s", err, out)
		}
	})
	if sdkPluginErr != nil {
		t.Fatal(sdkPluginErr)
	}
	return sdkPluginPath
}

type sdkLine struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Tag        string         `json:"tag"`
	Sec        int64          `json:"sec"`
	Nsec       int64          `json:"nsec"`
	Record     map[string]any `json:"record"`
	Datapoints int            `json:"datapoints"`
	Exit       string         `json:"exit"`
	// Most flushes of the instance the plugin saw in flight at once (logs
	// lines), and how many were in flight when exit ran (exit lines).
	MostInflight int `json:"most_inflight"`
	Inflight     int `json:"inflight"`
}

func readSDKOut(t *testing.T, path string) (logs map[int]int, metrics, exits int, lines []sdkLine) {
	t.Helper()
	logs = map[int]int{}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l sdkLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
		switch {
		case l.Exit != "":
			exits++
		case l.Type == "metrics" && l.Datapoints > 0:
			metrics++
		case l.Type == "logs":
			seq, _ := l.Record["seq"].(float64)
			logs[int(seq)]++
		}
	}
	return
}

// An SDK plugin listed in a YAML plugins_file receives logs chunks (each
// record once, with its timestamp and strings as strings) and metrics
// chunks; the panic it raises on every chunk's first attempt is reported
// and the chunk retried; its exit runs once at shutdown.
func TestSDKPluginLogsMetricsAndPanicRetried(t *testing.T) {
	bin := sdkPlugin(t)
	dir := t.TempDir()
	addr := freePort(t)
	out := filepath.Join(dir, "out.jsonl")
	writeFile(t, filepath.Join(dir, "plugins.yaml"), "plugins:\n  - "+bin+"\n")
	host, port, _ := net.SplitHostPort(addr)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush          0.2
    storage.path   %s
    plugins_file   plugins.yaml
    scheduler.base 0.2
    scheduler.cap  1

[INPUT]
    Name    forward
    Listen  %s
    Port    %s

[INPUT]
    Name             fluentbit_metrics
    Tag              internal.metrics
    Scrape_Interval  1

[OUTPUT]
    Name         sdktest
    Match        *
    Id           S
    Panic_First  on
    Retry_Limit  5
    Out          %s
`, filepath.Join(dir, "state"), host, port, out))
	p := startFloe(t, "floe", nil, "-c", cfg, "--http-port", "0")
	p.waitLog(`forward input listening`, 120*time.Second)
	m := p.waitLog(`http server listening.*addr=(\S+)`, 30*time.Second)
	const n = 500
	sendSeqs(t, addr, "app.sdk", 0, n, 100, 0)
	eventually(t, 2*time.Minute, "every log record and a metrics chunk", func() (bool, string) {
		logs, metrics, _, _ := readSDKOut(t, out)
		return len(logs) >= n && metrics > 0, fmt.Sprintf("%d records, %d metrics chunks", len(logs), metrics)
	})
	p.waitLog(`go plugin panicked; the chunk will be retried.*sdkplugin: first attempt of chunk`, 10*time.Second)
	if got := metricAt(metricsJSON(t, m[1]), "floe", "go_plugins", "sdktest", "panics"); got < 1 {
		t.Fatalf("panics metric %v", got)
	}
	if err := p.stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	logs, _, exits, lines := readSDKOut(t, out)
	for s := 0; s < n; s++ {
		if logs[s] != 1 {
			t.Fatalf("record %d seen %d times", s, logs[s])
		}
	}
	for _, l := range lines {
		if l.Type != "logs" {
			continue
		}
		seq := int(l.Record["seq"].(float64))
		want := seqTime(seq)
		if l.Tag != "app.sdk" || l.Sec != want.Sec || l.Nsec != int64(want.Nsec) || l.Record["msg"] != "hello from floe" {
			t.Fatalf("record %d: %+v, want time %d.%09d", seq, l, want.Sec, want.Nsec)
		}
	}
	if exits != 1 {
		t.Fatalf("exit called %d times, want 1", exits)
	}
}

// An SDK plugin declaring a reserved key is refused at start, naming it.
func TestSDKPluginDeclaringReservedKeyRefused(t *testing.T) {
	bin := sdkPlugin(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "plugins.conf"), "[PLUGINS]\n    Path "+bin+"\n")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    plugins_file  plugins.conf
    storage.path  %s
[INPUT]
    Name dummy
[OUTPUT]
    Name  sdktest
    Match *
    Out   %s
`, filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl")))
	t.Setenv("FLOE_TEST_DECLARE_RESERVED", "1")
	p := startFloe(t, "floe", nil, "-c", cfg)
	if err := p.wait(2 * time.Minute); err == nil {
		t.Fatal("floe started a plugin declaring a reserved key")
	}
	if s := p.stderr.String(); !strings.Contains(s, `declares the reserved key "workers"`) || !strings.Contains(s, "plugins.conf:2") {
		t.Fatalf("error does not name the key and line:\n%s", tail(s, 2000))
	}
}

// `workers` on a plugin output: with workers 2 the plugin sees two flushes
// of the instance in flight at once (each flush waits for a second one),
// with workers 1 never more than one. SIGTERM while flushes are under way:
// exit runs once per instance, after its in-flight flushes have finished
// (nothing is written after the exit line), and no record arrives twice.
func TestSDKPluginWorkersAndGracefulExit(t *testing.T) {
	bin := sdkPlugin(t)
	dir := t.TempDir()
	addr := freePort(t)
	outA, outB := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeFile(t, filepath.Join(dir, "plugins.conf"), "[PLUGINS]\n    Path "+bin+"\n")
	host, port, _ := net.SplitHostPort(addr)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush          0.1
    storage.path   %s
    plugins_file   plugins.conf

[INPUT]
    Name    forward
    Listen  %s
    Port    %s

[OUTPUT]
    Name             sdktest
    Match            a.*
    Id               A
    Workers          2
    Rendezvous       on
    Rendezvous_Wait  3
    Out              %s

[OUTPUT]
    Name             sdktest
    Match            b.*
    Id               B
    Workers          1
    Rendezvous       on
    Rendezvous_Wait  0.2
    Out              %s
`, filepath.Join(dir, "state"), host, port, outA, outB))
	p := startFloe(t, "floe", nil, "-c", cfg, "--http-port", "0")
	p.waitLog(`forward input listening`, 120*time.Second)
	// Several tags, so several chunks wait for each output at once.
	const per = 20
	tags := []string{"x", "y", "z", "w"}
	for i, tg := range tags {
		sendSeqs(t, addr, "a."+tg, i*per, (i+1)*per, per, 0)
		sendSeqs(t, addr, "b."+tg, i*per, (i+1)*per, per, 0)
	}
	total := len(tags) * per
	eventually(t, 30*time.Second, "every record at both outputs", func() (bool, string) {
		a, _, _, _ := readSDKOut(t, outA)
		b, _, _, _ := readSDKOut(t, outB)
		return len(a) >= total && len(b) >= total, fmt.Sprintf("A %d, B %d of %d", len(a), len(b), total)
	})
	// A second wave for B, so that SIGTERM finds flushes under way.
	for i, tg := range tags {
		sendSeqs(t, addr, "b."+tg, total+i*per, total+(i+1)*per, per, 0)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id, path string
		most     int
	}{{"A", outA, 2}, {"B", outB, 1}} {
		logs, _, exits, lines := readSDKOut(t, c.path)
		most := 0
		for _, l := range lines {
			if l.Type == "logs" {
				most = max(most, l.MostInflight)
			}
		}
		if most != c.most {
			t.Errorf("%s: at most %d flushes in flight at once, want %d", c.id, most, c.most)
		}
		for s, n := range logs {
			if n != 1 {
				t.Errorf("%s: record %d arrived %d times", c.id, s, n)
			}
		}
		for s := 0; s < total; s++ {
			if logs[s] != 1 {
				t.Errorf("%s: record %d of the first wave arrived %d times", c.id, s, logs[s])
			}
		}
		last := lines[len(lines)-1]
		if exits != 1 || last.Exit != c.id || last.Inflight != 0 {
			t.Errorf("%s: %d exit lines, last line %+v: want one exit, last, with no flush in flight", c.id, exits, last)
		}
		t.Logf("%s: %d records, at most %d flushes in flight", c.id, len(logs), most)
	}
}
