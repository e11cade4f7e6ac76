package syslog

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	syslogin "github.com/floe-io/floe/internal/plugins/input/syslog"
	"github.com/floe-io/floe/internal/plugins/output/internal/inputsink"
)

// seqOf reads N from the message "record N" that the syslog input parsed.
func seqOf(t testing.TB, ev event.Event) int64 {
	m, _ := ev.Body.Get("message")
	s, _ := m.(string)
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "record "), 10, 64)
	if err != nil {
		t.Fatalf("syslog input stored a record whose message is not \"record N\": %v", ev.Body)
	}
	return n
}

// Floe's syslog input (tcp, newline framing, the syslog-rfc5424 parser) is
// the receiver.
func TestContract(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink {
		return inputsink.New(t, syslogin.Spec(), []string{"mode tcp"}, func(host, port string) []string {
			return []string{"host " + host, "port " + port, "mode tcp", "syslog_message_key message"}
		}, seqOf)
	}, outputtest.Options{})
}

func newOut(t testing.TB, lines ...string) *Output {
	t.Helper()
	o, err := New(context.Background(), plugin.Settings{Name: "syslog.0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new syslog output: %v", err)
	}
	t.Cleanup(func() { plugin.Close(context.Background(), o) })
	return o.(*Output)
}

func record(t event.Time, kv ...any) *chunk.Chunk {
	ev := event.Event{Time: t, Body: plugintest.KV(kv...)}
	return &chunk.Chunk{ID: "c", Tag: "t", Type: chunk.Logs, Records: 1, Data: ev.AppendMsgpack(nil)}
}

var t0 = event.Time{Sec: 1700000000, Nsec: 123456789} // 2023-11-14T22:13:20.123456789Z

func render(t *testing.T, o *Output, c *chunk.Chunk) string {
	t.Helper()
	var out []string
	it := event.NewIter(c.Data)
	for it.Next() {
		m, err := o.AppendMessage(nil, it.Event().Time, it.Event().Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m))
	}
	return strings.Join(out, "\n")
}

func TestRFC5424Rendering(t *testing.T) {
	o := newOut(t, "syslog_severity_key sev", "syslog_facility_key fac", "syslog_hostname_key h",
		"syslog_appname_key app", "syslog_procid_key pid", "syslog_msgid_key mid", "syslog_message_key msg",
		"syslog_sd_key meta", "syslog_sd_key origin")
	c := record(t0, "sev", "err", "fac", "local0", "h", "web 1", "app", "api", "pid", int64(42), "mid", "ID7",
		"msg", "hello world", "origin", plugintest.KV("ip", "10.0.0.1"), "meta", plugintest.KV("a", `q"u]o\te`, "n", int64(3)))
	want := `<131>1 2023-11-14T22:13:20.123456Z web1 api 42 ID7 [meta a="q\"u\]o\\te" n="3"][origin ip="10.0.0.1"] hello world`
	if got := render(t, o, c); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Nothing mapped: presets and nil values.
	o = newOut(t, "syslog_severity_preset 3", "syslog_facility_preset 4", "syslog_appname_preset app")
	if got, want := render(t, o, record(t0, "x", "y")), `<35>1 2023-11-14T22:13:20.123456Z - app - - -`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRFC3164Rendering(t *testing.T) {
	o := newOut(t, "syslog_format rfc3164", "syslog_hostname_key h", "syslog_appname_key app",
		"syslog_procid_key pid", "syslog_message_key msg", "syslog_severity_key sev")
	c := record(event.Time{Sec: 1699574400}, "h", "host", "app", "cron", "pid", "12", "msg", "ran", "sev", int64(5))
	if got, want := render(t, o, c), "<13>Nov 10 00:00:00 host cron[12]: ran"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMaxsize(t *testing.T) {
	o := newOut(t, "syslog_format rfc3164", "syslog_message_key m")
	got := render(t, o, record(t0, "m", strings.Repeat("x", 5000)))
	if len(got) != 1024 {
		t.Errorf("rfc3164 message of %d bytes, want the default maxsize 1024", len(got))
	}
	o = newOut(t, "syslog_message_key m", "syslog_maxsize 100")
	if got := render(t, o, record(t0, "m", strings.Repeat("x", 5000))); len(got) != 100 {
		t.Errorf("message of %d bytes, want 100", len(got))
	}
}

// Through Floe's syslog input, over TCP and UDP, in both formats: the input's
// stock parsers find every field the output set.
func TestRoundTripSyslogInput(t *testing.T) {
	cases := []struct {
		mode, format, parser string
		want                 map[string]string
	}{
		{"tcp", "rfc5424", "", map[string]string{"pri": "134", "host": "box", "ident": "app", "pid": "77", "msgid": "M1", "message": "hi there"}},
		{"udp", "rfc5424", "", map[string]string{"pri": "134", "host": "box", "ident": "app", "pid": "77", "msgid": "M1", "message": "hi there"}},
		{"udp", "rfc3164", "syslog-rfc3164", map[string]string{"pri": "134", "host": "box", "ident": "app", "pid": "77", "message": "hi there"}},
	}
	for _, c := range cases {
		t.Run(c.mode+"_"+c.format, func(t *testing.T) {
			in := []string{"mode " + c.mode}
			if c.parser != "" {
				in = append(in, "parser "+c.parser)
			}
			s := inputsink.New(t, syslogin.Spec(), in, func(host, port string) []string {
				return []string{"host " + host, "port " + port}
			}, seqOf)
			lines := append(s.Config(), "mode "+c.mode, "syslog_format "+c.format, "syslog_facility_preset 16",
				"syslog_hostname_key host", "syslog_appname_key app", "syslog_procid_key pid",
				"syslog_msgid_key id", "syslog_message_key log")
			o := newOut(t, lines...)
			var data []byte
			for i := range 3 {
				ev := event.Event{Time: event.Time{Sec: 1700000000 + int64(i)}, Body: plugintest.KV("host", "box", "app", "app",
					"pid", int64(77), "id", "M1", "log", "hi there")}
				data = ev.AppendMsgpack(data)
			}
			if err := o.Flush(context.Background(), &chunk.Chunk{ID: "x", Tag: "t", Type: chunk.Logs, Records: 3, Data: data}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for len(s.Events(t)) < 3 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			evs := s.Events(t)
			if len(evs) != 3 {
				t.Fatalf("syslog input stored %d records, want 3", len(evs))
			}
			for _, ev := range evs {
				for k, v := range c.want {
					if got, _ := ev.Body.Get(k); fmt.Sprint(got) != v {
						t.Errorf("%s = %v, want %s (record %v)", k, got, v, ev.Body)
					}
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, lines := range [][]string{{"mode foo"}, {"syslog_format rfc1"}, {"syslog_maxsize 0"},
		{"syslog_severity_preset 9"}, {"mode udp", "syslog_maxsize 100000"}} {
		if _, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), lines...)); err == nil {
			t.Errorf("%v: no error", lines)
		}
	}
}

// The receiver discards what it gets, so the figures are the output's
// (rendering and sending), not the syslog input's parser.
func BenchmarkFlush(b *testing.B) {
	for _, mode := range []string{"tcp", "udp"} {
		b.Run(mode, func(b *testing.B) {
			var addr string
			if mode == "tcp" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						go io.Copy(io.Discard, c)
					}
				}()
				addr = ln.Addr().String()
			} else {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer pc.Close()
				go func() {
					buf := make([]byte, 65536)
					for {
						if _, _, err := pc.ReadFrom(buf); err != nil {
							return
						}
					}
				}()
				addr = pc.LocalAddr().String()
			}
			host, port, _ := net.SplitHostPort(addr)
			o := newOut(b, "host "+host, "port "+port, "mode "+mode, "syslog_message_key message", "syslog_appname_preset bench")
			c := outputtest.Chunk(0, 1000)
			b.SetBytes(int64(len(c.Data)))
			b.ResetTimer()
			for range b.N {
				if err := o.Flush(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*c.Records)/sec, "records/s")
			b.ReportMetric(float64(b.N*len(c.Data))/sec/1e6, "MB/s_in")
		})
	}
}

// mode tls to Floe's syslog input serving TLS, certificate verified.
func TestTLS(t *testing.T) {
	crt, key := inputsink.SelfSigned(t)
	s := inputsink.New(t, syslogin.Spec(), []string{"mode tcp", "tls on", "tls.crt_file " + crt, "tls.key_file " + key},
		func(host, port string) []string { return []string{"host " + host, "port " + port} }, seqOf)
	o := newOut(t, append(s.Config(), "mode tls", "tls.ca_file "+crt, "syslog_message_key message")...)
	if err := o.Flush(context.Background(), outputtest.Chunk(0, 20)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Events(t)) < 20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var want []int64
	for i := range int64(20) {
		want = append(want, i)
	}
	if err := outputtest.Diff(want, s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
}

// Any record body, decodable or not, renders without a panic, within
// maxsize, and with a header the syslog parser can find.
func FuzzAppendMessage(f *testing.F) {
	f.Add(plugintest.KV("message", "hi", "sev", "err", "sd", plugintest.KV("a", "b]\"")).AppendMsgpack(nil))
	f.Add([]byte{0x81, 0xa3, 's', 'e', 'v', 0xcb})
	o, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), "syslog_message_key message",
		"syslog_severity_key sev", "syslog_hostname_key h", "syslog_sd_key sd", "syslog_maxsize 300"))
	if err != nil {
		f.Fatal(err)
	}
	out := o.(*Output)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := out.AppendMessage(nil, t0, body)
		if err != nil {
			return
		}
		if len(m) > 300 {
			t.Fatalf("message of %d bytes over syslog_maxsize 300", len(m))
		}
		if !strings.HasPrefix(string(m), "<") || !strings.Contains(string(m[:min(len(m), 8)]), ">1 ") {
			t.Fatalf("no RFC 5424 header: %q", m)
		}
	})
}
