package forward

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	proto "github.com/floe-io/floe/internal/forward"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	forwardin "github.com/floe-io/floe/internal/plugins/input/forward"
)

func TestContract(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newFwdSink(t, "") }, outputtest.Options{})
}

func TestContractSharedKey(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newFwdSink(t, "s3cret") }, outputtest.Options{})
}

func newOut(t testing.TB, lines ...string) *Output {
	t.Helper()
	o, err := newOutput(plugin.Settings{Name: "forward.0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new forward output: %v", err)
	}
	t.Cleanup(func() { o.Close(context.Background()) })
	return o
}

// The forward output and Floe's own forward input agree: handshake with a
// shared key, gzip entries, acks after the input stored the events, times
// with their nanoseconds, the tag.
func TestRoundTripForwardInput(t *testing.T) {
	in, err := forwardin.New(context.Background(), plugin.Settings{Name: "forward.0"},
		plugintest.Props(forwardin.Spec(), "listen 127.0.0.1", "port 0", "shared_key k3y", "self_hostname in"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &plugintest.Writer{}
	done := make(chan error, 1)
	go func() { done <- in.(*forwardin.Forward).Run(ctx, w) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forward input: %v", err)
		}
	}()
	addr, err := in.(*forwardin.Forward).Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, addr.String())
	out := newOut(t, "host "+host, "port "+port, "shared_key k3y", "compress gzip", "require_ack_response on", "self_hostname out")
	c := outputtest.Chunk(0, 30)
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatalf("flush: %v", err)
	}
	// The ack came back, so the writer must hold every event already.
	evs, err := w.Events()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 30 {
		t.Fatalf("forward input stored %d events after the ack, want 30", len(evs))
	}
	w.Mu.Lock()
	tag := w.Writes[0].Tag
	w.Mu.Unlock()
	if tag != plugintest.Tag {
		t.Errorf("tag %q, want %q", tag, plugintest.Tag)
	}
	var seqs []int64
	for i, ev := range evs {
		seq, _ := ev.Body.Get("seq")
		seqs = append(seqs, seq.(int64))
		want := event.Time{Sec: 1700000000 + seq.(int64), Nsec: 123456789}
		if ev.Time != want {
			t.Errorf("event %d time %+v, want %+v (nanoseconds kept)", i, ev.Time, want)
		}
		if msg, _ := ev.Body.Get("message"); msg != fmt.Sprintf("record %d", seq) {
			t.Errorf("event %d message %v", i, msg)
		}
	}
	if err := outputtest.Diff(seqsUpTo(30), seqs); err != nil {
		t.Fatal(err)
	}
}

func TestWrongSharedKeyIsRetry(t *testing.T) {
	s := newFwdSink(t, "right")
	out := newOut(t, append(s.hostPort(), "shared_key wrong", "require_ack_response on")...)
	err := out.Flush(context.Background(), outputtest.Chunk(0, 3))
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("flush with a wrong shared key = %v, want a retry", err)
	}
	if len(s.Events()) != 0 {
		t.Fatalf("the sink stored %d events from an unauthenticated client", len(s.Events()))
	}
}

func TestMissingSharedKeyIsNamed(t *testing.T) {
	s := newFwdSink(t, "needed")
	out := newOut(t, append(s.hostPort(), "require_ack_response on")...)
	err := out.Flush(context.Background(), outputtest.Chunk(0, 3))
	if err == nil || plugin.IsPermanent(err) || !strings.Contains(err.Error(), "shared_key") {
		t.Fatalf("flush without the shared key the server requires = %v, want a retry naming shared_key", err)
	}
}

// A server that never acks: Flush must not answer OK.
func TestAckWithheld(t *testing.T) {
	s := newFwdSink(t, "")
	s.noAck = true
	out := newOut(t, append(s.hostPort(), "require_ack_response on", "net.io_timeout 1s")...)
	err := out.Flush(context.Background(), outputtest.Chunk(0, 5))
	if err == nil {
		t.Fatal("flush answered OK although the server never acked")
	}
	if plugin.IsPermanent(err) {
		t.Fatalf("a missing ack is permanent: %v", err)
	}
	// Also when the caller gives up first.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out2 := newOut(t, append(s.hostPort(), "require_ack_response on", "net.io_timeout 60s")...)
	if err := out2.Flush(ctx, outputtest.Chunk(5, 5)); err == nil {
		t.Fatal("flush answered OK although the server never acked (context ended)")
	}
}

func TestModes(t *testing.T) {
	cases := []struct {
		name    string
		lines   []string
		mode    proto.Mode
		frames  int
		intTime bool
		size    int
	}{
		{"default", nil, proto.ModePackedForward, 1, false, -1},
		{"gzip", []string{"compress gzip"}, proto.ModeCompressedPackedForward, 1, false, -1},
		{"time_as_integer", []string{"time_as_integer on", "send_options on"}, proto.ModeForward, 1, true, 4},
		{"message", []string{"tag $message"}, proto.ModeMessage, 4, false, -1},
		{"metadata", []string{"retain_metadata_in_forward_mode on", "send_options on"}, proto.ModePackedForward, 1, false, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newFwdSink(t, "")
			out := newOut(t, append(append(s.hostPort(), "require_ack_response on"), c.lines...)...)
			// Three plain records and one with metadata.
			ev := event.Event{Time: event.Time{Sec: 5, Nsec: 7}, Meta: plugintest.KV("m", "v"), Body: plugintest.KV("seq", int64(4), "message", "meta")}
			ch := outputtest.Chunk(0, 3)
			ch.Data = ev.AppendMsgpack(ch.Data)
			ch.Records = 4
			if err := out.Flush(context.Background(), ch); err != nil {
				t.Fatal(err)
			}
			frames := s.Frames()
			if len(frames) != c.frames {
				t.Fatalf("%d frames, want %d", len(frames), c.frames)
			}
			for _, f := range frames {
				if f.Mode != c.mode {
					t.Errorf("mode %v, want %v", f.Mode, c.mode)
				}
				if f.Options.Chunk == "" {
					t.Errorf("frame without a chunk id although acks are required")
				}
				if c.mode != proto.ModeMessage && f.Options.Size != c.size {
					t.Errorf("size option %d, want %d", f.Options.Size, c.size)
				}
			}
			evs := s.Events()
			if len(evs) != 4 {
				t.Fatalf("%d events, want 4", len(evs))
			}
			for i, e := range evs {
				if c.intTime && e.Time.Nsec != 0 {
					t.Errorf("event %d: nanoseconds %d with time_as_integer", i, e.Time.Nsec)
				}
				if !c.intTime && i < 3 && e.Time.Nsec != 123456789 {
					t.Errorf("event %d: nanoseconds %d, want 123456789", i, e.Time.Nsec)
				}
			}
			_, hasMeta := evs[3].Meta.Get("m")
			if want := c.name == "metadata"; hasMeta != want {
				t.Errorf("metadata kept = %v, want %v", hasMeta, want)
			}
		})
	}
}

func TestMessageModeTagFromRecord(t *testing.T) {
	s := newFwdSink(t, "")
	out := newOut(t, append(s.hostPort(), "tag $app")...)
	var data []byte
	for i, app := range []string{"a", "b", ""} {
		body := plugintest.KV("seq", int64(i))
		if app != "" {
			body = plugintest.KV("seq", int64(i), "app", app)
		}
		data = (&event.Event{Time: event.Time{Sec: 1}, Body: body}).AppendMsgpack(data)
	}
	c := &chunk.Chunk{ID: "x", Tag: "orig", Type: chunk.Logs, Records: 3, Data: data}
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(s.Frames()) == 3 })
	var tags []string
	for _, f := range s.Frames() {
		tags = append(tags, f.Tag)
	}
	if fmt.Sprint(tags) != "[a b orig]" {
		t.Errorf("tags %v, want [a b orig]", tags)
	}
}

func TestStaticTagOverride(t *testing.T) {
	s := newFwdSink(t, "")
	out := newOut(t, append(s.hostPort(), "tag other.tag", "require_ack_response on")...)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 2)); err != nil {
		t.Fatal(err)
	}
	if f := s.Frames(); len(f) != 1 || f[0].Tag != "other.tag" {
		t.Fatalf("frames %+v, want one with tag other.tag", f)
	}
}

func TestUpstreamRoundRobinAndFailover(t *testing.T) {
	a, b := newFwdSink(t, "k"), newFwdSink(t, "k")
	dead := newFwdSink(t, "")
	deadPort := dead.port()
	dead.close()
	dir := t.TempDir()
	path := filepath.Join(dir, "upstream.conf")
	conf := fmt.Sprintf(`[UPSTREAM]
    name  forward-balancing

[NODE]
    name  a
    host  127.0.0.1
    port  %d

[NODE]
    name  dead
    host  127.0.0.1
    port  %d

[NODE]
    name  b
    host  127.0.0.1
    port  %d
`, a.port(), deadPort, b.port())
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out := newOut(t, "upstream "+path, "shared_key k", "require_ack_response on", "net.connect_timeout 2s")
	for i := range 6 {
		if err := out.Flush(context.Background(), outputtest.Chunk(int64(i*10), 10)); err != nil {
			t.Fatalf("flush %d: %v", i, err)
		}
	}
	na, nb := len(a.Events()), len(b.Events())
	// Round robin over a, dead, b: the dead node's turns fail over to b.
	if na != 20 || nb != 40 {
		t.Errorf("node a holds %d events, node b %d; want 20 and 40", na, nb)
	}
	got := append(a.Seqs(t), b.Seqs(t)...)
	if err := outputtest.Diff(seqsUpTo(60), got); err != nil {
		t.Fatal(err)
	}
}

func TestUpstreamFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		"nonode.conf":  "[UPSTREAM]\n    name x\n",
		"badport.conf": "[UPSTREAM]\n    name x\n[NODE]\n    host 127.0.0.1\n    port 99999\n",
		"other.conf":   "[UPSTREAM]\n    name x\n[FOO]\n    a b\n",
	}
	for name, conf := range cases {
		_, err := newOutput(plugin.Settings{}, plugintest.Props(Spec(), "upstream "+write(name, conf)))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	if _, err := newOutput(plugin.Settings{}, plugintest.Props(Spec(), "upstream "+filepath.Join(dir, "missing"))); err == nil {
		t.Error("missing upstream file: no error")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, lines := range [][]string{
		{"port 0"},
		{"host "},
		{"compress zstd"},
		{"tag $a['b']"},
	} {
		if _, err := newOutput(plugin.Settings{}, plugintest.Props(Spec(), lines...)); err == nil {
			t.Errorf("%v: no error", lines)
		}
	}
}

func TestRefusesMetricsChunks(t *testing.T) {
	s := newFwdSink(t, "")
	out := newOut(t, s.hostPort()...)
	c := outputtest.Chunk(0, 1)
	c.Type = chunk.Metrics
	if err := out.Flush(context.Background(), c); !plugin.IsPermanent(err) {
		t.Fatalf("metrics chunk: %v, want a permanent error", err)
	}
}

func BenchmarkFlush(b *testing.B) {
	for _, mode := range []struct {
		name  string
		lines []string
	}{{"packed_ack", []string{"require_ack_response on"}}, {"gzip_ack", []string{"require_ack_response on", "compress gzip"}}} {
		b.Run(mode.name, func(b *testing.B) {
			s := newFwdSink(b, "")
			s.discard = true // measure the output, not the test server's decoding
			out := newOut(b, append(s.hostPort(), mode.lines...)...)
			c := outputtest.Chunk(0, 1000)
			b.SetBytes(int64(len(c.Data)))
			b.ResetTimer()
			for range b.N {
				if err := out.Flush(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*c.Records)/sec, "records/s")
			b.ReportMetric(float64(b.N*len(c.Data))/sec/1e6, "MB/s_in")
		})
	}
}

func splitAddr(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := netSplit(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func seqsUpTo(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = int64(i)
	}
	return s
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUpstreamEnvAndDollar(t *testing.T) {
	t.Setenv("FLOE_TEST_FWD_PORT", "24300")
	secs, err := parseUpstream("u.conf", "[UPSTREAM]\n  name x\n# c\n[NODE]\n  port ${FLOE_TEST_FWD_PORT}\n  shared_key a$b\n")
	if err != nil {
		t.Fatal(err)
	}
	if port, _ := secs[1].Get("port"); port != "24300" {
		t.Errorf("port %q, want the environment's 24300", port)
	}
	if key, _ := secs[1].Get("shared_key"); key != "a$b" {
		t.Errorf("shared_key %q, want a$b kept", key)
	}
	if _, err := parseUpstream("u.conf", "  host x\n"); err == nil || !strings.Contains(err.Error(), "u.conf:1") {
		t.Errorf("key outside a section: %v, want an error at u.conf:1", err)
	}
}

func FuzzParseUpstream(f *testing.F) {
	f.Add("[UPSTREAM]\n    name a\n[NODE]\n    host 127.0.0.1\n    port 24224\n")
	f.Add("[NODE\n x")
	f.Fuzz(func(t *testing.T, s string) {
		secs, err := parseUpstream("f.conf", s)
		if err != nil && !strings.HasPrefix(err.Error(), "f.conf:") {
			t.Fatalf("error without a position: %v", err)
		}
		for _, sec := range secs {
			if sec.Line < 1 {
				t.Fatalf("section without a line: %+v", sec)
			}
		}
	})
}
