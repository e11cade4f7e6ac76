package kafka

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

func openOut(t testing.TB, lines ...string) *Output {
	t.Helper()
	out, err := New(context.Background(), plugin.Settings{Name: "kafka.0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { plugin.Close(context.Background(), out) })
	return out.(*Output)
}

func consume(t *testing.T, c *kfake.Cluster, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500e6)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			return out
		}
	}
}

func logChunk(id string, bodies ...event.Map) *chunk.Chunk {
	var data []byte
	for i, b := range bodies {
		ev := event.Event{Time: event.Time{Sec: 1700000000 + int64(i), Nsec: 500000000}, Body: b}
		data = ev.AppendMsgpack(data)
	}
	return &chunk.Chunk{ID: id, Tag: "app.log", Type: chunk.Logs, Records: len(bodies), Data: data}
}

func TestTopicKeyAndMessageKey(t *testing.T) {
	c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "main", "audit", "extra"))
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	out := openOut(t, "brokers "+brokers, "topics main,audit", "topic_key dest", "message_key_field user")
	ch := logChunk("c1",
		plugintest.KV("dest", "audit", "user", "ann", "n", int64(1)),
		plugintest.KV("dest", "extra", "user", "bob", "n", int64(2)), // not in topics: the first topic
		plugintest.KV("n", int64(3)))
	if err := out.Flush(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range consume(t, c, "main", "audit", "extra") {
		var v struct {
			N  int64   `json:"n"`
			TS float64 `json:"@timestamp"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("value %q: %v", r.Value, err)
		}
		if v.TS < 1700000000.4 {
			t.Errorf("record %d has @timestamp %v", v.N, v.TS)
		}
		var id string
		for _, h := range r.Headers {
			if h.Key == HeaderID {
				id = string(h.Value)
			}
		}
		got[strconv.FormatInt(v.N, 10)] = r.Topic + " key=" + string(r.Key) + " id=" + id
	}
	want := map[string]string{"1": "audit key=ann id=c1/0", "2": "main key=bob id=c1/1", "3": "main key= id=c1/2"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("record n=%s: got %q, want %q", k, got[k], w)
		}
	}
	if len(got) != 3 {
		t.Errorf("got %d records: %v", len(got), got)
	}

	// dynamic_topic takes any value of topic_key; a static message_key.
	out2 := openOut(t, "brokers "+brokers, "topics main", "topic_key dest", "dynamic_topic on", "message_key k1")
	if err := out2.Flush(context.Background(), logChunk("c2", plugintest.KV("dest", "extra", "n", int64(9)))); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, c, "extra")
	if len(recs) != 1 || string(recs[0].Key) != "k1" {
		t.Fatalf("dynamic topic: got %d records in extra", len(recs))
	}
}

func TestMsgpackFormatAndCompression(t *testing.T) {
	for _, comp := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			c := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "fluent-bit"))
			defer c.Close()
			out := openOut(t, "brokers "+strings.Join(c.ListenAddrs(), ","), "format msgpack", "compression "+comp)
			if err := out.Flush(context.Background(), logChunk("m", plugintest.KV("msg", "hello", "n", int64(7)))); err != nil {
				t.Fatal(err)
			}
			recs := consume(t, c, "fluent-bit")
			if len(recs) != 1 {
				t.Fatalf("got %d records", len(recs))
			}
			var v map[string]any
			if err := msgpack.Unmarshal(recs[0].Value, &v); err != nil {
				t.Fatal(err)
			}
			if v["msg"] != "hello" || v["@timestamp"] != 1700000000.5 {
				t.Errorf("got %v", v)
			}
		})
	}
}

// A redelivered chunk goes to Kafka again (no cross-producer dedup), but each
// copy carries the same floe-id, so consumers can drop the second.
func TestRedeliveryKeepsIDs(t *testing.T) {
	s := newKfakeSink(t)
	out := openOut(t, s.Config()...)
	c := outputtest.Chunk(0, 5)
	for range 2 {
		if err := out.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]int{}
	for _, r := range s.Records(t) {
		for _, h := range r.Headers {
			if h.Key == HeaderID {
				ids[string(h.Value)]++
			}
		}
	}
	if len(ids) != 5 {
		t.Fatalf("got %d distinct floe-ids, want 5: %v", len(ids), ids)
	}
	for i := range 5 {
		if id := c.ID + "/" + strconv.Itoa(i); ids[id] != 2 {
			t.Errorf("floe-id %s seen %d times, want 2", id, ids[id])
		}
	}
}

func TestBadTopicFromRecordIsPermanent(t *testing.T) {
	s := newKfakeSink(t)
	out := openOut(t, append(s.Config(), "topic_key dest", "dynamic_topic on")...)
	err := out.Flush(context.Background(), logChunk("b", plugintest.KV("dest", "no spaces allowed")))
	if !plugin.IsPermanent(err) || !strings.Contains(err.Error(), "topic") {
		t.Fatalf("got %v; want ERROR naming the topic", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ line, key string }{
		{"topics bad/topic", "topics"},
		{"brokers  ", "brokers"},
		{"rdkafka.enable.idempotence false", "rdkafka.enable.idempotence"},
		{"rdkafka.sasl.mechanism PLAIN", "rdkafka.sasl.username"},
	} {
		_, err := New(context.Background(), plugin.Settings{Name: "kafka.0"}, plugintest.Props(Spec(), c.line))
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: got %v, want an error naming %s", c.line, err, c.key)
		}
	}
}

func BenchmarkFlush(b *testing.B) {
	for _, mode := range [][]string{{"format json"}, {"format msgpack"}, {"format json", "compression zstd"}} {
		b.Run(strings.Join(mode, ","), func(b *testing.B) {
			s := newKfakeSink(b)
			out := openOut(b, append(s.Config(), mode...)...)
			const n = 500
			chunks := make([]*chunk.Chunk, 64)
			for i := range chunks {
				chunks[i] = outputtest.Chunk(int64(i*n), n)
			}
			var bytes int64
			for i := 0; b.Loop(); i++ {
				c := chunks[i%len(chunks)]
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
