package tcp

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/plugins/input/tcp"
	"github.com/floe-io/floe/internal/plugins/output/internal/inputsink"
)

func seqOf(t testing.TB, ev event.Event) int64 {
	v, ok := ev.Body.Get("seq")
	n, isInt := v.(int64)
	if !ok || !isInt {
		t.Fatalf("record without an integer seq: %v", ev.Body)
	}
	return n
}

// Floe's tcp input (format json) is the receiver: json_lines and
// json_stream are streams of JSON objects it reads as records.
func TestContract(t *testing.T) {
	for _, f := range []string{"json_lines", "json_stream"} {
		t.Run(f, func(t *testing.T) {
			outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink {
				return inputsink.New(t, tcp.Spec(), []string{"format json"}, func(host, port string) []string {
					return []string{"host " + host, "port " + port, "format " + f}
				}, seqOf)
			}, outputtest.Options{})
		})
	}
}

func newOut(t testing.TB, lines ...string) plugin.Output {
	t.Helper()
	o, err := New(context.Background(), plugin.Settings{Name: "tcp.0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new tcp output: %v", err)
	}
	t.Cleanup(func() { plugin.Close(context.Background(), o) })
	return o
}

// readAll accepts one connection and returns everything sent on it.
func readAll(t *testing.T) (string, string, <-chan []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	return host, port, got
}

func TestMsgpackIsTheChunk(t *testing.T) {
	host, port, got := readAll(t)
	out := newOut(t, "host "+host, "port "+port)
	c := outputtest.Chunk(0, 5)
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	plugin.Close(context.Background(), out)
	b := <-got
	if string(b) != string(c.Data) {
		t.Fatalf("msgpack payload differs from the chunk (%d bytes, want %d)", len(b), len(c.Data))
	}
	n, err := event.Count(b)
	if err != nil || n != 5 {
		t.Fatalf("receiver decodes %d events (%v), want 5", n, err)
	}
}

func TestJSONArrayWithDate(t *testing.T) {
	host, port, got := readAll(t)
	out := newOut(t, "host "+host, "port "+port, "format json", "json_date_key ts", "json_date_format iso8601")
	if err := out.Flush(context.Background(), outputtest.Chunk(7, 2)); err != nil {
		t.Fatal(err)
	}
	plugin.Close(context.Background(), out)
	var recs []map[string]any
	if err := json.Unmarshal(<-got, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0]["seq"] != 7.0 || !strings.HasPrefix(recs[0]["ts"].(string), "2023-11-14T22:13:27.123") {
		t.Fatalf("records %v", recs)
	}
}

func TestRefusedConnectionIsRetry(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	out := newOut(t, "host "+host, "port "+port)
	err := out.Flush(context.Background(), outputtest.Chunk(0, 1))
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("flush to a closed port = %v, want a retry", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, lines := range [][]string{{"port 70000"}, {"format gelf"}, {"tls on", "tls.ca_file /nonexistent"}} {
		if _, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), lines...)); err == nil {
			t.Errorf("%v: no error", lines)
		}
	}
}

func BenchmarkFlush(b *testing.B) {
	for _, f := range []string{"msgpack", "json_lines"} {
		b.Run(f, func(b *testing.B) {
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
			host, port, _ := net.SplitHostPort(ln.Addr().String())
			out := newOut(b, "host "+host, "port "+port, "format "+f)
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
		})
	}
}

// TLS to Floe's tcp input, the certificate verified against tls.ca_file.
func TestContractTLS(t *testing.T) {
	crt, key := inputsink.SelfSigned(t)
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink {
		return inputsink.New(t, tcp.Spec(), []string{"format json", "tls on", "tls.crt_file " + crt, "tls.key_file " + key},
			func(host, port string) []string {
				return []string{"host " + host, "port " + port, "format json_lines", "tls on", "tls.ca_file " + crt}
			}, seqOf)
	}, outputtest.Options{})
}

func TestRefusesMetricsChunks(t *testing.T) {
	out := newOut(t, "host 127.0.0.1", "port 9")
	c := outputtest.Chunk(0, 1)
	c.Type = chunk.Metrics
	if err := out.Flush(context.Background(), c); !plugin.IsPermanent(err) {
		t.Fatalf("metrics chunk: %v, want a permanent error", err)
	}
}
