package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	in   *TCP
	w    *plugintest.Writer
	addr string
	logs *logBuf
	reg  *telemetry.Registry
	stop func()
}

func start(t *testing.T, w *plugintest.Writer, lines ...string) *running {
	t.Helper()
	logs := &logBuf{}
	reg := telemetry.NewRegistry("test")
	parsers, err := parser.Load(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := plugin.Settings{Name: "tcp.0", Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
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
	addr, err := in.(*TCP).Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{in: in.(*TCP), w: w, addr: addr, logs: logs, reg: reg}
	r.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(r.stop)
	return r
}

func send(t *testing.T, addr string, parts ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range parts {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // let reads split where the parts end
	}
	return "tcp://" + c.LocalAddr().String()
}

// waitBodies polls until n records arrived and returns them rendered.
func waitBodies(t *testing.T, w *plugintest.Writer, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := w.Events()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			var out []string
			for _, ev := range evs {
				out = append(out, plugintest.Render(ev.Body))
			}
			if len(out) != n {
				t.Fatalf("%d records, want %d:\n%s", len(out), n, strings.Join(out, "\n"))
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJSONStream(t *testing.T) {
	r := start(t, &plugintest.Writer{}, "source_address_key src")
	src := send(t, r.addr,
		`{"a":1}{"b":"two"}`+"\n",
		`{"split":`, ` "across reads"}`,
		"\n[1, \"x\"]\n",
		"not json\n",
		`{"after":"garbage"}`+"\n",
		"42\n",
		`{"last":true}`)
	got := waitBodies(t, r.w, 6)
	want := []string{
		`{"a":1,"src":"` + src + `"}`,
		`{"b":"two","src":"` + src + `"}`,
		`{"split":"across reads","src":"` + src + `"}`,
		`{"msg":[1,"x"],"src":"` + src + `"}`,
		`{"after":"garbage","src":"` + src + `"}`,
		`{"last":true,"src":"` + src + `"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range []string{"invalid JSON message", "not a JSON map or array"} {
		if !strings.Contains(r.logs.String(), s) {
			t.Errorf("log lacks %q", s)
		}
	}
	m := r.reg.NetInput("tcp.0")
	if m.Errors.Load() != 2 || m.ConnectionsTotal.Load() != 1 {
		t.Errorf("decode errors %d connections %d, want 2 and 1", m.Errors.Load(), m.ConnectionsTotal.Load())
	}
	for _, wr := range r.w.Writes {
		if wr.Tag != "" {
			t.Errorf("tag %q, want the input's own (\"\")", wr.Tag)
		}
	}
}

func TestFormatNone(t *testing.T) {
	r := start(t, &plugintest.Writer{}, "format none", `separator \r\n`)
	send(t, r.addr, "one\r\ntwo\r", "\n\r\n", "three with\nnewline\r\nunterminated")
	got := waitBodies(t, r.w, 4)
	want := `{"log":"one"}|{"log":"two"}|{"log":"three with\nnewline"}|{"log":"unterminated"}`
	if strings.Join(got, "|") != want {
		t.Errorf("records %s\nwant    %s", strings.Join(got, "|"), want)
	}
}

func TestParser(t *testing.T) {
	r := start(t, &plugintest.Writer{}, "parser logfmt", "source_address_key from")
	src := send(t, r.addr, "level=info msg=hello\n", "=\n")
	got := waitBodies(t, r.w, 2)
	want := `{"level":"info","msg":"hello","from":"` + src + `"}|{"log":"=","from":"` + src + `"}`
	if strings.Join(got, "|") != want {
		t.Errorf("records %s\nwant    %s", strings.Join(got, "|"), want)
	}
	if !strings.Contains(r.logs.String(), "switching format from 'json' to 'none'") {
		t.Error("format switch not logged")
	}
	if n := r.reg.NetInput("tcp.0").Unparsed.Load(); n != 1 {
		t.Errorf("unparsed %d, want 1", n)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ line, key string }{
		{"parser nope", "parser"},
		{"buffer_size x", "buffer_size"},
		{`separator \q`, "separator"},
		{"tls on", "tls.crt_file"},
		{"port 70000", "port"},
	} {
		_, err := New(context.Background(), plugin.Settings{Name: "tcp.0"}, plugintest.Props(Spec(), c.line))
		if err == nil || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), "test.conf:10") {
			t.Errorf("%q: err %v, want one naming %s at test.conf:10", c.line, err, c.key)
		}
	}
}

// A record longer than buffer_size closes that connection; others go on.
func TestOversizedRecordClosesConnection(t *testing.T) {
	r := start(t, &plugintest.Writer{}, "format none", "chunk_size 1", "buffer_size 2")
	big, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if _, err := big.Write([]byte(strings.Repeat("x", 5000))); err != nil {
		t.Fatal(err)
	}
	_ = big.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := big.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("oversized connection still open: %v", err)
	}
	send(t, r.addr, "small\n")
	if got := waitBodies(t, r.w, 1); got[0] != `{"log":"small"}` {
		t.Errorf("records %v", got)
	}
	if !strings.Contains(r.logs.String(), "exceeds the buffer limit") {
		t.Errorf("no log of the oversized record:\n%s", r.logs.String())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// While the pipeline is paused (Write blocks) the input stops reading: the
// client blocks in send once the socket buffers are full. After resume
// every record arrives once.
func TestPausedInputStopsReading(t *testing.T) {
	hold := make(chan struct{})
	r := start(t, &plugintest.Writer{Hold: hold}, "format none")
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("y", 1000)
	sent := 0
	var block bytes.Buffer
	blocked := false
	for total := 0; total < 512<<20; {
		block.Reset()
		for i := 0; i < 64; i++ {
			fmt.Fprintf(&block, "%d %s\n", sent+i, line)
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.Write(block.Bytes())
		if err != nil {
			if !isTimeout(err) {
				t.Fatal(err)
			}
			// Part of the block may be in the socket: finish it once resumed.
			rest := block.Bytes()[n:]
			close(hold)
			_ = c.SetWriteDeadline(time.Time{})
			if _, err := c.Write(rest); err != nil {
				t.Fatal(err)
			}
			sent += 64
			blocked = true
			break
		}
		sent += 64
		total += n
	}
	if !blocked {
		t.Fatal("the client never blocked: the input kept reading while paused")
	}
	c.Close()
	evs := waitEvents(t, r.w, sent)
	seen := make([]int, sent)
	for _, ev := range evs {
		v, _ := ev.Body.Get("log")
		var i int
		fmt.Sscanf(v.(string), "%d ", &i)
		seen[i]++
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("record %d arrived %d times", i, n)
		}
	}
}

func waitEvents(t *testing.T, w *plugintest.Writer, n int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs, err := w.Events()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n {
			if len(evs) > n {
				t.Fatalf("%d records, want %d", len(evs), n)
			}
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records after 60s, want %d", len(evs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
