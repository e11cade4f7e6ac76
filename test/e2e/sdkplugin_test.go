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
