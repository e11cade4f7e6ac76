package loki

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

func openLoki(t *testing.T, s *lokiSink, lines ...string) plugin.Output {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	cfg := append(append([]string(nil), lines...), "host "+host, "port "+port)
	out, err := Spec().NewOutput(context.Background(), plugin.Settings{Name: "loki.0"}, plugintest.Props(Spec(), cfg...))
	if err != nil {
		t.Fatalf("new output: %v", err)
	}
	t.Cleanup(func() { _ = plugin.Close(context.Background(), out) })
	return out
}

func logChunk(bodies ...event.Map) *chunk.Chunk {
	var data []byte
	for i, b := range bodies {
		ev := event.Event{Time: event.Time{Sec: 1700000000 + int64(i), Nsec: 123456789}, Body: b}
		data = ev.AppendMsgpack(data)
	}
	return &chunk.Chunk{ID: "c", Tag: "app", Type: chunk.Logs, Records: len(bodies), Data: data}
}

func sample() *chunk.Chunk {
	return logChunk(
		plugintest.KV("key", 1, "sub", plugintest.KV("stream", "stdout", "id", "some id"),
			"kubernetes", plugintest.KV("labels", plugintest.KV("team", "Santiago Wanderers", "app.kubernetes.io/name", "web")),
			"level", "info", "tenant", "t1", "trace", "abc"),
		plugintest.KV("key", 2, "sub", plugintest.KV("stream", "stderr"), "level", "warn", "tenant", "t2"),
		plugintest.KV("key", 3, "sub", plugintest.KV("stream", "stdout", "id", "x"), "level", "info", "tenant", "t1"),
	)
}

// Fluent Bit's documented label examples, in both wire formats.
func TestLabelsAndLines(t *testing.T) {
	for _, f := range []string{"json", "protobuf"} {
		t.Run(f, func(t *testing.T) {
			s := newLokiSink(t)
			out := openLoki(t, s, "format "+f, "labels job=fluentbit, mystream=$sub['stream']", "label_keys $level",
				"remove_keys kubernetes, tenant", "auto_kubernetes_labels on", "structured_metadata trace_id=$trace, env=prod")
			if err := out.Flush(context.Background(), sample()); err != nil {
				t.Fatal(err)
			}
			got := s.stored()
			want := []pushedEntry{
				{Labels: `{app_kubernetes_io_name="web", job="fluentbit", level="info", mystream="stdout", team="Santiago Wanderers"}`,
					Line: `{"key":1,"sub":{"stream":"stdout","id":"some id"},"trace":"abc"}`, Meta: map[string]string{"trace_id": "abc", "env": "prod"}},
				{Labels: `{job="fluentbit", level="info", mystream="stdout"}`,
					Line: `{"key":3,"sub":{"stream":"stdout","id":"x"}}`, Meta: map[string]string{"env": "prod"}},
				{Labels: `{job="fluentbit", level="warn", mystream="stderr"}`,
					Line: `{"key":2,"sub":{"stream":"stderr"}}`, Meta: map[string]string{"env": "prod"}},
			}
			if len(got) != len(want) {
				t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
			}
			byLine := map[string]pushedEntry{}
			for _, e := range got {
				byLine[e.Line] = e
			}
			for i, w := range want {
				g, ok := byLine[w.Line]
				if !ok {
					t.Errorf("entry %d: no line %s in %+v", i, w.Line, got)
					continue
				}
				if g.Labels != w.Labels {
					t.Errorf("line %s: labels %s, want %s", w.Line, g.Labels, w.Labels)
				}
				if len(g.Meta) != len(w.Meta) || g.Meta["trace_id"] != w.Meta["trace_id"] || g.Meta["env"] != w.Meta["env"] {
					t.Errorf("line %s: metadata %v, want %v", w.Line, g.Meta, w.Meta)
				}
			}
			wantTS := time.Unix(1700000000, 123456789)
			if e := byLine[want[0].Line]; !e.TS.Equal(wantTS) {
				t.Errorf("timestamp %v, want %v (nanosecond precision)", e.TS, wantTS)
			}
		})
	}
}

func TestLabelMapKeyValueAndTenant(t *testing.T) {
	dir := t.TempDir()
	mapFile := filepath.Join(dir, "map.json")
	if err := os.WriteFile(mapFile, []byte(`{"sub": {"stream": "stream"}, "level": "severity"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newLokiSink(t)
	out := openLoki(t, s, "labels job=x", "label_map_path "+mapFile, "line_format key_value", "tenant_id_key tenant",
		"remove_keys $kubernetes['labels'], tenant")
	if err := out.Flush(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	got := s.stored()
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	for _, e := range got {
		switch {
		case strings.HasPrefix(e.Line, "key=2 "):
			if e.Tenant != "t2" || e.Labels != `{job="x", severity="warn", stream="stderr"}` {
				t.Errorf("entry %+v", e)
			}
			if e.Line != `key=2 sub={"stream":"stderr"} level=warn` {
				t.Errorf("key_value line %q", e.Line)
			}
		case strings.HasPrefix(e.Line, "key=1 "):
			if e.Tenant != "t1" {
				t.Errorf("tenant %q", e.Tenant)
			}
			if !strings.Contains(e.Line, ` kubernetes={}`) {
				t.Errorf("nested remove_keys: %q", e.Line)
			}
		}
	}
	s.mu.Lock()
	n := len(s.requests)
	s.mu.Unlock()
	if n != 2 {
		t.Errorf("%d requests, want one per tenant (2)", n)
	}
}

func TestDropSingleKeyAuthAndHeaders(t *testing.T) {
	s := newLokiSink(t)
	out := openLoki(t, s, "drop_single_key raw", "tenant_id acme", "bearer_token tok", "header X-Env prod", "compress gzip")
	if err := out.Flush(context.Background(), logChunk(plugintest.KV("log", "plain text line"))); err != nil {
		t.Fatal(err)
	}
	got := s.stored()
	if len(got) != 1 || got[0].Line != "plain text line" || got[0].Tenant != "acme" || got[0].Labels != `{job="fluent-bit"}` {
		t.Fatalf("stored %+v", got)
	}
	s.mu.Lock()
	r := s.requests[0]
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-Env") != "prod" || r.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("headers %v", r.Header)
	}
}

// A chunk pushed again (a redelivery) leaves one copy of each entry, since
// every entry keeps its record's timestamp and line.
func TestRedeliveryDeduplicatedByLoki(t *testing.T) {
	s := newLokiSink(t)
	c := outputtest.Chunk(0, 20)
	for range 3 {
		out := openLoki(t, s, "format protobuf")
		if err := out.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if err := outputtest.Diff(seqRange(20), contractSink{s, "protobuf"}.Seqs(t)); err != nil {
		t.Fatal(err)
	}
}

func seqRange(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func TestDropSingleKeyOnKeepsJSON(t *testing.T) {
	s := newLokiSink(t)
	out := openLoki(t, s, "drop_single_key on")
	if err := out.Flush(context.Background(), logChunk(plugintest.KV("log", "text"), plugintest.KV("n", 5), plugintest.KV("a", 1, "b", 2))); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range s.stored() {
		got[e.Line] = true
	}
	for _, w := range []string{`"text"`, `5`, `{"a":1,"b":2}`} {
		if !got[w] {
			t.Errorf("line %s missing from %v", w, got)
		}
	}
}

func TestStatusClasses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
		throttle  time.Duration
	}{{400, true, 0}, {401, true, 0}, {429, false, 3 * time.Second}, {500, false, 0}, {502, false, 0}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.throttle > 0 {
				w.Header().Set("Retry-After", "3")
			}
			http.Error(w, "no", tc.status)
		}))
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		out, err := Spec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), "host "+host, "port "+port))
		if err != nil {
			t.Fatal(err)
		}
		err = out.Flush(context.Background(), outputtest.Chunk(0, 1))
		srv.Close()
		if err == nil || plugin.IsPermanent(err) != tc.permanent {
			t.Errorf("status %d: %v, want permanent=%v", tc.status, err, tc.permanent)
		}
		if d, _ := plugin.ThrottleDelay(err); d != tc.throttle {
			t.Errorf("status %d: throttle %v, want %v", tc.status, d, tc.throttle)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"a": 1}`), 0o600)
	for key, lines := range map[string][]string{
		"labels":         {"labels job"},
		"label_keys":     {"label_keys $a['b"},
		"label_map_path": {"label_map_path " + bad},
		"compress":       {"format protobuf", "compress gzip"},
		"uri":            {"uri loki"},
	} {
		_, err := Spec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), lines...))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%v: error %v does not name %s", lines, err, key)
		}
	}
}
