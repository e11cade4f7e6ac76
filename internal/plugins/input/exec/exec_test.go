package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

func newExec(t *testing.T, lines ...string) (*Exec, *telemetry.NetInputMetrics) {
	t.Helper()
	reg := telemetry.NewRegistry("test")
	parsers, _ := parser.Load(nil, nil, nil)
	in, err := New(context.Background(), plugin.Settings{Name: "exec.0", Telemetry: reg, Parsers: parsers}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatal(err)
	}
	x := in.(*Exec)
	x.now = func() event.Time { return event.Time{Sec: 1700000000} }
	return x, reg.NetInput("exec.0")
}

func bodies(t *testing.T, w *plugintest.Writer) []string {
	t.Helper()
	evs, err := w.Events()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, plugintest.Render(ev.Body))
	}
	return out
}

func TestOneshotExits(t *testing.T) {
	x, _ := newExec(t, "command printf 'a\\n\\nlong-line\\nlast' ; echo err >&2", "exit_after_oneshot on", "buf_size 6")
	w := &plugintest.Writer{Delay: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := x.Run(ctx, w); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("exit_after_oneshot: Run did not return after the command")
	}
	got := strings.Join(bodies(t, w), "|")
	want := `{"exec":"a"}|{"exec":""}|{"exec":"long-"}|{"exec":"line"}|{"exec":"last"}`
	if got != want {
		t.Errorf("records %s\nwant    %s", got, want)
	}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	if w.Stored != 5 {
		t.Errorf("Run returned with %d of 5 records stored", w.Stored)
	}
}

func TestIntervalAndParser(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	x, m := newExec(t, "command echo run >> "+counter+"; echo 'k=v n=1'; echo '='", "interval_sec 0", "interval_nsec 50000000", "parser logfmt")
	w := &plugintest.Writer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx, w) }()
	deadline := time.Now().Add(20 * time.Second)
	for w.Count() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := bodies(t, w)
	if len(got) < 3 {
		t.Fatalf("%d records after 20s of 50ms intervals", len(got))
	}
	for _, b := range got {
		if b != `{"k":"v","n":"1"}` {
			t.Errorf("record %s", b)
		}
	}
	runs, _ := os.ReadFile(counter)
	if n := strings.Count(string(runs), "run"); n < len(got) || m.Unparsed.Load() < uint64(len(got)) {
		t.Errorf("%d runs, %d unparsed lines for %d records", n, m.Unparsed.Load(), len(got))
	}
}

// Stopping Floe stops a command still running, with its children.
func TestStopKillsCommand(t *testing.T) {
	x, _ := newExec(t, "command sleep 60 & sleep 60; echo never", "oneshot on")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx, &plugintest.Writer{}) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop the running command")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"oneshot on"}, "no input 'command' was given"},
		{[]string{"command true", "parser nope"}, `test.conf:11: key parser: requested parser "nope" not found`},
		{[]string{"command true", "propagate_exit_code on"}, "makes no sense without exit_after_oneshot"},
	} {
		_, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), c.lines...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.lines, err, c.want)
		}
	}
}

// exit_after_oneshot with propagate_exit_code: once Run has returned (nil,
// its records stored) the input's ExitCode is the command's status, 128+N
// when killed by signal N; without propagate_exit_code it is 0.
func TestPropagateExitCode(t *testing.T) {
	for _, tc := range []struct {
		name, command string
		propagate     bool
		want          int
	}{
		{"status 3", "echo out; exit 3", true, 3},
		{"status 0", "echo out; exit 0", true, 0},
		{"killed", "echo out; kill -KILL $$", true, 137},
		{"not propagated", "echo out; exit 3", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := []string{"command " + tc.command, "exit_after_oneshot on"}
			if tc.propagate {
				lines = append(lines, "propagate_exit_code on")
			}
			x, _ := newExec(t, lines...)
			w := &plugintest.Writer{Delay: 100 * time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := x.Run(ctx, w); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var in plugin.Input = x
			ec, ok := in.(interface{ ExitCode() int })
			if !ok {
				t.Fatal("the exec input does not report an exit code")
			}
			if got := ec.ExitCode(); got != tc.want {
				t.Errorf("ExitCode %d, want %d", got, tc.want)
			}
			if got := strings.Join(bodies(t, w), "|"); got != `{"exec":"out"}` {
				t.Errorf("records %s", got)
			}
			w.Mu.Lock()
			defer w.Mu.Unlock()
			if w.Stored != 1 {
				t.Errorf("Run returned with %d of 1 record stored", w.Stored)
			}
		})
	}
}
