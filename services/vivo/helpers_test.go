package vivo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	vivoout "github.com/floe-io/floe/internal/plugins/output/vivo"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

const testID = "v"

// env is a NATS server with one exporter's streams and a running vivo stage.
type env struct {
	t      *testing.T
	nats   *natstest.Server
	js     jetstream.JetStream
	pub    *jsx.Publisher
	props  *plugin.Props
	url    string
	svc    *Service
	cancel context.CancelFunc
	done   chan error
	seq    atomic.Int64
	reg    *telemetry.Registry // Config.Telemetry; nil unless a test sets it before start
}

func exporterProps(t testing.TB, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeOutput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: vivoout.Name})
	if !has(kv, "host") {
		sec.Props = append(sec.Props, config.Prop{Key: "host", Value: "127.0.0.1"})
	}
	if !has(kv, "port") {
		sec.Props = append(sec.Props, config.Prop{Key: "port", Value: "0"})
	}
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i})
	}
	if errs := plugin.NewRegistry().MustAdd(vivoout.Spec()).ValidateSection(plugin.KindOutput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(vivoout.Spec(), sec)
}

func has(kv []string, key string) bool {
	for i := 0; i < len(kv); i += 2 {
		if kv[i] == key {
			return true
		}
	}
	return false
}

// newEnv starts NATS, declares the exporter's streams with its
// stream_queue_size (as internal/app does) and starts the stage.
func newEnv(t *testing.T, kv ...string) *env {
	t.Helper()
	srv := natstest.Run(t)
	return newEnvOn(t, srv, kv...)
}

func newEnvOn(t *testing.T, srv *natstest.Server, kv ...string) *env {
	t.Helper()
	_, js := srv.Connect(t)
	e := newEnvJS(t, js, kv...)
	e.nats = srv
	return e
}

func newEnvJS(t *testing.T, js jetstream.JetStream, kv ...string) *env {
	t.Helper()
	e := &env{t: t, js: js, pub: jsx.NewPublisher(js), props: exporterProps(t, kv...)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{Vivo: []jsx.VivoStream{{ID: testID, MaxBytes: e.props.Size("stream_queue_size")}}}); err != nil {
		t.Fatal(err)
	}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	svc, err := New(e.js, Config{Exporters: []Exporter{{Name: "vivo_exporter.0", ID: testID, Props: e.props}}, Logger: testLogger(), JSON: event.DefaultJSON, Telemetry: e.reg})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Listening():
	case err := <-done:
		cancel()
		e.t.Fatalf("vivo did not start: %v", err)
	}
	e.svc, e.cancel, e.done = svc, cancel, done
	e.url = "http://" + svc.Addrs()[0]
	e.t.Cleanup(e.stop)
}

// stop stops the stage (idempotent).
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("vivo Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		e.t.Error("vivo did not stop within 10s")
	}
	e.cancel = nil
}

func testLogger() *slog.Logger {
	if os.Getenv("VIVO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// logs encodes events with the given JSON bodies at 1679416945.459254 s + i × 0.5 s.
func logs(bodies ...string) ([]byte, int) {
	var b []byte
	for i, body := range bodies {
		m, err := event.AppendFromJSON(nil, []byte(body))
		if err != nil {
			panic(err)
		}
		ns := int64(1679416945459254000) + int64(i)*500000000
		b = event.AppendRaw(b, event.Time{Sec: ns / 1e9, Nsec: uint32(ns % 1e9)}, nil, m)
	}
	return b, len(bodies)
}

// publish stores one chunk on a signal stream.
func (e *env) publish(signal, tag, source string, data []byte, records int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &chunk.Chunk{ID: fmt.Sprintf("t-%d", e.seq.Add(1)), Tag: tag, Type: signal, Records: records, Data: data, Source: source}
	if err := e.pub.Publish(ctx, jsx.VivoSubject(testID, signal, tag), c); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) publishLogs(tag string, bodies ...string) {
	e.t.Helper()
	data, n := logs(bodies...)
	e.publish(chunk.Logs, tag, "dummy.0", data, n)
}

type response struct {
	status int
	header http.Header
	body   string
	te     []string
}

func (e *env) get(path string, hdr ...string) response {
	e.t.Helper()
	return doGet(e.t, e.url+path, hdr...)
}

func doGet(t testing.TB, url string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b), te: res.TransferEncoding}
}

// raw sends a request on a fresh connection and returns the response head
// as it was on the wire (header names unaltered) and the body.
func (e *env) raw(method, path string) (head []string, body string) {
	e.t.Helper()
	addr := strings.TrimPrefix(e.url, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, path, addr)
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			e.t.Fatalf("read head: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		head = append(head, line)
	}
	rest, _ := io.ReadAll(br)
	return head, string(rest)
}

// headerNames lists the names of a raw head's header lines.
func headerNames(head []string) []string {
	var names []string
	for _, l := range head[1:] {
		if i := strings.IndexByte(l, ':'); i > 0 {
			names = append(names, l[:i])
		}
	}
	return names
}

func rawHeader(head []string, name string) (string, bool) {
	for _, l := range head[1:] {
		if i := strings.IndexByte(l, ':'); i > 0 && l[:i] == name {
			return strings.TrimSpace(l[i+1:]), true
		}
	}
	return "", false
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

// hdrs returns the Vivo range headers of a response ("" when absent).
func (r response) ids() (start, end, next string) {
	get := func(k string) string {
		if v, ok := r.header[http.CanonicalHeaderKey(k)]; ok {
			return v[0]
		}
		return ""
	}
	return get(hdrStartID), get(hdrEndID), get(hdrNextID)
}

func mustEvent(t testing.TB, data []byte) event.Event {
	t.Helper()
	it := event.NewIter(data)
	if !it.Next() {
		t.Fatalf("no event: %v", it.Err())
	}
	ev, err := it.Event().Decode()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func kv(k string, v any) event.KV { return event.KV{Key: k, Value: v} }

// purgeBefore removes the chunks with id < id (as eviction would).
func purgeBefore(t testing.TB, e *env, signal string, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, jsx.VivoStreamName(testID, signal))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(seq)); err != nil {
		t.Fatal(err)
	}
}

type counted struct {
	response
	lines int
}

// countingGet reads a response, counting its lines and bytes without keeping it.
func countingGet(t testing.TB, url string) (counted, int64) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var c counted
	c.status, c.header, c.te = res.StatusCode, res.Header, res.TransferEncoding
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := res.Body.Read(buf)
		total += int64(n)
		for _, b := range buf[:n] {
			if b == '\n' {
				c.lines++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return c, total
}

// TestMain doubles as a NATS server process for measurements that must
// not count the server's memory (VIVO_TEST_NATS_DIR set).
func TestMain(m *testing.M) {
	if dir := os.Getenv("VIVO_TEST_NATS_DIR"); dir != "" {
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
			NoLog: true, NoSigs: true, MaxPayload: 8 << 20})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			os.Exit(1)
		}
		fmt.Println(srv.ClientURL())
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent goes
		srv.Shutdown()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// externalNATS runs a NATS server in a child process and connects to it.
func externalNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VIVO_TEST_NATS_DIR="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	url, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child NATS: %v", err)
	}
	nc, err := nats.Connect(strings.TrimSpace(url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
