package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/freeport"
)

// stdoutLine is Fluent Bit's default stdout rendering of a dummy event.
var stdoutLine = regexp.MustCompile(`(?m)^\[\d+\] dummy\.log: \[\[\d+\.\d{9}, \{\}\], \{"message"=>"dummy"(, "level"=>"info")?\}\]$`)

// The README's run command, on a fresh storage directory: dummy events in
// Fluent Bit's stdout format, a clean exit on SIGTERM.
func TestReadmeRunCommandPrintsDummyEvents(t *testing.T) {
	for _, example := range []string{"examples/dummy-stdout.conf", "examples/dummy-stdout.yaml"} {
		t.Run(filepath.Base(example), func(t *testing.T) {
			p := startFloe(t, "floe", nil, "-c", example, "--storage-path", t.TempDir())
			eventually(t, 20*time.Second, "two dummy events on stdout", func() (bool, string) {
				n := len(stdoutLine.FindAllString(p.stdout.String(), -1))
				return n >= 2, fmt.Sprintf("%d events; stdout %q", n, tail(p.stdout.String(), 300))
			})
			if err := p.stop(15 * time.Second); err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
			for _, l := range strings.Split(strings.TrimSpace(p.stdout.String()), "\n") {
				if !stdoutLine.MatchString(l) {
					t.Errorf("stdout line not in Fluent Bit's format: %q", l)
				}
			}
		})
	}
}

// Fluent Bit's command-line shorthand, including a filter with a quoted regex.
func TestCommandLineShorthand(t *testing.T) {
	p := startFloe(t, "floe", nil, "--storage-path", t.TempDir(),
		"-i", "dummy", "-p", "rate=20", "-p", `dummy={"message":"dummy x","n":1}`, "-t", "app",
		"-F", "grep", "-p", "regex=message dummy x", "-m", "*",
		"-F", "record_modifier", "-p", "record=added yes", "-m", "app",
		"-o", "stdout", "-m", "*", "-p", "format=json_lines", "-f", "0.2")
	want := regexp.MustCompile(`(?m)^\{"date":\d+\.\d+,"message":"dummy x","n":1,"added":"yes"\}$`)
	eventually(t, 20*time.Second, "filtered events on stdout", func() (bool, string) {
		return len(want.FindAllString(p.stdout.String(), -1)) >= 3, tail(p.stdout.String(), 300)
	})
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// floe validate reports every mistake with file, line and key, and fails.
func TestValidateReportsEveryMistake(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.conf")
	writeFile(t, cfg, `[SERVICE]
    Flush  1

[INPUT]
    Name   dummy
    Rate   fast

[FILTER]
    Name   grepp
    Match  *

[OUTPUT]
    Name    stdout
    Match   *
    Colour  blue
`)
	p := startFloe(t, "validate", nil, "validate", "-c", cfg)
	err := p.wait(20 * time.Second)
	if err == nil {
		t.Fatal("floe validate exited 0 on a bad configuration")
	}
	out := p.stderr.String()
	for _, want := range []string{
		cfg + `:6: key rate: "fast" is not an integer`,
		cfg + `:9: key name: unknown filter plugin "grepp"`,
		cfg + `:15: key colour: unknown key for output plugin "stdout"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "3 configuration problem(s)") {
		t.Errorf("want exactly three problems reported:\n%s", out)
	}
	good := startFloe(t, "validate", nil, "validate", "-c", "examples/pipeline.conf")
	if err := good.wait(20 * time.Second); err != nil {
		t.Fatalf("validate of a good file: %v\n%s", err, good.stderr.String())
	}
}

// stdin to stdout: every line arrives, and Floe exits once it has delivered
// them, as Fluent Bit exits when stdin closes.
func TestStdinToStdoutExitsAtEndOfInput(t *testing.T) {
	var in bytes.Buffer
	const n = 20000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, `{"seq":%d,"msg":"line %d"}`+"\n", i, i)
	}
	p := startFloe(t, "floe", in.Bytes(), "--storage-path", t.TempDir(),
		"-i", "stdin", "-t", "in", "-o", "stdout", "-m", "*", "-p", "format=json_lines")
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatalf("floe did not exit cleanly at end of stdin: %v\n%s", err, tail(p.stderr.String(), 2000))
	}
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	if len(lines) != n {
		t.Fatalf("got %d lines, want %d", len(lines), n)
	}
	seen := make([]bool, n)
	for _, l := range lines {
		var rec struct {
			Seq int    `json:"seq"`
			Msg string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		if rec.Msg != fmt.Sprintf("line %d", rec.Seq) || seen[rec.Seq] {
			t.Fatalf("line %q duplicated or corrupted", l)
		}
		seen[rec.Seq] = true
	}
}

// freePort is below the ephemeral range: the e2e tests kill and restart
// processes on the same address, and a port from the ephemeral range could
// be taken meanwhile by any client socket on the machine.
func freePort(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t)
}

// A stage started before its NATS server waits with a clear log line and
// works once the server is up; the monitoring API shows what flowed.
func TestStageWaitsForNATSAndReportsMetrics(t *testing.T) {
	dir := t.TempDir()
	natsAddr := freePort(t)
	httpAddr := freePort(t)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush        0.2
    HTTP_Server  On
    HTTP_Listen  127.0.0.1
    HTTP_Port    %s
    Health_Check On
    nats.url     nats://%s

[INPUT]
    Name     dummy
    Tag      app
    Samples  50
    Rate     100

[OUTPUT]
    Name   counter
    Match  *
`, httpPort, natsAddr))
	p := startFloe(t, "all-stages", nil, "run", "--stage=ingest,filter,router,output", "-c", cfg)
	p.waitLog(`NATS not reachable yet, retrying`, 20*time.Second)
	startFloe(t, "nats", nil, "run", "--stage=nats", "--nats-listen="+natsAddr, "--storage-path="+filepath.Join(dir, "nats"))
	p.waitLog(`floe started`, 30*time.Second)

	var metrics struct {
		Input  map[string]map[string]uint64 `json:"input"`
		Output map[string]map[string]uint64 `json:"output"`
	}
	eventually(t, 30*time.Second, "50 records processed by the counter output", func() (bool, string) {
		resp, err := http.Get("http://" + httpAddr + "/api/v1/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &metrics); err != nil {
			return false, err.Error()
		}
		return metrics.Output["counter.0"]["proc_records"] == 50, string(body)
	})
	if got := metrics.Input["dummy.0"]["records"]; got != 50 {
		t.Errorf("input records = %d, want 50", got)
	}
	for path, want := range map[string]string{
		"/api/v1/health":             "ok\n",
		"/api/v1/metrics/prometheus": `fluentbit_output_proc_records_total{name="counter.0"} 50`,
		"/api/v1/uptime":             `"uptime_sec"`,
	} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %q, want %q", path, resp.StatusCode, tail(string(body), 500), want)
		}
	}
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
}
