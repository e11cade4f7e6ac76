package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// scripted writes given batches then waits for every receipt.
type scripted struct {
	tag      string
	batches  [][]byte
	mu       sync.Mutex
	receipts []plugin.Receipt
}

func (s *scripted) Run(ctx context.Context, w plugin.Writer) error {
	for _, b := range s.batches {
		n, err := event.Count(b)
		if err != nil {
			return err
		}
		r, err := w.Write(ctx, s.tag, b, n)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.receipts = append(s.receipts, r)
		s.mu.Unlock()
	}
	for _, r := range s.receipts {
		<-r.Done()
		if r.Err() != nil {
			return r.Err()
		}
	}
	return nil
}

func batch(n, size int) []byte {
	var b []byte
	pad := string(make([]byte, size))
	for i := 0; i < n; i++ {
		ev := event.Event{Time: event.Time{Sec: int64(i)}, Body: event.Map{{Key: "i", Value: int64(i)}, {Key: "pad", Value: pad}}}
		b = ev.AppendMsgpack(b)
	}
	return b
}

func TestIngestChunksByTagAndSizeAndResolvesReceipts(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	if err := jsx.EnsureTopology(context.Background(), js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	in := &scripted{tag: "a", batches: [][]byte{batch(100, 100), batch(1000, 100)}}
	s := New(js, Config{Inputs: []Input{{Name: "scripted", Tag: "a", Input: in}}, ChunkSize: 16 << 10, Flush: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range in.receipts {
		select {
		case <-r.Done():
		default:
			t.Fatal("receipt not resolved after Run")
		}
	}
	st, _ := js.Stream(ctx, jsx.StreamIn)
	info, _ := st.Info(ctx)
	if info.State.Msgs < 7 {
		t.Fatalf("FLOE_IN has %d chunks; 1100 events of ~110 bytes at a 16 KiB chunk size need at least 7", info.State.Msgs)
	}
	total := 0
	for i := info.State.FirstSeq; i <= info.State.LastSeq; i++ {
		m, err := st.GetMsg(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		c, err := chunk.FromHeaders(m.Header, m.Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := event.Count(c.Data)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.Records || c.Tag != "a" || len(c.Data) > 16<<10 || c.ID == "" {
			t.Fatalf("chunk %d: records header %d, events %d, tag %q, %d bytes, id %q", i, c.Records, n, c.Tag, len(c.Data), c.ID)
		}
		total += n
	}
	if total != 1100 {
		t.Fatalf("stored %d events, want 1100", total)
	}
}

func TestIngestRefusesEventLargerThanChunk(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	_ = jsx.EnsureTopology(context.Background(), js, jsx.Topology{})
	s := New(js, Config{ChunkSize: 1024})
	w := &writer{s: s, in: Input{Tag: "t"}}
	big := batch(3, 2000)
	if _, err := w.Write(context.Background(), "t", big, 3); err == nil {
		t.Fatal("an event larger than the chunk limit was accepted")
	}
}

// signaled writes one metrics payload through WriteSignal.
type signaled struct{ payload []byte }

func (s *signaled) Run(ctx context.Context, w plugin.Writer) error {
	sw := w.(interface {
		WriteSignal(ctx context.Context, signal, tag string, data []byte, records int) (plugin.Receipt, error)
	})
	r, err := sw.WriteSignal(ctx, chunk.Metrics, "", s.payload, 7)
	if err != nil {
		return err
	}
	<-r.Done()
	return r.Err()
}

func TestWriteSignalStoresPayloadAsItsOwnChunk(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	_ = jsx.EnsureTopology(ctx, js, jsx.Topology{})
	payload := []byte{0x0a, 0x00, 0x01, 0xff} // not msgpack: must not be parsed
	s := New(js, Config{Inputs: []Input{{Name: "fluentbit_metrics.0", Tag: "metrics", Input: &signaled{payload: payload}}}})
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := js.Stream(ctx, jsx.StreamIn)
	m, err := st.GetLastMsgForSubject(ctx, jsx.InSubject("metrics"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := chunk.FromHeaders(m.Header, m.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != chunk.Metrics || c.Records != 7 || string(c.Data) != string(payload) || c.Source != "fluentbit_metrics.0" {
		t.Fatalf("stored %+v", c)
	}
}

// chunked writes one batch through WriteChunk, as tail does with its own
// chunk ids.
type chunked struct{ data []byte }

func (c *chunked) Run(ctx context.Context, w plugin.Writer) error {
	n, err := event.Count(c.data)
	if err != nil {
		return err
	}
	r, err := w.(plugin.ChunkWriter).WriteChunk(ctx, "file-1-0", "t", c.data, n)
	if err != nil {
		return err
	}
	<-r.Done()
	return r.Err()
}

// The pending gauge counts chunks on their way to FLOE_IN: one up per chunk
// handed to the sender, one down when it is stored, whichever way the input
// wrote them. Chunks written with their own ids (split in parts here) used to
// be counted down only, leaving the gauge below zero.
func TestPendingGaugeReturnsToZeroAfterWriteChunk(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	_ = jsx.EnsureTopology(ctx, js, jsx.Topology{})
	s := New(js, Config{Inputs: []Input{{Name: "tail.0", Tag: "t", Input: &chunked{data: batch(300, 100)}}}, ChunkSize: 8 << 10})
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.stats.Pending.Load(); got != 0 {
		t.Fatalf("pending gauge %d after every chunk was stored, want 0", got)
	}
	if got := s.stats.ChunksOut.Load(); got < 4 {
		t.Fatalf("%d chunks stored; 300 events of ~110 bytes at 8 KiB need at least 4", got)
	}
}
