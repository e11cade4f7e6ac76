package natsout

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

func openOut(t *testing.T, lines ...string) *Output {
	t.Helper()
	out, err := New(context.Background(), plugin.Settings{Name: "nats.0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { plugin.Close(context.Background(), out) })
	return out.(*Output)
}

// A chunk redelivered after its PubAck was lost (the output crashed, or the
// mesh retried) is stored once: JetStream recognises its Nats-Msg-Ids.
func TestRedeliveryStoredOnce(t *testing.T) {
	for _, mode := range []string{"message_per_record off", "message_per_record on"} {
		t.Run(mode, func(t *testing.T) {
			s := newJSSink(t)
			out := openOut(t, append(s.Config(), mode)...)
			c := outputtest.Chunk(0, 30)
			for range 3 {
				if err := out.Flush(context.Background(), c); err != nil {
					t.Fatal(err)
				}
			}
			if err := outputtest.Diff(seqs(0, 30), s.Seqs(t)); err != nil {
				t.Fatal(err)
			}
			msgs := len(s.messages(t))
			if got, want := out.Duplicates(), int64(2*msgs); got != want {
				t.Errorf("JetStream reported %d duplicates, want %d (2 redeliveries of %d messages)", got, want, msgs)
			}
			// A second output instance (a restarted output stage) derives the same ids.
			out2 := openOut(t, append(s.Config(), mode)...)
			if err := out2.Flush(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			if err := outputtest.Diff(seqs(0, 30), s.Seqs(t)); err != nil {
				t.Fatalf("after a flush by a new instance: %v", err)
			}
		})
	}
}

func seqs(first int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = first + int64(i)
	}
	return s
}

func TestSubjectFromTagAndHeaders(t *testing.T) {
	s := newJSSink(t)
	out := openOut(t, "url "+s.srv.URL(), "subject sink.logs.$TAG[1].$TAG")
	c := outputtest.Chunk(0, 3)
	c.Tag = "kube.web.pod"
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if want := "sink.logs.web.kube.web.pod"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	if got, want := m.Header.Get(jetstream.MsgIDHeader), c.ID+"/0"; got != want {
		t.Errorf("Nats-Msg-Id %q, want %q", got, want)
	}
	if got := m.Header.Get(chunk.HeaderTag); got != c.Tag {
		t.Errorf("Floe-Tag %q, want %q", got, c.Tag)
	}
	if got := m.Header.Get(chunk.HeaderRecords); got != "3" {
		t.Errorf("Floe-Records %q, want 3", got)
	}
	want := "{\"date\":1700000000.123457,\"seq\":0,\"message\":\"record 0\"}\n"
	if !strings.HasPrefix(string(m.Data), want) {
		t.Errorf("payload starts %q, want %q", m.Data, want)
	}
}

// format msgpack publishes the chunk's events byte for byte.
func TestMsgpackPayload(t *testing.T) {
	s := newJSSink(t)
	out := openOut(t, "url "+s.srv.URL(), "subject sink.$TAG", "format msgpack")
	c := outputtest.Chunk(5, 4)
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages(t)
	if len(msgs) != 1 || string(msgs[0].Data) != string(c.Data) {
		t.Fatalf("got %d messages; want one holding the chunk's %d bytes", len(msgs), len(c.Data))
	}
}

// A chunk bigger than max_message_size is split on record boundaries, each
// part with the id of its first record, and nothing is lost or doubled.
func TestSplitByMaxMessageSize(t *testing.T) {
	s := newJSSink(t)
	out := openOut(t, append(s.Config(), "max_message_size 400")...)
	c := outputtest.Chunk(0, 40)
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	msgs := s.messages(t)
	if len(msgs) < 5 {
		t.Fatalf("got %d messages, want the 40 records split into several", len(msgs))
	}
	first := 0
	for _, m := range msgs {
		if len(m.Data) > 400 {
			t.Errorf("message of %d bytes exceeds max_message_size 400", len(m.Data))
		}
		if got, want := m.Header.Get(jetstream.MsgIDHeader), c.ID+"/"+strconv.Itoa(first); got != want {
			t.Errorf("Nats-Msg-Id %q, want %q", got, want)
		}
		first += len(payloadSeqs(t, m.Data))
	}
	if err := outputtest.Diff(seqs(0, 40), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
}

func TestNoStreamIsRetry(t *testing.T) {
	s := newJSSink(t)
	out := openOut(t, "url "+s.srv.URL(), "subject nostream.$TAG", "timeout 2s")
	err := out.Flush(context.Background(), outputtest.Chunk(0, 1))
	if err == nil || plugin.IsPermanent(err) || !strings.Contains(err.Error(), "no JetStream stream") {
		t.Fatalf("flush to a subject no stream stores: %v; want a RETRY naming the missing stream", err)
	}
}

func TestBadSubjectIsPermanent(t *testing.T) {
	s := newJSSink(t)
	out := openOut(t, "url "+s.srv.URL(), "subject sink.$TAG[2]")
	err := out.Flush(context.Background(), outputtest.Chunk(0, 1)) // tag app.log has two parts
	if !plugin.IsPermanent(err) || !strings.Contains(err.Error(), "$TAG[2]") {
		t.Fatalf("got %v; want ERROR naming $TAG[2]", err)
	}
	c := outputtest.Chunk(0, 1)
	c.Tag = "has space"
	out2 := openOut(t, "url "+s.srv.URL(), "subject sink.$TAG")
	if err := out2.Flush(context.Background(), c); !plugin.IsPermanent(err) {
		t.Fatalf("tag with a space: %v; want ERROR", err)
	}
}

func TestCoreNATS(t *testing.T) {
	s := newJSSink(t)
	sub, err := s.nc.SubscribeSync("core.>")
	if err != nil {
		t.Fatal(err)
	}
	s.nc.Flush()
	out := openOut(t, "host 127.0.0.1", "port "+strings.TrimPrefix(s.srv.URL()[strings.LastIndex(s.srv.URL(), ":"):], ":"),
		"jetstream off", "subject core.$TAG", "format msgpack")
	c := outputtest.Chunk(0, 2)
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5e9)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "core.app.log" || string(m.Data) != string(c.Data) {
		t.Fatalf("got %s %d bytes", m.Subject, len(m.Data))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ line, key string }{
		{"subject x.$TAG[", "subject"},
		{"subject x.$TAG[a]", "subject"},
		{"format xml", "format"},
		{"port 70000", "port"},
		{"password secret", "password"},
	} {
		_, err := New(context.Background(), plugin.Settings{Name: "nats.0"}, plugintest.Props(Spec(), c.line))
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: got %v, want an error naming %s", c.line, err, c.key)
		}
	}
}

func BenchmarkFlush(b *testing.B) {
	for _, mode := range [][]string{{"format json_lines"}, {"format msgpack"}, {"format json_lines", "message_per_record on"}} {
		b.Run(strings.Join(mode, ","), func(b *testing.B) {
			s := newJSSink(b)
			out, err := New(context.Background(), plugin.Settings{Name: "nats.0"}, plugintest.Props(Spec(), append(s.Config(), mode...)...))
			if err != nil {
				b.Fatal(err)
			}
			defer plugin.Close(context.Background(), out)
			const n = 500
			chunks := make([]*chunk.Chunk, 64)
			for i := range chunks {
				chunks[i] = outputtest.Chunk(int64(i*n), n)
			}
			var bytes int64
			for i := 0; b.Loop(); i++ {
				c := chunks[i%len(chunks)]
				c.ID = "bench-" + strconv.Itoa(i) // fresh ids: measure storing, not dedup
				if err := out.Flush(context.Background(), c); err != nil {
					b.Fatal(err)
				}
				bytes += int64(len(c.Data))
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*n)/sec, "records/s")
			b.ReportMetric(float64(bytes)/sec/1e6, "MB/s")
		})
	}
}
