package httpout

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// ---- helpers ----

func section(kv ...string) *config.Section {
	sec := &config.Section{Type: config.TypeOutput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "http", File: "test.conf", Line: 1})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i/2})
	}
	return sec
}

func props(t testing.TB, kv ...string) *plugin.Props {
	t.Helper()
	sec := section(kv...)
	reg := plugin.NewRegistry().MustAdd(Spec())
	if errs := reg.ValidateSection(plugin.KindOutput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

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

func newTest(t testing.TB, kv ...string) (*Output, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o, err := newOutput(plugin.Settings{Name: "http.0", Logger: log, Service: plugin.Service{JSON: event.DefaultJSON}}, props(t, kv...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o, lb
}

// request is what the test server received.
type request struct {
	Method, URI, Host string
	Header            http.Header
	Body              []byte
	TLS               *tls.ConnectionState
}

// server records requests and answers with the handler's status and body.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []request
	conns    atomic.Int32
	respond  func(w http.ResponseWriter, r *http.Request)
	hostPort []string // host, port
}

func newServer(t testing.TB, respond func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{respond: respond}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	return s
}

func (s *server) start(t testing.TB) *server {
	s.Start()
	t.Cleanup(s.Close)
	s.setAddr(t)
	return s
}

func (s *server) setAddr(t testing.TB) {
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	s.hostPort = []string{"host", u.Hostname(), "port", u.Port()}
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, request{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: b, TLS: r.TLS})
	s.mu.Unlock()
	if s.respond != nil {
		s.respond(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *server) last(t testing.TB) request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("the server received no request")
	}
	return s.reqs[len(s.reqs)-1]
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func startServer(t testing.TB, respond func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	return newServer(t, respond).start(t)
}

func status(code int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func with(s *server, kv ...string) []string {
	return append(append([]string(nil), s.hostPort...), kv...)
}

func mp(kv ...any) event.Map {
	m := event.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, event.KV{Key: kv[i].(string), Value: kv[i+1]})
	}
	return m
}

func testChunk() *chunk.Chunk {
	var data []byte
	e1 := event.Event{Time: event.Time{Sec: 1700000000, Nsec: 123456789}, Body: mp("message", "dummy")}
	e2 := event.Event{Time: event.Time{Sec: 1700000001}, Body: mp("n", int64(-1), "f", 1.5, "s", "é")}
	data = e1.AppendMsgpack(data)
	data = e2.AppendMsgpack(data)
	return &chunk.Chunk{Tag: "app.log", Records: 2, Data: data}
}

func flush(t testing.TB, o *Output) error {
	t.Helper()
	return o.Flush(context.Background(), testChunk())
}

func mustFlush(t testing.TB, o *Output) {
	t.Helper()
	if err := flush(t, o); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// ---- spec ----

func TestSpec(t *testing.T) {
	s := Spec()
	if s.Name != "http" || s.Kind != plugin.KindOutput || s.NewOutput == nil {
		t.Fatalf("bad spec %+v", s)
	}
	for k, want := range map[string]string{
		"host": "127.0.0.1", "port": "80", "uri": "/", "format": "json", "json_date_key": "date",
		"json_date_format": "double", "allow_duplicated_headers": "true", "log_response_payload": "true",
		"http_method": "POST", "http.response_timeout": "60s", "workers": "2",
	} {
		if key, ok := s.Key(k); !ok || key.Default != want {
			t.Errorf("key %s: %+v %v, want default %q", k, key, ok, want)
		}
	}
	if key, _ := s.Key("header"); !key.Multi {
		t.Error("header is not repeatable")
	}
	// tls.* and net.* are accepted by the registry.
	props(t, "tls", "on", "tls.verify", "off", "net.connect_timeout", "5s", "format", "gelf", "compress", "zstd")
}

// ---- formats ----

const (
	wantJSON = `[{"date":1700000000.123457,"message":"dummy"},{"date":1700000001.0,"n":-1,"f":1.5,"s":"\u00e9"}]`
	wantLine = `{"date":1700000000.123457,"message":"dummy"}` + "\n" + `{"date":1700000001.0,"n":-1,"f":1.5,"s":"\u00e9"}` + "\n"
)

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		format, ctype, body string
	}{
		{"", "application/json", wantJSON},
		{"json", "application/json", wantJSON},
		{"json_lines", "application/x-ndjson", wantLine},
		{"json_stream", "application/json", strings.ReplaceAll(wantLine, "\n", "")},
		{"msgpack", "application/msgpack", string(testChunk().Data)},
	} {
		t.Run(c.format, func(t *testing.T) {
			s := startServer(t, nil)
			kv := with(s)
			if c.format != "" {
				kv = append(kv, "format", c.format)
			}
			o, _ := newTest(t, kv...)
			mustFlush(t, o)
			r := s.last(t)
			if r.Method != "POST" || r.URI != "/" {
				t.Errorf("request %s %s", r.Method, r.URI)
			}
			if got := r.Header.Values("Content-Type"); len(got) != 1 || got[0] != c.ctype {
				t.Errorf("Content-Type %q, want %q", got, c.ctype)
			}
			if got := r.Header.Get("User-Agent"); got != "Fluent-Bit" {
				t.Errorf("User-Agent %q", got)
			}
			if r.Header.Get("Content-Encoding") != "" || r.Header.Get("Authorization") != "" || r.Header.Get("Accept-Encoding") != "" {
				t.Errorf("unexpected headers %v", r.Header)
			}
			if string(r.Body) != c.body {
				t.Errorf("body\n%q\nwant\n%q", r.Body, c.body)
			}
		})
	}
}

func TestJSONDateOptions(t *testing.T) {
	s := startServer(t, nil)
	o, _ := newTest(t, with(s, "format", "json_lines", "json_date_key", "@ts", "json_date_format", "iso8601")...)
	mustFlush(t, o)
	want := `{"@ts":"2023-11-14T22:13:20.123456Z","message":"dummy"}` + "\n" + `{"@ts":"2023-11-14T22:13:21.000000Z","n":-1,"f":1.5,"s":"\u00e9"}` + "\n"
	if got := string(s.last(t).Body); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	o, _ = newTest(t, with(s, "format", "json_stream", "json_date_key", "false")...)
	mustFlush(t, o)
	if got := string(s.last(t).Body); got != `{"message":"dummy"}{"n":-1,"f":1.5,"s":"\u00e9"}` {
		t.Errorf("no date key: got %s", got)
	}
}

// ---- request line and headers ----

func TestURIAndMethod(t *testing.T) {
	s := startServer(t, nil)
	for _, c := range []struct{ uri, method, want string }{
		{"something", "", "/something"},
		{"/a/b?x=1&y=2", "put", "/a/b?x=1&y=2"},
		{"/receiver/v1/http/[PrivateKey]", "", "/receiver/v1/http/[PrivateKey]"},
	} {
		kv := with(s, "uri", c.uri)
		if c.method != "" {
			kv = append(kv, "http_method", c.method)
		}
		o, _ := newTest(t, kv...)
		mustFlush(t, o)
		r := s.last(t)
		wantMethod := "POST"
		if c.method != "" {
			wantMethod = "PUT"
		}
		if r.URI != c.want || r.Method != wantMethod {
			t.Errorf("uri %q: got %s %s, want %s %s", c.uri, r.Method, r.URI, wantMethod, c.want)
		}
		if r.Host != s.Listener.Addr().String() {
			t.Errorf("Host %q, want %q", r.Host, s.Listener.Addr())
		}
	}
}

func TestHeaders(t *testing.T) {
	s := startServer(t, nil)
	o, _ := newTest(t, with(s,
		"header", "X-Key-A Value_A",
		"header", "X-Key-B   value with  spaces ",
		"header_tag", "FLUENT-TAG",
		"http_user", "fluent", "http_passwd", "s3cr:et",
	)...)
	mustFlush(t, o)
	r := s.last(t)
	for k, want := range map[string]string{
		"X-Key-A":       "Value_A",
		"X-Key-B":       "value with  spaces",
		"Fluent-Tag":    "app.log",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("fluent:s3cr:et")),
		"User-Agent":    "Fluent-Bit",
	} {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	user, pass, ok := (&http.Request{Header: r.Header}).BasicAuth()
	if !ok || user != "fluent" || pass != "s3cr:et" {
		t.Errorf("basic auth %q %q %v", user, pass, ok)
	}
}

func TestBasicAuthEmptyPassword(t *testing.T) {
	s := startServer(t, nil)
	o, _ := newTest(t, with(s, "http_user", "fluent")...)
	mustFlush(t, o)
	if got := s.last(t).Header.Get("Authorization"); got != "Basic "+base64.StdEncoding.EncodeToString([]byte("fluent:")) {
		t.Errorf("Authorization %q", got)
	}
	o, _ = newTest(t, with(s, "http_passwd", "only")...)
	mustFlush(t, o)
	if got := s.last(t).Header.Get("Authorization"); got != "" {
		t.Errorf("password without user sent Authorization %q", got)
	}
}

func TestDuplicatedHeaders(t *testing.T) {
	s := startServer(t, nil)
	kv := with(s, "format", "json", "header", "Content-Type text/plain", "header", "X-A 1", "header", "x-a 2",
		"header", "User-Agent floe-test", "header", "Host example.com")
	o, _ := newTest(t, kv...)
	mustFlush(t, o)
	r := s.last(t)
	if got := r.Header.Values("Content-Type"); len(got) != 2 || got[0] != "application/json" || got[1] != "text/plain" {
		t.Errorf("allowed duplicates: Content-Type %q", got)
	}
	if got := r.Header.Values("X-A"); len(got) != 2 {
		t.Errorf("allowed duplicates: X-A %q", got)
	}
	if r.Header.Get("User-Agent") != "floe-test" || r.Host != "example.com" {
		t.Errorf("User-Agent %q Host %q", r.Header.Get("User-Agent"), r.Host)
	}

	o, _ = newTest(t, append(kv, "allow_duplicated_headers", "off")...)
	mustFlush(t, o)
	r = s.last(t)
	if got := r.Header.Values("Content-Type"); len(got) != 1 || got[0] != "text/plain" {
		t.Errorf("no duplicates: Content-Type %q", got)
	}
	if got := r.Header.Values("X-A"); len(got) != 1 || got[0] != "2" {
		t.Errorf("no duplicates: X-A %q", got)
	}
}

func TestHeaderTagSkipped(t *testing.T) {
	s := startServer(t, nil)
	o, lb := newTest(t, with(s, "header_tag", "X-Tag")...)
	c := testChunk()
	c.Tag = "bad\r\ntag"
	if err := o.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := s.last(t).Header.Values("X-Tag"); len(got) != 0 {
		t.Errorf("X-Tag sent: %q", got)
	}
	if !strings.Contains(lb.String(), "header_tag header skipped") {
		t.Errorf("no warning in log:\n%s", lb)
	}
}

func TestGzip(t *testing.T) {
	s := startServer(t, nil)
	for _, f := range []string{"json", "msgpack"} {
		o, _ := newTest(t, with(s, "compress", "gzip", "format", f)...)
		for range 2 { // the pooled writer and buffers are reused
			mustFlush(t, o)
			r := s.last(t)
			if r.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q", r.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			want := wantJSON
			if f == "msgpack" {
				want = string(testChunk().Data)
			}
			if string(b) != want {
				t.Errorf("%s: decompressed %q", f, b)
			}
		}
	}
}

// ---- responses ----

func TestStatusMapping(t *testing.T) {
	for _, c := range []struct {
		code      int
		ok, perm  bool
		throttled bool
	}{
		{200, true, false, false}, {201, true, false, false}, {202, true, false, false},
		{203, true, false, false}, {204, true, false, false}, {205, true, false, false},
		{206, false, false, false}, {226, false, false, false},
		{301, false, false, false}, {304, false, false, false},
		{400, false, true, false}, {401, false, true, false}, {403, false, true, false},
		{404, false, true, false}, {413, false, true, false}, {422, false, true, false},
		{408, false, false, false}, {429, false, false, false},
		{500, false, false, false}, {502, false, false, false}, {503, false, false, false}, {504, false, false, false},
	} {
		s := startServer(t, func(w http.ResponseWriter, r *http.Request) {
			if c.code == 301 {
				http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
				return
			}
			w.WriteHeader(c.code)
			if c.code != 204 && c.code != 304 && c.code != 205 {
				_, _ = io.WriteString(w, "answer body")
			}
		})
		o, _ := newTest(t, s.hostPort...)
		err := flush(t, o)
		if (err == nil) != c.ok {
			t.Errorf("%d: err %v, want ok=%v", c.code, err, c.ok)
			continue
		}
		if err == nil {
			continue
		}
		if plugin.IsPermanent(err) != c.perm {
			t.Errorf("%d: permanent=%v, want %v (%v)", c.code, plugin.IsPermanent(err), c.perm, err)
		}
		if _, th := plugin.ThrottleDelay(err); th != c.throttled {
			t.Errorf("%d: throttled=%v", c.code, th)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != c.code {
			t.Errorf("%d: error %v is not a StatusError with the status", c.code, err)
		}
		if s.count() != 1 {
			t.Errorf("%d: %d requests (redirect followed?)", c.code, s.count())
		}
	}
}

func TestResponseLogging(t *testing.T) {
	s := startServer(t, status(200, `{"accepted":2}`))
	o, lb := newTest(t, s.hostPort...)
	mustFlush(t, o)
	addr := s.Listener.Addr().String()
	if want := "level=INFO msg=\"" + addr + ", HTTP status=200\\n{\\\"accepted\\\":2}\""; !strings.Contains(lb.String(), want) {
		t.Errorf("log\n%s\nlacks\n%s", lb, want)
	}

	o, lb = newTest(t, with(s, "log_response_payload", "off")...)
	mustFlush(t, o)
	if want := "msg=\"" + addr + ", HTTP status=200\"\n"; !strings.Contains(lb.String(), want) {
		t.Errorf("log\n%s\nlacks\n%s", lb, want)
	}

	s = startServer(t, status(500, "boom"))
	o, lb = newTest(t, s.hostPort...)
	err := flush(t, o)
	if err == nil || !strings.Contains(err.Error(), "HTTP status=500: boom") {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(lb.String(), "level=ERROR msg=\""+s.Listener.Addr().String()+", HTTP status=500\\nboom\"") {
		t.Errorf("log\n%s", lb)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		code   int
		header string
		want   time.Duration
	}{
		{429, "7", 7 * time.Second},
		{503, "120", 2 * time.Minute},
		{503, "99999", time.Hour},
		{429, "0", 0},
		{429, "soon", 0},
		{500, "7", 0}, // only 429 and 503 are throttled
		{429, "", 0},
	} {
		s := startServer(t, func(w http.ResponseWriter, _ *http.Request) {
			if c.header != "" {
				w.Header().Set("Retry-After", c.header)
			}
			w.WriteHeader(c.code)
		})
		o, _ := newTest(t, s.hostPort...)
		err := flush(t, o)
		if err == nil || plugin.IsPermanent(err) {
			t.Errorf("%d %q: %v", c.code, c.header, err)
			continue
		}
		d, ok := plugin.ThrottleDelay(err)
		if ok != (c.want > 0) || d != c.want {
			t.Errorf("%d Retry-After %q: delay %v %v, want %v", c.code, c.header, d, ok, c.want)
		}
	}

	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if d, ok := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); !ok || d != 90*time.Second {
		t.Errorf("HTTP date: %v %v", d, ok)
	}
	if _, ok := retryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now); ok {
		t.Error("past date accepted")
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	o, lb := newTest(t, "host", "127.0.0.1", "port", itoa(addr.Port))
	err = flush(t, o)
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("connection refused: %v", err)
	}
	if _, ok := plugin.ThrottleDelay(err); ok {
		t.Error("connection refused throttled")
	}
	if !strings.Contains(err.Error(), "could not flush records to 127.0.0.1:") || !strings.Contains(lb.String(), "level=ERROR") {
		t.Errorf("error %v, log %s", err, lb)
	}
}

func TestResponseTimeout(t *testing.T) {
	release := make(chan struct{})
	s := startServer(t, func(w http.ResponseWriter, _ *http.Request) { <-release })
	defer close(release)
	o, _ := newTest(t, with(s, "http.response_timeout", "0.2")...)
	start := time.Now()
	err := flush(t, o)
	if err == nil || plugin.IsPermanent(err) || !strings.Contains(err.Error(), "http.response_timeout") {
		t.Fatalf("timeout: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
}

func TestReadIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	s := startServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "ab")
		w.(http.Flusher).Flush()
		<-release
	})
	defer close(release)
	o, _ := newTest(t, with(s, "http.read_idle_timeout", "0.2")...)
	err := flush(t, o)
	if err == nil || plugin.IsPermanent(err) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("idle timeout: %v", err)
	}

	// An idle pooled connection is not affected: it is reused after the
	// idle timeout has passed.
	s2 := startServer(t, nil)
	o, _ = newTest(t, with(s2, "net.io_timeout", "0.1")...)
	mustFlush(t, o)
	time.Sleep(300 * time.Millisecond)
	mustFlush(t, o)
	if n := s2.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 reused", n)
	}
}

func TestKeepAlive(t *testing.T) {
	s := startServer(t, status(200, strings.Repeat("x", 10000)))
	o, _ := newTest(t, s.hostPort...)
	for range 3 {
		mustFlush(t, o)
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 flushes, want 1", n)
	}
	s2 := startServer(t, nil)
	o, _ = newTest(t, with(s2, "net.keepalive", "off")...)
	for range 3 {
		mustFlush(t, o)
	}
	if n := s2.conns.Load(); n != 3 {
		t.Errorf("keepalive off: %d connections, want 3", n)
	}
}

func TestConcurrentFlushes(t *testing.T) {
	s := startServer(t, nil)
	o, _ := newTest(t, with(s, "compress", "gzip")...)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if err := flush(t, o); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if s.count() != 40 {
		t.Errorf("%d requests", s.count())
	}
}

func TestCanceledContext(t *testing.T) {
	s := startServer(t, nil)
	o, _ := newTest(t, s.hostPort...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := o.Flush(ctx, testChunk())
	if err == nil || plugin.IsPermanent(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestBadChunks(t *testing.T) {
	s := startServer(t, nil)
	o, _ := newTest(t, s.hostPort...)
	err := o.Flush(context.Background(), &chunk.Chunk{Tag: "t", Type: chunk.Metrics, Data: testChunk().Data})
	if !plugin.IsPermanent(err) {
		t.Errorf("metrics chunk: %v", err)
	}
	err = o.Flush(context.Background(), &chunk.Chunk{Tag: "t", Data: []byte{0x92, 0xc1}})
	if !plugin.IsPermanent(err) {
		t.Errorf("broken chunk: %v", err)
	}
	if s.count() != 0 {
		t.Errorf("%d requests sent", s.count())
	}
}

// ---- TLS ----

type pki struct {
	caFile, crtFile, keyFile string
	cert                     tls.Certificate
	pool                     *x509.CertPool
}

// newPKI writes a self-signed certificate for 127.0.0.1 and floe.test.
func newPKI(t testing.TB, name string) pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"floe.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := pki{caFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key")}
	p.crtFile = p.caFile
	crtPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(p.caFile, crtPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if p.cert, err = tls.X509KeyPair(crtPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AppendCertsFromPEM(crtPEM)
	return p
}

func startTLS(t testing.TB, srv pki, clientCAs *x509.CertPool) *server {
	t.Helper()
	s := newServer(t, nil)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{srv.cert}}
	if clientCAs != nil {
		s.TLS.ClientCAs = clientCAs
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	s.setAddr(t)
	return s
}

func TestTLS(t *testing.T) {
	srv := newPKI(t, "server")
	other := newPKI(t, "other")
	s := startTLS(t, srv, nil)
	for _, c := range []struct {
		name string
		kv   []string
		ok   bool
	}{
		{"verify off", []string{"tls", "on", "tls.verify", "off"}, true},
		{"verify with ca_file", []string{"tls", "on", "tls.ca_file", srv.caFile}, true},
		{"verify with ca_path", []string{"tls", "on", "tls.ca_path", filepath.Dir(srv.caFile)}, true},
		{"verify against system roots", []string{"tls", "on"}, false},
		{"verify with the wrong CA", []string{"tls", "on", "tls.ca_file", other.caFile}, false},
		// Fluent Bit checks host names only with tls.verify_hostname.
		{"vhost mismatch, hostname unchecked", []string{"tls", "on", "tls.ca_file", srv.caFile, "tls.vhost", "wrong.test"}, true},
		{"vhost mismatch, hostname checked", []string{"tls", "on", "tls.ca_file", srv.caFile, "tls.vhost", "wrong.test", "tls.verify_hostname", "on"}, false},
		{"vhost match, hostname checked", []string{"tls", "on", "tls.ca_file", srv.caFile, "tls.vhost", "floe.test", "tls.verify_hostname", "on"}, true},
		{"ip, hostname checked", []string{"tls", "on", "tls.ca_file", srv.caFile, "tls.verify_hostname", "on"}, true},
		{"min version", []string{"tls", "on", "tls.verify", "off", "tls.min_version", "TLSv1.3"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := s.count()
			o, _ := newTest(t, with(s, c.kv...)...)
			err := flush(t, o)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if r := s.last(t); r.TLS == nil || string(r.Body) != wantJSON {
					t.Errorf("request %+v", r)
				}
				return
			}
			if err == nil || plugin.IsPermanent(err) {
				t.Errorf("want a retryable TLS error, got %v", err)
			}
			if s.count() != n {
				t.Error("request reached the server")
			}
		})
	}

	// Plain HTTP to a TLS server: Go's server answers 400, which is ERROR
	// as any 4xx.
	o, _ := newTest(t, s.hostPort...)
	var se *StatusError
	if err := flush(t, o); !errors.As(err, &se) || se.Status != 400 || !plugin.IsPermanent(err) {
		t.Errorf("plain HTTP to TLS: %v", err)
	}
}

func TestTLSClientCertificate(t *testing.T) {
	srv, client := newPKI(t, "server"), newPKI(t, "client")
	s := startTLS(t, srv, client.pool)
	o, _ := newTest(t, with(s, "tls", "on", "tls.ca_file", srv.caFile, "tls.crt_file", client.crtFile, "tls.key_file", client.keyFile)...)
	mustFlush(t, o)
	if r := s.last(t); len(r.TLS.PeerCertificates) != 1 || r.TLS.PeerCertificates[0].Subject.CommonName != "client" {
		t.Errorf("client certificate not presented: %+v", r.TLS)
	}
	o, _ = newTest(t, with(s, "tls", "on", "tls.ca_file", srv.caFile)...)
	if err := flush(t, o); err == nil || plugin.IsPermanent(err) {
		t.Errorf("without a client certificate: %v", err)
	}
}

// ---- configuration errors ----

func TestConfigErrors(t *testing.T) {
	srv := newPKI(t, "server")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		key  string
		kv   []string
		want string
	}{
		{"proxy", []string{"proxy", "http://proxy:3128"}, "HTTP_PROXY"},
		{"compress", []string{"compress", "zstd"}, "zstd is not supported"},
		{"compress", []string{"compress", "snappy"}, "snappy is not supported"},
		{"port", []string{"port", "0"}, "out of range"},
		{"port", []string{"port", "70000"}, "out of range"},
		{"host", []string{"host", " "}, "empty"},
		{"uri", []string{"uri", "/a b"}, "space"},
		{"header", []string{"header", "X-Only"}, "name and a value"},
		{"header", []string{"header", "Bad:Name value"}, "not a valid header name"},
		{"header", []string{"header", "X-Ctl va\x01lue"}, "control character"},
		{"header_tag", []string{"header_tag", "bad tag"}, "not a valid header name"},
		{"tls.key_passwd", []string{"tls", "on", "tls.key_passwd", "x"}, "encrypted private keys"},
		{"tls.bogus", []string{"tls.bogus", "1"}, "unknown TLS key"},
		{"tls.verify", []string{"tls", "on", "tls.verify", "maybe"}, "not a boolean"},
		{"tls.ca_file", []string{"tls", "on", "tls.ca_file", missing}, "cannot read CA file"},
		{"tls.ca_file", []string{"tls", "on", "tls.ca_file", srv.keyFile}, "no PEM certificate"},
		{"tls.crt_file", []string{"tls", "on", "tls.crt_file", srv.crtFile}, "needs tls.key_file"},
		{"tls.key_file", []string{"tls", "on", "tls.key_file", srv.keyFile}, "needs tls.crt_file"},
		{"tls.crt_file", []string{"tls", "on", "tls.crt_file", srv.crtFile, "tls.key_file", missing}, "cannot load client certificate"},
		{"tls.min_version", []string{"tls", "on", "tls.min_version", "SSLv3"}, "unknown TLS version"},
		{"tls.min_version", []string{"tls", "on", "tls.min_version", "TLSv1.3", "tls.max_version", "TLSv1.2"}, "above"},
		{"net.connect_timeout", []string{"net.connect_timeout", "soon"}, "not a time"},
		{"net.keepalive", []string{"net.keepalive", "perhaps"}, "not a boolean"},
		{"net.tcp_keepalive_probes", []string{"net.tcp_keepalive_probes", "many"}, "not an integer"},
		{"net.source_address", []string{"net.source_address", "not an address"}, "invalid source address"},
		{"net.frobnicate", []string{"net.frobnicate", "1"}, "unknown network key"},
	} {
		_, err := newOutput(plugin.Settings{Name: "http.0"}, props(t, c.kv...))
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Errorf("%v: error %v is not a config error", c.kv, err)
			continue
		}
		if !strings.EqualFold(ce.Key, c.key) || !strings.Contains(ce.Msg, c.want) || ce.File != "test.conf" || ce.Line < 2 {
			t.Errorf("%v: got %s:%d key %q: %s; want key %q and %q", c.kv, ce.File, ce.Line, ce.Key, ce.Msg, c.key, c.want)
		}
	}

	// Values the registry rejects before the plugin sees them.
	reg := plugin.NewRegistry().MustAdd(Spec())
	for _, kv := range [][]string{
		{"format", "xml"}, {"compress", "lz4"}, {"http_method", "PATCH"}, {"json_date_format", "nope"},
		{"port", "http"}, {"http.response_timeout", "soon"}, {"allow_duplicated_headers", "maybe"},
		{"aws_auth", "on"}, {"body_key", "$b"},
	} {
		errs := reg.ValidateSection(plugin.KindOutput, section(kv...))
		if len(errs) != 1 || errs[0].Key != kv[0] {
			t.Errorf("%v: %v", kv, errs)
		}
	}
}

func TestTLSKeysIgnoredWhenTLSOff(t *testing.T) {
	s := startServer(t, nil)
	o, _ := newTest(t, with(s, "tls.ca_file", "/nonexistent", "tls.verify", "on")...)
	mustFlush(t, o)
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// StatusAnswer is how es, loki and prometheus_remote_write answer a status:
// retried, retried after Retry-After, or refused for good.
func TestStatusAnswer(t *testing.T) {
	serr := errors.New("answered")
	for _, c := range []struct {
		status     int
		retryAfter string
		permanent  bool
		delay      time.Duration // a Throttle's
	}{
		{400, "", true, 0}, {401, "", true, 0}, {404, "", true, 0}, {413, "", true, 0},
		{408, "", false, 0}, {500, "", false, 0}, {502, "", false, 0}, {504, "", false, 0},
		{429, "", false, 0}, {429, "7", false, 7 * time.Second}, {503, "2", false, 2 * time.Second},
		{503, "soon", false, 0},
	} {
		h := http.Header{}
		if c.retryAfter != "" {
			h.Set("Retry-After", c.retryAfter)
		}
		got := StatusAnswer(c.status, h, serr)
		if !errors.Is(got, serr) {
			t.Errorf("%d: %v does not wrap the status error", c.status, got)
		}
		if plugin.IsPermanent(got) != c.permanent {
			t.Errorf("%d: permanent = %v, want %v", c.status, plugin.IsPermanent(got), c.permanent)
		}
		d, ok := plugin.ThrottleDelay(got)
		if ok != (c.delay > 0) || d != c.delay {
			t.Errorf("%d Retry-After %q: throttle %v %v, want %v", c.status, c.retryAfter, d, ok, c.delay)
		}
	}
}
