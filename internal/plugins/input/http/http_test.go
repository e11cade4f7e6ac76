package http

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
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

type server struct {
	in  *HTTP
	w   *plugintest.Writer
	url string
	m   *telemetry.NetInputMetrics
}

func start(t *testing.T, w *plugintest.Writer, lines ...string) *server {
	t.Helper()
	reg := telemetry.NewRegistry("test")
	set := plugin.Settings{Name: "http.0", Telemetry: reg,
		Logger: slog.New(slog.NewTextHandler(&logBuf{}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	in, err := New(context.Background(), set, plugintest.Props(Spec(), append([]string{"listen 127.0.0.1", "port 0"}, lines...)...))
	if err != nil {
		t.Fatal(err)
	}
	h := in.(*HTTP)
	h.now = func() event.Time { return event.Time{Sec: 1700000000, Nsec: 7} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, w) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := h.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	return &server{in: h, w: w, url: "http://" + addr, m: reg.NetInput("http.0")}
}

func needCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not in PATH; install curl to run the real-client http tests")
	}
}

// curl runs curl with args and parses its answer (-i).
func curl(t *testing.T, args ...string) (*nethttp.Response, string) {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "-i", "-H", "Expect:"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	resp, err := nethttp.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("curl output %q: %v", out, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// records renders the records written, with their tags.
func records(t *testing.T, w *plugintest.Writer) []string {
	t.Helper()
	batches, err := w.Batches()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, b := range batches {
		for _, ev := range b {
			if ev.Time != (event.Time{Sec: 1700000000, Nsec: 7}) {
				t.Errorf("time %v", ev.Time)
			}
			out = append(out, w.Writes[i].Tag+" "+plugintest.Render(ev.Body))
		}
	}
	return out
}

func TestCurlJSON(t *testing.T) {
	needCurl(t)
	s := start(t, &plugintest.Writer{})
	resp, _ := curl(t, "-H", "Content-Type: application/json", "-d", `{"msg":"one","n":1}`, s.url+"/app.log")
	if resp.StatusCode != 201 {
		t.Fatalf("status %d, want 201", resp.StatusCode)
	}
	resp, _ = curl(t, "-H", "Content-Type: application/json; charset=utf-8", "-d", `[{"a":1},{"b":2}]`, s.url+"/")
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	resp, _ = curl(t, "-H", "Content-Type: application/json", "-d", `{"x":true}`, s.url+"/bad%20tag/x?q=1")
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := strings.Join(records(t, s.w), "\n")
	want := `app.log {"msg":"one","n":1}
 {"a":1}
 {"b":2}
bad_20tag_x {"x":true}`
	if got != want {
		t.Errorf("records:\n%s\nwant\n%s", got, want)
	}
}

func TestCurlGzipAndForm(t *testing.T) {
	needCurl(t)
	s := start(t, &plugintest.Writer{}, "success_header X-Ingested yes", "success_header X-Custom-2 two words", "successful_response_code 200")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	io.WriteString(zw, `[{"zipped":"yes"},{"zipped":"twice"}]`)
	zw.Close()
	f := filepath.Join(t.TempDir(), "body.gz")
	if err := os.WriteFile(f, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := curl(t, "-H", "Content-Type: application/json", "-H", "Content-Encoding: gzip", "--data-binary", "@"+f, s.url+"/zip")
	if resp.StatusCode != 200 || resp.Header.Get("X-Ingested") != "yes" || resp.Header.Get("X-Custom-2") != "two words" || body != "" {
		t.Fatalf("status %d headers %v body %q", resp.StatusCode, resp.Header, body)
	}
	resp, _ = curl(t, "-d", "name=floe&msg=hello%20world+again&empty=&noeq", s.url+"/form")
	if resp.StatusCode != 200 {
		t.Fatalf("form status %d", resp.StatusCode)
	}
	got := strings.Join(records(t, s.w), "\n")
	want := `zip {"zipped":"yes"}
zip {"zipped":"twice"}
form {"name":"floe","msg":"hello world again","empty":""}`
	if got != want {
		t.Errorf("records:\n%s\nwant\n%s", got, want)
	}
}

func TestCurlErrors(t *testing.T) {
	needCurl(t)
	s := start(t, &plugintest.Writer{}, "buffer_max_size 1k")
	for _, c := range []struct {
		args []string
		code int
		body string
	}{
		{[]string{"-H", "Content-Type: application/json", "-d", `{"a":1} {"b":`}, 400, "incomplete"},
		{[]string{"-H", "Content-Type: application/json", "-d", `{"a":nope}`}, 400, "invalid JSON at byte 6: invalid literal"},
		{[]string{"-H", "Content-Type: application/json", "-d", `[{"a":1}, 2]`}, 400, "element 2 of array 1 is not an object"},
		{[]string{"-H", "Content-Type: application/json", "-d", `"str"`}, 400, "neither an object nor an array"},
		{[]string{"-H", "Content-Type:", "-d", `{}`}, 400, "header 'Content-Type' is not set"},
		{[]string{"-H", "Content-Type: text/plain", "-d", `{}`}, 400, "invalid 'Content-Type'"},
		{[]string{"-H", "Content-Type: application/json", "-H", "Content-Encoding: gzip", "-d", `{}`}, 400, "gzip body"},
		{[]string{"-H", "Content-Type: application/json", "-H", "Content-Encoding: br", "-d", `{}`}, 400, "unsupported Content-Encoding"},
		{[]string{"-X", "GET"}, 400, "invalid HTTP method"},
		{[]string{"-H", "Content-Type: application/json", "-d", `{"big":"` + strings.Repeat("x", 2000) + `"}`}, 413, "exceeds buffer_max_size"},
	} {
		resp, body := curl(t, append(c.args, s.url+"/t")...)
		if resp.StatusCode != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%v: %d %q, want %d %q", c.args, resp.StatusCode, body, c.code, c.body)
		}
	}
	if s.w.Count() != 0 {
		t.Errorf("%d writes from refused requests", s.w.Count())
	}
	if s.m.Errors.Load() != 9 || s.m.Refused.Load() != 1 {
		t.Errorf("errors %d refused %d, want 9 and 1", s.m.Errors.Load(), s.m.Refused.Load())
	}
}

// A gzip body that inflates beyond buffer_max_size is refused too.
func TestGzipBomb(t *testing.T) {
	s := start(t, &plugintest.Writer{}, "buffer_max_size 64k")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	io.WriteString(zw, `{"a":"`+strings.Repeat("a", 1<<20)+`"}`)
	zw.Close()
	req, _ := nethttp.NewRequest("POST", s.url+"/", &z)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

func TestTagKeyRemoteAddrAndMsgpack(t *testing.T) {
	s := start(t, &plugintest.Writer{}, "tag_key $kind", "add_remote_addr on")
	var body []byte
	for _, kv := range [][2]string{{"kind", "a.b"}, {"kind", "a.b"}, {"other", "x"}, {"kind", "c d"}} {
		body = event.AppendMapHeader(body, 1)
		body = event.AppendString(body, kv[0])
		body = event.AppendString(body, kv[1])
	}
	req, _ := nethttp.NewRequest("POST", s.url+"/path.tag", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/msgpack")
	req.Header.Set("X-Forwarded-For", " 10.0.0.9 , 10.0.0.1")
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := strings.Join(records(t, s.w), "\n")
	want := `a.b {"kind":"a.b","REMOTE_ADDR":"10.0.0.9"}
a.b {"kind":"a.b","REMOTE_ADDR":"10.0.0.9"}
path.tag {"other":"x","REMOTE_ADDR":"10.0.0.9"}
c_d {"kind":"c d","REMOTE_ADDR":"10.0.0.9"}`
	if got != want {
		t.Errorf("records:\n%s\nwant\n%s", got, want)
	}
	if len(s.w.Writes) != 3 {
		t.Errorf("%d writes, want 3 (one per run of a tag)", len(s.w.Writes))
	}
}

func post(t *testing.T, url, body string) *nethttp.Response {
	t.Helper()
	resp, err := nethttp.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// The answer comes only after the records are stored.
func TestAnswersAfterStored(t *testing.T) {
	w := &plugintest.Writer{Delay: 300 * time.Millisecond}
	s := start(t, w)
	if resp := post(t, s.url+"/", `[{"a":1},{"a":2}]`); resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	w.Mu.Lock()
	stored, flushes := w.Stored, w.Flushes
	w.Mu.Unlock()
	if stored != 2 || flushes == 0 {
		t.Errorf("answered with %d of 2 records stored, %d flushes", stored, flushes)
	}
}

// Paused: 503 with Retry-After, nothing written; resumed: accepted again.
func TestPausedAnswers503(t *testing.T) {
	s := start(t, &plugintest.Writer{})
	s.in.Pause()
	resp := post(t, s.url+"/", `{"a":1}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("paused: status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	s.in.Resume()
	if resp := post(t, s.url+"/", `{"a":2}`); resp.StatusCode != 201 {
		t.Fatalf("resumed: status %d", resp.StatusCode)
	}
	if got := strings.Join(records(t, s.w), "|"); got != ` {"a":2}` {
		t.Errorf("records %q", got)
	}
	if s.m.Refused.Load() != 1 {
		t.Errorf("refused %d", s.m.Refused.Load())
	}
}

// A write the pipeline holds back (mem_buf_limit) turns into 503 too.
func TestBlockedWriteAnswers503(t *testing.T) {
	hold := make(chan struct{})
	s := start(t, &plugintest.Writer{Hold: hold})
	s.in.block = 100 * time.Millisecond
	resp := post(t, s.url+"/", `{"a":1}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("blocked: status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(hold)
	if resp := post(t, s.url+"/", `{"a":2}`); resp.StatusCode != 201 {
		t.Fatalf("released: status %d", resp.StatusCode)
	}
	if got := strings.Join(records(t, s.w), "|"); got != ` {"a":2}` {
		t.Errorf("records %q", got)
	}
}

func TestHealthAndConfig(t *testing.T) {
	s := start(t, &plugintest.Writer{}, "enable_health_endpoint on")
	resp, err := nethttp.Get(s.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status": "ok"`) {
		t.Errorf("health %d %s", resp.StatusCode, b)
	}
	for _, c := range []struct{ line, want string }{
		{"success_header Lonely", "success_header"},
		{"tag_key $a[", "tag_key"},
		{"tls on", "tls"},
	} {
		if _, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), c.line)); err == nil || !strings.Contains(err.Error(), "test.conf:10: key "+c.want) {
			t.Errorf("%q: %v", c.line, err)
		}
	}
}
