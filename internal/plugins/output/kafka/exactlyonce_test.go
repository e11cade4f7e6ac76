package kafka

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/plugins/output/sinkutil"
)

// newOut opens an output that the test may abandon without closing it, as a
// SIGKILL would: its client is closed only at the end of the test.
func newOut(t *testing.T, lines ...string) *Output {
	t.Helper()
	out, err := New(context.Background(), plugin.Settings{Name: "kafka.0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { plugin.Close(context.Background(), out) })
	return out.(*Output)
}

// crashMidTransaction does what a flush does up to the commit and stops
// there, as an output killed between writing a chunk and committing it.
func crashMidTransaction(t *testing.T, o *Output, c *chunk.Chunk) {
	t.Helper()
	ctx := context.Background()
	o.txnMu.Lock()
	defer o.txnMu.Unlock()
	if err := o.eo.load(ctx, o.cl); err != nil {
		t.Fatal(err)
	}
	recs, err := o.records(c)
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, o.eo.record(sinkutil.ChunkKey(c), len(recs)))
	if err := o.cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range o.cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// readAll consumes the sink topic with the given isolation and returns the
// seqs of its records. It waits (up to 20 s) for at least atLeast records,
// then reads on until a poll comes back empty, so copies beyond atLeast are
// returned too: an empty poll alone cannot end the read early, since under
// -race on a busy host one fetch can take longer than the quiet poll.
func readAll(t *testing.T, s *kfakeSink, level kgo.IsolationLevel, atLeast int) []int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cluster().ListenAddrs()...), kgo.ConsumeTopics(sinkTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var seqs []int64
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			var v struct{ Seq int64 }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			seqs = append(seqs, v.Seq)
			n++
		})
		if n == 0 && (len(seqs) >= atLeast || time.Now().After(deadline)) {
			return seqs
		}
	}
}

// A chunk committed by an output that then died before Floe acked it is
// redelivered to the next output with the same transactional_id, which
// finds its marker and answers OK without writing it again; a chunk whose
// transaction the dead output left open is aborted by the next output's
// fencing and written on redelivery. read_committed consumers see every
// record once.
func TestExactlyOnceAcrossCrash(t *testing.T) {
	s := newKfakeSink(t)
	cfg := append(s.Config(), "transactional_id floe-eo")
	committed := outputtest.Chunk(0, 30) // committed, then the output dies before the ack
	open := outputtest.Chunk(30, 20)     // written, then the output dies before the commit
	fresh := outputtest.Chunk(50, 10)    // first seen by the second output
	first := newOut(t, cfg...)
	if err := first.Flush(context.Background(), committed); err != nil {
		t.Fatal(err)
	}
	crashMidTransaction(t, first, open)
	// first is abandoned, not closed: its transaction stays open.

	second := newOut(t, cfg...)
	for _, c := range []*chunk.Chunk{committed, open, fresh} {
		if err := second.Flush(context.Background(), c); err != nil {
			t.Fatalf("redelivered chunk %s: %v", c.ID, err)
		}
	}
	if n := second.Skipped(); n != 1 {
		t.Errorf("second output skipped %d chunks, want 1 (the committed one)", n)
	}
	if d := outputtest.Diff(seqRange(0, 60), readAll(t, s, kgo.ReadCommitted(), 60)); d != nil {
		t.Fatalf("read_committed: %v", d)
	}
	// The records of the open transaction did reach Kafka, twice: the
	// first copy is aborted, so only read_uncommitted consumers see it.
	d := outputtest.Diff(seqRange(0, 60), readAll(t, s, kgo.ReadUncommitted(), 60))
	if d == nil {
		t.Fatal("read_uncommitted: no record twice; the crashed transaction wrote nothing, the test proves nothing")
	}
	t.Logf("read_uncommitted, as expected: %v", d)

	// A third output after a clean stop also knows all three chunks.
	third := newOut(t, cfg...)
	for _, c := range []*chunk.Chunk{committed, open, fresh} {
		if err := third.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if n := third.Skipped(); n != 3 {
		t.Errorf("third output skipped %d chunks, want 3", n)
	}
	if d := outputtest.Diff(seqRange(0, 60), readAll(t, s, kgo.ReadCommitted(), 60)); d != nil {
		t.Fatalf("read_committed after the third output: %v", d)
	}
}

// Markers are per transactional_id: another output (another pipeline) with
// another id writes the same chunk id, and exactly_once off writes every
// redelivery again, as documented.
func TestExactlyOnceScopeAndOff(t *testing.T) {
	s := newKfakeSink(t)
	c := outputtest.Chunk(0, 5)
	a := newOut(t, append(s.Config(), "transactional_id a")...)
	b := newOut(t, append(s.Config(), "transactional_id b")...)
	for _, o := range []*Output{a, b, a} {
		if err := o.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(readAll(t, s, kgo.ReadCommitted(), 10)); got != 10 {
		t.Fatalf("got %d records, want 10 (once per transactional_id)", got)
	}
	off := newOut(t, append(s.Config(), "transactional_id c", "exactly_once off")...)
	for range 2 {
		if err := off.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(readAll(t, s, kgo.ReadCommitted(), 20)); got != 20 {
		t.Fatalf("got %d records, want 20 (exactly_once off writes redeliveries again)", got)
	}
}

// The marker topic is created compacted when missing.
func TestMarkerTopicCreated(t *testing.T) {
	s := newKfakeSink(t)
	out := newOut(t, append(s.Config(), "transactional_id x", "exactly_once_topic floe.markers")...)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 1)); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, "floe.markers", []string{"cleanup.policy"}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(context.Background(), out.eo.cl)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, res := range resp.Resources {
		for _, c := range res.Configs {
			if c.Name == "cleanup.policy" && c.Value != nil {
				got = *c.Value
			}
		}
	}
	if got != "compact,delete" {
		t.Fatalf("cleanup.policy of the marker topic: %q", got)
	}
}
