package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go/jetstream"

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

// reuser fills lent buffers, as tail does, and overwrites each with the next
// chunk's events once the last one is stored.
type reuser struct {
	chunks int
	wait   bool // for each chunk to be stored before the next
	reused int  // lent buffers that were the previous chunk's
	rs     []plugin.Receipt
}

func (u *reuser) Run(ctx context.Context, w plugin.Writer) error {
	cw := w.(plugin.ChunkWriter)
	var prev *byte
	for i := range u.chunks {
		b := cw.ChunkBuffer(32 << 10)
		if cap(b) < 32<<10 || len(b) != 0 {
			return fmt.Errorf("lent buffer len %d cap %d, want empty with 32 KiB", len(b), cap(b))
		}
		if unsafe.SliceData(b[:1]) == prev {
			u.reused++
		}
		prev = unsafe.SliceData(b[:1])
		for j := range 100 {
			ev := event.Event{Time: event.Time{Sec: int64(i)}, Body: event.Map{{Key: "chunk", Value: int64(i)}, {Key: "j", Value: int64(j)}, {Key: "pad", Value: strings.Repeat("x", 100)}}}
			b = ev.AppendMsgpack(b)
		}
		r, err := cw.WriteChunk(ctx, fmt.Sprintf("reuse-%d", i), "t", b, 100)
		if err != nil {
			return err
		}
		if u.rs = append(u.rs, r); !u.wait {
			continue
		}
		<-r.Done()
		if r.Err() != nil {
			return r.Err()
		}
	}
	for _, r := range u.rs {
		<-r.Done()
		if r.Err() != nil {
			return r.Err()
		}
	}
	return nil
}

// Buffers lent with ChunkBuffer come back once their chunk is stored, and
// what FLOE_IN holds is each chunk as written, though the input has since
// overwritten its buffer with the next one — compressed or not, and whether
// or not the input waits for each chunk before it asks for the next buffer.
func TestLentChunkBuffersAreReusedAfterTheChunkIsStored(t *testing.T) {
	for _, c := range []struct {
		enc  string
		wait bool
	}{{chunk.EncodingS2, true}, {"none", true}, {chunk.EncodingS2, false}, {"none", false}} {
		enc := c.enc
		t.Run(fmt.Sprintf("%s/wait=%v", c.enc, c.wait), func(t *testing.T) {
			if err := chunk.SetCompression(enc); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = chunk.SetCompression(chunk.EncodingS2) })
			srv := natstest.Run(t)
			_, js := srv.Connect(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := jsx.EnsureTopology(ctx, js, jsx.Topology{}); err != nil {
				t.Fatal(err)
			}
			in := &reuser{chunks: 5, wait: c.wait}
			if !c.wait {
				in.chunks = 40
			}
			s := New(js, Config{Inputs: []Input{{Name: "tail.0", Tag: "t", Input: in}}, ChunkSize: 16 << 10})
			if err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if c.wait && in.reused != in.chunks-1 {
				t.Errorf("%d of %d lent buffers were the stored chunk's, want every one after the first", in.reused, in.chunks-1)
			}
			st, err := js.Stream(ctx, jsx.StreamIn)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for seq := uint64(1); seq <= uint64(in.chunks)+1; seq++ {
				m, err := st.GetMsg(ctx, seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				c, err := chunk.FromHeaders(m.Header, m.Data, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := int64(got)
				n := 0
				it := event.NewIter(c.Data)
				for it.Next() {
					ev, err := it.Event().Decode()
					if err != nil {
						t.Fatal(err)
					}
					if v, _ := ev.Body.Get("chunk"); v != want {
						t.Fatalf("chunk %d (%s) holds an event of chunk %v", want, c.ID, v)
					}
					n++
				}
				if n != 100 {
					t.Fatalf("chunk %d holds %d events, want 100", want, n)
				}
				got++
			}
			if got != in.chunks {
				t.Fatalf("FLOE_IN holds %d chunks, want %d", got, in.chunks)
			}
		})
	}
}
