package syslog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type running struct {
	in   *Syslog
	w    *plugintest.Writer
	addr string
	logs *logBuf
	m    *telemetry.NetInputMetrics
}

func start(t *testing.T, w *plugintest.Writer, lines ...string) *running {
	t.Helper()
	logs := &logBuf{}
	reg := telemetry.NewRegistry("test")
	parsers, err := parser.Load(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := plugin.Settings{Name: "syslog.0", Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Telemetry: reg, Parsers: parsers}
	in, err := New(context.Background(), set, plugintest.Props(Spec(), append([]string{"listen 127.0.0.1", "port 0"}, lines...)...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := in.(*Syslog).Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return &running{in: in.(*Syslog), w: w, addr: addr, logs: logs, m: reg.NetInput("syslog.0")}
}

func needLogger(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("logger"); err != nil {
		t.Skip("logger (util-linux/bsdutils) is not in PATH; install bsdutils to run the real-client syslog tests")
	}
}

func logger(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("logger", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("logger %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func waitEvents(t *testing.T, w *plugintest.Writer, n int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := w.Events()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			if len(evs) != n {
				var s []string
				for _, ev := range evs {
					s = append(s, plugintest.Render(ev.Body))
				}
				t.Fatalf("%d records, want %d:\n%s", len(evs), n, strings.Join(s, "\n"))
			}
			return evs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func field(ev event.Event, k string) string {
	v, _ := ev.Body.Get(k)
	s, _ := v.(string)
	return s
}

// checkLogger checks n messages "msg <i>" sent by logger, each once.
func checkLogger(t *testing.T, evs []event.Event, ident string, wantKeys ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range evs {
		if field(ev, "ident") != ident {
			t.Errorf("ident %q in %s", field(ev, "ident"), plugintest.Render(ev.Body))
		}
		for _, k := range wantKeys {
			if _, ok := ev.Body.Get(k); !ok {
				t.Errorf("no %s in %s", k, plugintest.Render(ev.Body))
			}
		}
		if ev.Time.Sec < time.Now().Add(-time.Hour).Unix() {
			t.Errorf("time %v is not the message's (now)", ev.Time.Std())
		}
		seen[field(ev, "message")]++
	}
	for i := range len(evs) {
		if m := fmt.Sprintf("msg %d", i); seen[m] != 1 {
			t.Errorf("%q arrived %d times (%v)", m, seen[m], seen)
		}
	}
}

func TestLoggerTCPNewline(t *testing.T) {
	needLogger(t)
	r := start(t, &plugintest.Writer{}, "mode tcp", "source_address_key src")
	_, port, _ := net.SplitHostPort(r.addr)
	for i := range 3 {
		logger(t, "-n", "127.0.0.1", "-P", port, "-T", "-t", "app", "--msgid", "ID7", fmt.Sprintf("msg %d", i))
	}
	evs := waitEvents(t, r.w, 3)
	checkLogger(t, evs, "app", "host", "pri", "time", "extradata")
	for _, ev := range evs {
		if field(ev, "msgid") != "ID7" || !strings.HasPrefix(field(ev, "src"), "tcp://127.0.0.1:") {
			t.Errorf("record %s", plugintest.Render(ev.Body))
		}
	}
	if r.m.Unparsed.Load() != 0 {
		t.Errorf("%d unparsed", r.m.Unparsed.Load())
	}
}

func TestLoggerTCPOctetCounting(t *testing.T) {
	needLogger(t)
	r := start(t, &plugintest.Writer{}, "mode tcp", "format octet_counting")
	_, port, _ := net.SplitHostPort(r.addr)
	for i := range 3 {
		logger(t, "-n", "127.0.0.1", "-P", port, "-T", "--octet-count", "-t", "octets", fmt.Sprintf("msg %d", i))
	}
	checkLogger(t, waitEvents(t, r.w, 3), "octets", "host")
}

func TestLoggerUDP(t *testing.T) {
	needLogger(t)
	r := start(t, &plugintest.Writer{}, "mode udp", "parser syslog-rfc3164", "source_address_key src")
	_, port, _ := net.SplitHostPort(r.addr)
	for i := range 3 {
		logger(t, "-n", "127.0.0.1", "-P", port, "-d", "--rfc3164", "-t", "bsd", fmt.Sprintf("msg %d", i))
	}
	evs := waitEvents(t, r.w, 3)
	checkLogger(t, evs, "bsd", "host", "pri")
	if !strings.HasPrefix(field(evs[0], "src"), "udp://127.0.0.1:") {
		t.Errorf("src %q", field(evs[0], "src"))
	}
}

func TestLoggerUnixSockets(t *testing.T) {
	needLogger(t)
	for _, mode := range []string{"unix_udp", "unix_tcp"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.sock")
			// logger puts the host name in: the remote form of RFC 3164.
			r := start(t, &plugintest.Writer{}, "mode "+mode, "path "+path, "unix_perm 0600", "source_address_key src", "parser syslog-rfc3164")
			args := []string{"-u", path, "--rfc3164", "-t", "local"}
			if mode == "unix_tcp" {
				args = append(args, "-T")
			} else {
				args = append(args, "-d")
			}
			for i := range 2 {
				logger(t, append(args, fmt.Sprintf("msg %d", i))...)
			}
			evs := waitEvents(t, r.w, 2)
			checkLogger(t, evs, "local")
			if field(evs[0], "src") != "unix://"+path {
				t.Errorf("src %q", field(evs[0], "src"))
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("socket mode %v %v, want 0600", fi.Mode(), err)
			}
		})
	}
}

// The unix modes default to syslog-rfc3164-local: what syslog(3) sends to
// /dev/log, without a host name.
func TestUnixDefaultParser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-log")
	r := start(t, &plugintest.Writer{}, "path "+path)
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "<30>Dec  2 13:44:19 sshd[812]: Accepted publickey\n")
	evs := waitEvents(t, r.w, 1)
	if got := plugintest.Render(evs[0].Body); got != `{"pri":"30","time":"Dec  2 13:44:19","ident":"sshd","pid":"812","message":"Accepted publickey"}` {
		t.Errorf("record %s", got)
	}
}

// A message the parser rejects is kept whole under "message" and counted.
func TestUnparsedKept(t *testing.T) {
	r := start(t, &plugintest.Writer{}, "mode tcp", "raw_message_key raw")
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "this is not syslog\n<14>1 2024-05-01T10:00:00.5Z h app 12 - - fine\n")
	c.Close()
	evs := waitEvents(t, r.w, 2)
	if got := plugintest.Render(evs[0].Body); got != `{"message":"this is not syslog","raw":"this is not syslog"}` {
		t.Errorf("unparsed record %s", got)
	}
	if field(evs[1], "message") != "fine" || field(evs[1], "raw") != "<14>1 2024-05-01T10:00:00.5Z h app 12 - - fine" ||
		evs[1].Time != (event.Time{Sec: 1714557600, Nsec: 500000000}) {
		t.Errorf("parsed record %s at %v", plugintest.Render(evs[1].Body), evs[1].Time)
	}
	if r.m.Unparsed.Load() != 1 {
		t.Errorf("unparsed %d, want 1", r.m.Unparsed.Load())
	}
}

func TestBrokenOctetCountingClosesConnection(t *testing.T) {
	r := start(t, &plugintest.Writer{}, "mode tcp", "format octet_counting")
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "<13>no length prefix\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection not closed: %v", err)
	}
	if !strings.Contains(r.logs.String(), "invalid octet-counting length") || r.m.Errors.Load() != 1 {
		t.Errorf("errors %d, logs:\n%s", r.m.Errors.Load(), r.logs.String())
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// While paused, a datagram input drops what arrives and counts it; it
// takes messages again by itself on resume.
func TestPausedUDPDropsAndCounts(t *testing.T) {
	r := start(t, &plugintest.Writer{}, "mode udp")
	c, err := net.Dial("udp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := func(i int) string { return fmt.Sprintf("<14>1 2024-05-01T10:00:00Z h app - - - msg %d", i) }
	r.in.Pause()
	for i := range 5 {
		fmt.Fprint(c, msg(i))
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.m.Dropped.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.m.Dropped.Load() != 5 || r.w.Count() != 0 {
		t.Fatalf("dropped %d, written %d; want 5 and 0", r.m.Dropped.Load(), r.w.Count())
	}
	r.in.Resume()
	fmt.Fprint(c, msg(0)+"\n")
	evs := waitEvents(t, r.w, 1)
	if field(evs[0], "message") != "msg 0" {
		t.Errorf("after resume: %s", plugintest.Render(evs[0].Body))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"mode unix_tcp"}, "test.conf:10: key mode: mode unix_tcp needs path"},
		{[]string{"mode tcp", "parser nope"}, `test.conf:11: key parser: parser "nope" not found`},
		{[]string{"mode udp", "tls on", "tls.crt_file x", "tls.key_file y"}, "tls.crt_file"},
		{[]string{"path /tmp/x", "unix_perm 9z"}, "unix_perm"},
	} {
		parsers, _ := parser.Load(nil, nil, nil)
		_, err := New(context.Background(), plugin.Settings{Parsers: parsers}, plugintest.Props(Spec(), c.lines...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.lines, err, c.want)
		}
	}
}
