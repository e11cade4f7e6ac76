package forward

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	proto "github.com/floe-io/floe/internal/forward"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

// ---- a Writer whose receipts the test controls ----

type write struct {
	tag     string
	data    []byte
	records int
}

type receipt struct {
	done chan struct{}
	err  error
}

func (r *receipt) Done() <-chan struct{} { return r.done }
func (r *receipt) Err() error            { return r.err }

type testWriter struct {
	mu       sync.Mutex
	writes   []write
	held     []*receipt    // unresolved receipts while holding
	hold     bool          // receipts wait for release()
	fail     error         // receipts resolve with this error
	block    chan struct{} // Write blocks until closed, when set
	flushes  atomic.Int64  // plugin.Flusher calls
	inWrite  atomic.Int64  // Writes entered
	notified chan struct{} // a value after each write
	_        [0]func()     // not comparable
}

func newWriter() *testWriter { return &testWriter{notified: make(chan struct{}, 1<<16)} }

func (w *testWriter) Write(ctx context.Context, tag string, data []byte, records int) (plugin.Receipt, error) {
	w.inWrite.Add(1)
	w.mu.Lock()
	block := w.block
	w.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r := &receipt{done: make(chan struct{})}
	w.mu.Lock()
	w.writes = append(w.writes, write{tag, append([]byte(nil), data...), records})
	r.err = w.fail
	if w.hold {
		w.held = append(w.held, r)
	} else {
		close(r.done)
	}
	w.mu.Unlock()
	w.notified <- struct{}{}
	return r, nil
}

func (w *testWriter) Flush() { w.flushes.Add(1) }

func (w *testWriter) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.held {
		close(r.done)
	}
	w.held, w.hold = nil, false
}

func (w *testWriter) events(t *testing.T) map[string][]event.Event {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]event.Event{}
	for _, wr := range w.writes {
		it := event.NewIter(wr.data)
		n := 0
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			out[wr.tag] = append(out[wr.tag], ev)
			n++
		}
		if it.Err() != nil || n != wr.records {
			t.Fatalf("write of %d records holds %d (%v)", wr.records, n, it.Err())
		}
	}
	return out
}

func (w *testWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

// ---- harness ----

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type server struct {
	f    *Forward
	w    *testWriter
	logs *syncBuf
	reg  *telemetry.Registry
	addr string
	stop func() error
}

func props(t *testing.T, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeInput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "forward"})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i})
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindInput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

func start(t *testing.T, w *testWriter, kv ...string) *server {
	t.Helper()
	logs := &syncBuf{}
	reg := telemetry.NewRegistry("test")
	kv = append([]string{"listen", "127.0.0.1", "port", "0"}, kv...)
	in, err := New(context.Background(), plugin.Settings{Name: "forward.0", Telemetry: reg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, props(t, kv...))
	if err != nil {
		t.Fatal(err)
	}
	f := in.(*Forward)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, w) }()
	actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer acancel()
	a, err := f.Addr(actx)
	if err != nil {
		cancel()
		t.Fatal(err, <-done)
	}
	s := &server{f: f, w: w, logs: logs, reg: reg, addr: a.String()}
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	return s
}

func (s *server) netMetrics() *telemetry.NetInputMetrics { return s.reg.NetInput("forward.0") }

type client struct {
	t   *testing.T
	c   net.Conn
	dec *proto.Decoder
}

func dial(t *testing.T, network, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, dec: proto.NewDecoder(c, 1024, 1<<20)}
}

func (c *client) send(b []byte) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next reads the server's next value within d.
func (c *client) next(d time.Duration) ([]byte, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	v, _, err := c.dec.Next()
	return v, err
}

func (c *client) ack(want string) {
	c.t.Helper()
	v, err := c.next(20 * time.Second)
	if err != nil {
		c.t.Fatalf("waiting for ack %q: %v", want, err)
	}
	got, err := proto.ParseAck(v)
	if err != nil || got != want {
		c.t.Fatalf("ack %q (%v), want %q", got, err, want)
	}
}

// closed reports whether the server closed the connection (EOF or reset) within d.
func (c *client) closed(d time.Duration) bool {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

var t0 = event.Time{Sec: 1700000000, Nsec: 987654321}

func entry(i int) []byte {
	b := event.AppendArrayHeader(nil, 2)
	b = event.Time{Sec: t0.Sec + int64(i), Nsec: t0.Nsec}.AppendMsgpack(b)
	return kvs("i", int64(i), "msg", fmt.Sprintf("event %d", i)).AppendMsgpack(b)
}

func stream(from, to int) []byte {
	var b []byte
	for i := from; i < to; i++ {
		b = append(b, entry(i)...)
	}
	return b
}

func chunkOpt(id string) *proto.Options { return &proto.Options{Chunk: id, Size: -1} }

// ---- tests ----

// Every mode arrives with its tag (prefixed), nanoseconds kept, and each
// chunk is acked; frames without chunk get no answer.
func TestModesArriveAndAreAcked(t *testing.T) {
	w := newWriter()
	s := start(t, w, "tag_prefix", "fw.")
	c := dial(t, "tcp", s.addr)

	c.send(proto.AppendMessage(nil, "msg", t0, kvs("i", int64(0)), chunkOpt("c0")))
	c.ack("c0")
	c.send(proto.AppendForward(nil, "fwd", stream(1, 4), 3, chunkOpt("c1")))
	c.ack("c1")
	c.send(proto.AppendPackedForward(nil, "packed", stream(4, 7), chunkOpt("c2")))
	c.ack("c2")
	str := event.AppendArrayHeader(nil, 3)
	str = event.AppendString(event.AppendString(str, "packedstr"), string(stream(7, 9)))
	c.send(chunkOpt("c3").AppendMsgpack(str))
	c.ack("c3")
	c.send([]byte{0xc0}) // heartbeat
	gz := append(proto.Gzip(stream(9, 10)), proto.Gzip(stream(10, 12))...)
	c.send(proto.AppendPackedForward(nil, "gz", gz, &proto.Options{Chunk: "c4", Size: 3, Compressed: "gzip"}))
	c.ack("c4")
	c.send(proto.AppendPackedForward(nil, "noack", stream(12, 13), nil))
	if v, err := c.next(300 * time.Millisecond); err == nil {
		t.Fatalf("answer %x to a frame without chunk", v)
	}

	deadline := time.Now().Add(10 * time.Second)
	for w.count() < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := w.events(t)
	want := map[string][2]int{"fw.msg": {0, 1}, "fw.fwd": {1, 4}, "fw.packed": {4, 7}, "fw.packedstr": {7, 9}, "fw.gz": {9, 12}, "fw.noack": {12, 13}}
	for tag, r := range want {
		evs := got[tag]
		if len(evs) != r[1]-r[0] {
			t.Fatalf("tag %s: %d events, want %d (all: %v)", tag, len(evs), r[1]-r[0], got)
		}
		for k, ev := range evs {
			i := r[0] + k
			if v, _ := ev.Body.Get("i"); v != int64(i) {
				t.Errorf("tag %s event %d body %v", tag, k, ev.Body)
			}
			if tag != "fw.msg" && ev.Time != (event.Time{Sec: t0.Sec + int64(i), Nsec: t0.Nsec}) {
				t.Errorf("tag %s event %d time %+v: nanoseconds lost", tag, k, ev.Time)
			}
		}
	}
	if got["fw.msg"][0].Time != t0 {
		t.Errorf("message time %+v", got["fw.msg"][0].Time)
	}
	if w.flushes.Load() == 0 {
		t.Error("acked chunks were not sealed at once (no Flush)")
	}
	if m := s.netMetrics(); m.ConnectionsTotal.Load() != 1 || m.Errors.Load() != 0 || m.Refused.Load() != 0 || m.Connections.Load() != 1 {
		t.Errorf("metrics connections %d errors %d refused %d open %d", m.ConnectionsTotal.Load(), m.Errors.Load(), m.Refused.Load(), m.Connections.Load())
	}
}

func TestTagOverride(t *testing.T) {
	w := newWriter()
	s := start(t, w, "tag", "fixed", "tag_prefix", "ignored.")
	c := dial(t, "tcp", s.addr)
	c.send(proto.AppendPackedForward(nil, "client.tag", stream(0, 2), chunkOpt("x")))
	c.ack("x")
	if got := w.events(t); len(got["fixed"]) != 2 || len(got) != 1 {
		t.Fatalf("events by tag: %v", got)
	}
}

// The ack waits for the receipt: while JetStream has not acknowledged the
// events, no ack; once it has, the ack comes. Acks keep frame order.
func TestAckWaitsForTheReceipt(t *testing.T) {
	w := newWriter()
	w.hold = true
	s := start(t, w)
	c := dial(t, "tcp", s.addr)
	c.send(proto.AppendPackedForward(nil, "a", stream(0, 5), chunkOpt("first")))
	c.send(proto.AppendMessage(nil, "a", t0, kvs("k", "v"), chunkOpt("second")))
	<-w.notified
	<-w.notified
	if v, err := c.next(500 * time.Millisecond); err == nil {
		t.Fatalf("ack %x arrived before the events were stored", v)
	}
	w.release()
	c.ack("first")
	c.ack("second")
}

// Events that could not be stored are never acked: the connection closes so
// that the client sends them again.
func TestNoAckWhenEventsAreNotStored(t *testing.T) {
	w := newWriter()
	w.fail = errors.New("publish failed: context canceled")
	s := start(t, w)
	c := dial(t, "tcp", s.addr)
	c.send(proto.AppendPackedForward(nil, "a", stream(0, 2), chunkOpt("lost")))
	v, err := c.next(10 * time.Second)
	if err == nil {
		t.Fatalf("got %x, want the connection closed without an ack", v)
	}
	if !strings.Contains(s.logs.String(), "no ack") {
		t.Errorf("logs do not say why: %s", s.logs.String())
	}
}

// While the Writer blocks, the connection is not read: no further frames are
// taken, nothing is acked; all of it goes through once it unblocks.
func TestBackpressureStopsReading(t *testing.T) {
	w := newWriter()
	block := make(chan struct{})
	w.block = block
	s := start(t, w, "buffer_chunk_size", "4k", "buffer_max_size", "64k")
	c := dial(t, "tcp", s.addr)
	frame := proto.AppendPackedForward(nil, "bp", stream(0, 100), nil)
	const frames = 10000 // 28 MB: more than the socket buffers hold
	sent := atomic.Int64{}
	sendDone := make(chan error, 1)
	go func() {
		for i := 0; i < frames; i++ {
			opt := chunkOpt(fmt.Sprint(i))
			if _, err := c.c.Write(proto.AppendPackedForward(nil, "bp", stream(0, 100), opt)); err != nil {
				sendDone <- err
				return
			}
			sent.Add(1)
		}
		sendDone <- nil
	}()
	// Wait until the client's writes stall (the kernel's socket buffers
	// are full), then check that the input took one frame only.
	deadline := time.Now().Add(60 * time.Second)
	last, stable := int64(-1), 0
	for stable < 10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if n := sent.Load(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	if sent.Load() >= frames {
		t.Fatalf("client sent all %d frames (%d bytes) while the input was blocked", frames, frames*len(frame))
	}
	if w.inWrite.Load() != 1 {
		t.Fatalf("%d writes entered while the first one blocks", w.inWrite.Load())
	}
	if v, err := c.next(200 * time.Millisecond); err == nil {
		t.Fatalf("ack %x while blocked", v)
	}
	close(block)
	for i := 0; i < frames; i++ {
		c.ack(fmt.Sprint(i))
	}
	if err := <-sendDone; err != nil {
		t.Fatal(err)
	}
	if got := len(w.events(t)["bp"]); got != frames*100 {
		t.Fatalf("%d events, want %d", got, frames*100)
	}
}

// Bad input closes that connection with a logged reason and a refusal; a
// well-behaved client on another connection is not disturbed.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	w := newWriter()
	s := start(t, w, "buffer_chunk_size", "16k", "buffer_max_size", "1M")
	good := dial(t, "tcp", s.addr)
	sendGood := func(i int) {
		good.send(proto.AppendPackedForward(nil, "good", stream(i, i+1), chunkOpt(fmt.Sprint("g", i))))
		good.ack(fmt.Sprint("g", i))
	}
	sendGood(0)
	valid := proto.AppendMessage(nil, "x", t0, kvs("a", "b"), nil)
	cases := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"garbage", append(append([]byte{}, valid...), []byte("GET / HTTP/1.1\r\n\r\n")...), fmt.Sprintf("invalid forward message at byte offset %d", len(valid))},
		{"invalid type byte", append(append([]byte{}, valid...), 0xc1), fmt.Sprintf("byte offset %d: invalid MessagePack type byte 0xc1", len(valid))},
		{"truncated frame", append(append([]byte{}, valid...), valid[:len(valid)-3]...), fmt.Sprintf("stream ended inside the message that starts at byte offset %d", len(valid))},
		{"bad entries", proto.AppendPackedForward(nil, "x", []byte{0x92, 0xa1, 'x', 0x80}, nil), "PackedForward message at byte offset 0"},
		{"metrics signal", proto.AppendPackedForward(nil, "x", nil, &proto.Options{Size: -1, Signal: 1}), "fluent_signal 1, metrics (cmetrics), is not accepted"},
		{"traces signal", proto.AppendPackedForward(nil, "x", nil, &proto.Options{Size: -1, Signal: 2}), "fluent_signal 2, traces (ctraces), is not accepted by the forward input: send metrics and traces to the opentelemetry input"},
		{"100 MiB message", append([]byte{0x92, 0xa1, 'x', 0xc6}, 0x06, 0x40, 0, 0), "buffer_max_size"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := dial(t, "tcp", s.addr)
			bad.send(tc.data)
			if tc.name == "truncated frame" {
				bad.c.(*net.TCPConn).CloseWrite()
			}
			if tc.name == "100 MiB message" {
				// Keep sending the payload: the server must refuse it long
				// before 100 MiB, without buffering it.
				go func() {
					chunk := make([]byte, 64<<10)
					for n := 0; n < 100<<20; n += len(chunk) {
						if _, err := bad.c.Write(chunk); err != nil {
							return
						}
					}
				}()
			}
			if !bad.closed(20 * time.Second) {
				t.Fatal("connection not closed")
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(s.logs.String(), tc.reason) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(s.logs.String(), tc.reason) {
				t.Fatalf("no logged reason containing %q", tc.reason)
			}
			if got := s.netMetrics().Errors.Load(); got != uint64(i+1) {
				t.Errorf("decode errors %d, want %d", got, i+1)
			}
			sendGood(i + 1)
		})
	}
	if got := len(w.events(t)["good"]); got != len(cases)+1 {
		t.Fatalf("good client: %d events, want %d", got, len(cases)+1)
	}
}

// A 100 MiB message does not make the input hold 100 MiB.
func TestHugeMessageMemoryStaysBounded(t *testing.T) {
	w := newWriter()
	s := start(t, w, "buffer_chunk_size", "64k", "buffer_max_size", "2M")
	c := dial(t, "tcp", s.addr)
	// Forward mode with 100 MiB of entries never announces its byte size:
	// the buffer grows to buffer_max_size and the connection is refused.
	hdr := []byte{0x92, 0xa1, 'x', 0xdd, 0x00, 0x40, 0x00, 0x00}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var peak atomic.Uint64
	sentBytes := atomic.Int64{}
	go func() {
		if _, err := c.c.Write(hdr); err != nil {
			return
		}
		e := entry(1)
		buf := bytes.Repeat(e, (256<<10)/len(e))
		var ms runtime.MemStats
		for n := 0; n < 100<<20; n += len(buf) {
			if _, err := c.c.Write(buf); err != nil {
				return
			}
			sentBytes.Add(int64(len(buf)))
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	if !c.closed(60 * time.Second) {
		t.Fatal("connection not closed")
	}
	if sentBytes.Load() >= 100<<20 {
		t.Fatal("the whole 100 MiB was taken")
	}
	if grew := int64(peak.Load()) - int64(before); grew > 32<<20 {
		t.Errorf("heap grew by %d MiB while a 100 MiB message was refused", grew>>20)
	}
	if !strings.Contains(s.logs.String(), "buffer_max_size") {
		t.Errorf("reason not logged")
	}
}

func TestSharedKeyAndUsers(t *testing.T) {
	w := newWriter()
	s := start(t, w, "shared_key", "s3cret", "self_hostname", "floe-test", "security.users", "alice pw1", "security.users", "bob pw2")
	login := func(cl proto.Client) (*client, proto.Pong) {
		c := dial(t, "tcp", s.addr)
		v, err := c.next(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		helo, err := proto.ParseHelo(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(helo.Auth) == 0 {
			t.Fatal("HELO without auth salt while users are configured")
		}
		ping := cl.NewPing(helo)
		c.send(proto.AppendPing(nil, ping))
		if v, err = c.next(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		pong, err := proto.ParsePong(v)
		if err != nil {
			t.Fatal(err)
		}
		if pong.AuthResult {
			if err := cl.VerifyPong(helo, ping, pong); err != nil {
				t.Fatal(err)
			}
		}
		return c, pong
	}
	c, pong := login(proto.Client{SharedKey: "s3cret", Hostname: "app", Username: "bob", Password: "pw2"})
	if !pong.AuthResult || pong.Hostname != "floe-test" {
		t.Fatalf("%+v", pong)
	}
	c.send(proto.AppendPackedForward(nil, "auth", stream(0, 3), chunkOpt("a1")))
	c.ack("a1")

	for _, bad := range []proto.Client{
		{SharedKey: "wrong", Hostname: "app", Username: "bob", Password: "pw2"},
		{SharedKey: "s3cret", Hostname: "app", Username: "bob", Password: "nope"},
		{SharedKey: "s3cret", Hostname: "app", Username: "eve", Password: "pw2"},
	} {
		c, pong := login(bad)
		if pong.AuthResult || pong.Reason == "" {
			t.Fatalf("%+v accepted: %+v", bad, pong)
		}
		if !c.closed(10 * time.Second) {
			t.Fatal("connection open after failed authentication")
		}
	}
	// A client that skips the handshake is refused.
	c = dial(t, "tcp", s.addr)
	if _, err := c.next(10 * time.Second); err != nil { // HELO
		t.Fatal(err)
	}
	c.send(proto.AppendPackedForward(nil, "sneaky", stream(0, 1), chunkOpt("z")))
	if !c.closed(10 * time.Second) {
		t.Fatal("connection without handshake kept open")
	}
	if got := w.events(t); len(got["sneaky"]) != 0 || len(got["auth"]) != 3 {
		t.Fatalf("events %v", got)
	}
	if m := s.netMetrics(); m.Refused.Load() != 3 || m.Errors.Load() != 1 {
		t.Errorf("refused %d (want 3 failed logins), decode errors %d (want 1: no handshake)", m.Refused.Load(), m.Errors.Load())
	}
	if !strings.Contains(s.logs.String(), "shared_key mismatch") {
		t.Errorf("reason not logged")
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fwd.sock")
	w := newWriter()
	start(t, w, "unix_path", path, "unix_perm", "0600")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v", fi.Mode().Perm())
	}
	c := dial(t, "unix", path)
	c.send(proto.AppendMessage(nil, "unix", t0, kvs("k", "v"), chunkOpt("u")))
	c.ack("u")
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	crt, key := selfSigned(t, dir)
	w := newWriter()
	s := start(t, w, "tls", "on", "tls.crt_file", crt, "tls.key_file", key)
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(crt)
	pool.AppendCertsFromPEM(pemBytes)
	tc, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	c := &client{t: t, c: tc, dec: proto.NewDecoder(tc, 1024, 1<<20)}
	c.send(proto.AppendPackedForward(nil, "tls", stream(0, 2), chunkOpt("t")))
	c.ack("t")
	// Plain text on the TLS port is refused.
	plain := dial(t, "tcp", s.addr)
	plain.send(proto.AppendPackedForward(nil, "plain", stream(0, 1), chunkOpt("p")))
	if !plain.closed(20 * time.Second) {
		t.Fatal("plain connection kept open")
	}
	if got := w.events(t); len(got["tls"]) != 2 || len(got["plain"]) != 0 {
		t.Fatalf("%v", got)
	}
}

func TestUDPHeartbeat(t *testing.T) {
	s := start(t, newWriter())
	pc, err := net.Dial("udp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	buf := make([]byte, 8)
	for i := 0; i < 20; i++ {
		_, _ = pc.Write([]byte{0})
		_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, err := pc.Read(buf); err == nil {
			if n != 1 || buf[0] != 0 {
				t.Fatalf("heartbeat answer %x", buf[:n])
			}
			return
		}
	}
	t.Skip("UDP heartbeat port not available on this host")
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"buffer_chunk_size", "2M", "buffer_max_size", "1M"}, "smaller than buffer_chunk_size"},
		{[]string{"security.users", "alice"}, "USER PASSWORD pairs"},
		{[]string{"tls", "on"}, "tls.crt_file and tls.key_file"},
		{[]string{"unix_path", "/tmp/x.sock", "unix_perm", "rw"}, "octal"},
		{[]string{"port", "70000"}, "out of range"},
	} {
		_, err := New(context.Background(), plugin.Settings{Name: "forward.0"}, props(t, c.kv...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.kv, err, c.want)
		}
	}
}

// Events read before a shutdown are written and acked within the grace time.
func TestShutdownAcksWhatWasRead(t *testing.T) {
	w := newWriter()
	w.hold = true
	s := start(t, w)
	c := dial(t, "tcp", s.addr)
	c.send(proto.AppendPackedForward(nil, "a", stream(0, 2), chunkOpt("late")))
	<-w.notified
	go func() {
		time.Sleep(200 * time.Millisecond)
		w.release()
	}()
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	c.ack("late")
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "crt.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, key
}

func kvs(pairs ...any) event.Map {
	m := make(event.Map, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		m = append(m, event.KV{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}

// Messages without a chunk option (a client sending one Message per event)
// are written together, per run of a tag, in order; events before a chunk to
// acknowledge, and before a bad message, are written first; and a lone
// message is written at once, with no more input to push it out.
func TestAcklessMessagesBatchedWithoutDelay(t *testing.T) {
	t.Run("burst", func(t *testing.T) {
		w := newWriter()
		s := start(t, w)
		c := dial(t, "tcp", s.addr)
		var b []byte
		tags := []string{}
		for i := range 1000 {
			tag := "a"
			if i >= 400 && i < 600 {
				tag = "b"
			}
			tags = append(tags, tag)
			b = proto.AppendMessage(b, tag, event.Time{Sec: t0.Sec + int64(i)}, kvs("i", int64(i)), nil)
		}
		// Then a chunk to acknowledge: it comes after all of them.
		b = proto.AppendPackedForward(b, "a", stream(1000, 1001), chunkOpt("c1"))
		c.send(b)
		c.ack("c1")
		w.mu.Lock()
		writes := append([]write(nil), w.writes...)
		w.mu.Unlock()
		var seen []int64
		var seenTags []string
		for _, wr := range writes {
			it := event.NewIter(wr.data)
			for it.Next() {
				ev, err := it.Event().Decode()
				if err != nil {
					t.Fatal(err)
				}
				v, _ := ev.Body.Get("i")
				if v == nil {
					v = int64(1000) // the chunk's entry has i too
				}
				seen = append(seen, v.(int64))
				seenTags = append(seenTags, wr.tag)
			}
		}
		if len(seen) != 1001 {
			t.Fatalf("%d events written, want 1001", len(seen))
		}
		for i, v := range seen {
			if v != int64(i) {
				t.Fatalf("event %d has i=%d: out of order", i, v)
			}
			if i < 1000 && seenTags[i] != tags[i] {
				t.Fatalf("event %d tagged %q, want %q", i, seenTags[i], tags[i])
			}
		}
		// 1000 messages in one send: a handful of writes (each read of the
		// socket and each change of tag ends one), not 1000.
		if len(writes) > 50 {
			t.Errorf("%d writes for 1000 messages and a chunk: not batched", len(writes))
		}
	})
	t.Run("lone message", func(t *testing.T) {
		w := newWriter()
		s := start(t, w)
		c := dial(t, "tcp", s.addr)
		c.send(proto.AppendMessage(nil, "x", t0, kvs("a", "b"), nil))
		select {
		case <-w.notified:
		case <-time.After(10 * time.Second):
			t.Fatal("a lone message was not written while the connection stayed open")
		}
		if got := len(w.events(t)["x"]); got != 1 {
			t.Fatalf("%d events", got)
		}
	})
	t.Run("bad message after good ones", func(t *testing.T) {
		w := newWriter()
		s := start(t, w)
		c := dial(t, "tcp", s.addr)
		var b []byte
		for i := range 5 {
			b = proto.AppendMessage(b, "x", t0, kvs("i", int64(i)), nil)
		}
		b = append(b, proto.AppendPackedForward(nil, "x", []byte{0x92, 0xa1, 'x', 0x80}, nil)...)
		c.send(b)
		if !c.closed(20 * time.Second) {
			t.Fatal("connection not closed after the bad message")
		}
		if got := len(w.events(t)["x"]); got != 5 {
			t.Fatalf("%d events written before the bad message, want 5", got)
		}
	})
}
