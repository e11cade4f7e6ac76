package httpout

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

// gelfSink is an HTTP GELF endpoint: newline-separated GELF JSON objects,
// each checked for the fields GELF 1.1 requires.
type gelfSink struct {
	jsonSink
}

func newGELFSink(t *testing.T) outputtest.Sink {
	s := &gelfSink{jsonSink: jsonSink{t: t}}
	s.listenWith(t, freeport.Addr(t), s.serveGELF)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *jsonSink) listenWith(t testing.TB, addr string, h http.HandlerFunc) {
	ln, err := freeport.Listen(addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: h}
	go s.srv.Serve(ln)
}

func (s *gelfSink) serveGELF(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.fault
	s.fault = nil
	s.mu.Unlock()
	if f != nil {
		if *f == outputtest.Permanent {
			http.Error(w, "bad message", http.StatusBadRequest)
		} else {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}
		return
	}
	msgs, err := decodeGELF(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, m := range msgs {
		s.seqs = append(s.seqs, int64(m["_seq"].(float64)))
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

type gelfError string

func (e gelfError) Error() string { return string(e) }

func decodeGELF(r io.Reader) ([]map[string]any, error) {
	var out []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, err
		}
		if m["version"] != "1.1" {
			return nil, gelfError("version is not 1.1")
		}
		if _, ok := m["short_message"].(string); !ok {
			return nil, gelfError("no short_message")
		}
		if _, ok := m["timestamp"].(float64); !ok {
			return nil, gelfError("no numeric timestamp")
		}
		if _, ok := m["_seq"].(float64); !ok {
			return nil, gelfError("no _seq")
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func (s *gelfSink) Config() []string {
	return append(s.jsonSink.Config(), "format gelf", "gelf_short_message_key message")
}

func (s *gelfSink) Restart(t testing.TB) {
	addr := s.addr
	s.srv.Close()
	s.listenWith(t, addr, s.serveGELF)
}

func TestContractGELF(t *testing.T) {
	outputtest.Run(t, Spec(), newGELFSink, outputtest.Options{})
}

func TestGELFKeys(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	var ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msgs, err := decodeGELF(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		got, ctype = append(got, msgs...), r.Header.Get("Content-Type")
		mu.Unlock()
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	out, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), "host "+host, "port "+port, "format gelf",
		"gelf_short_message_key log", "gelf_host_key hostname", "gelf_level_key sev", "gelf_full_message_key stack",
		"gelf_timestamp_key nope"))
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Event{Time: event.Time{Sec: 1700000000, Nsec: 250_000_000}, Body: plugintest.KV("log", "boom", "hostname", "web1",
		"sev", int64(2), "stack", "at x", "seq", int64(1), "k8s", plugintest.KV("pod", "p1"))}
	c := &chunk.Chunk{ID: "g", Tag: "t", Type: chunk.Logs, Records: 1, Data: ev.AppendMsgpack(nil)}
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d GELF messages, want 1", len(got))
	}
	m := got[0]
	for k, v := range map[string]any{"short_message": "boom", "host": "web1", "level": 2.0, "full_message": "at x",
		"timestamp": 1700000000.25, "_seq": 1.0, "_k8s_pod": "p1"} {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v (message %v)", k, m[k], v, m)
		}
	}
	if ctype != mimeJSON {
		t.Errorf("Content-Type %q", ctype)
	}
	// A record without the short message key: the chunk cannot be sent.
	bad := event.Event{Time: event.Time{Sec: 1}, Body: plugintest.KV("msg", "x")}
	c = &chunk.Chunk{ID: "b", Tag: "t", Type: chunk.Logs, Records: 1, Data: bad.AppendMsgpack(nil)}
	if err := out.Flush(context.Background(), c); !plugin.IsPermanent(err) || !strings.Contains(err.Error(), "log") {
		t.Fatalf("record without short message: %v, want a permanent error naming the key", err)
	}
}

func BenchmarkFlushGELF(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	out, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), "host "+host, "port "+port, "format gelf",
		"gelf_short_message_key message"))
	if err != nil {
		b.Fatal(err)
	}
	c := outputtest.Chunk(0, 1000)
	b.SetBytes(int64(len(c.Data)))
	b.ResetTimer()
	for range b.N {
		if err := out.Flush(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*c.Records)/sec, "records/s")
	b.ReportMetric(float64(b.N*len(c.Data))/sec/1e6, "MB/s_in")
}
