package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// requester writes one batch, flushes and waits for its receipt, as a
// network input answering a request does; then it signals and waits.
type requester struct {
	tag    string
	before <-chan struct{} // write after this closes
	stored chan struct{}   // closed once the receipt resolved
}

func (q *requester) Run(ctx context.Context, w plugin.Writer) error {
	select {
	case <-q.before:
	case <-ctx.Done():
		return nil
	}
	r, err := w.Write(ctx, q.tag, batch(3, 10), 3)
	if err != nil {
		return err
	}
	plugin.FlushWriter(w)
	select {
	case <-r.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	close(q.stored)
	<-ctx.Done()
	return r.Err()
}

// writeOnce writes one batch and says so, then waits for the end.
type writeOnce struct {
	tag     string
	written chan struct{}
}

func (o *writeOnce) Run(ctx context.Context, w plugin.Writer) error {
	if _, err := w.Write(ctx, o.tag, batch(5, 10), 5); err != nil {
		return err
	}
	close(o.written)
	<-ctx.Done()
	return nil
}

// A network input that flushes to answer its client seals only its own
// open chunks: another input's chunk keeps filling until the flush interval
// or its size closes it.
func TestFlushSealsOnlyTheCallingInputsChunks(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	other := &writeOnce{tag: "tail.app", written: make(chan struct{})}
	req := &requester{tag: "fwd", before: other.written, stored: make(chan struct{})}
	s := New(js, Config{Flush: time.Hour, Inputs: []Input{
		{Name: "tail.0", Tag: "tail.app", Input: other},
		{Name: "forward.0", Tag: "fwd", Input: req},
	}})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	select {
	case <-req.stored:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the flushing input's events were not stored")
	}
	st, err := js.Stream(ctx, jsx.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("FLOE_IN holds %d chunks after one input's flush, want 1 (its own)", n)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := chunk.FromHeaders(m.Header, m.Data, nil); c.Tag != "fwd" || c.Records != 3 {
		t.Fatalf("stored chunk of tag %q with %d records, want the flushing input's (fwd, 3)", c.Tag, c.Records)
	}
	// Stopping closes the other input's chunk: nothing is held back for good.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m, err = st.GetLastMsgForSubject(ctx, jsx.InSubject("tail.app"))
	if err != nil {
		t.Fatalf("the other input's chunk was not stored at stop: %v", err)
	}
	if c, _ := chunk.FromHeaders(m.Header, m.Data, nil); c.Records != 5 {
		t.Fatalf("the other input's chunk has %d records, want 5", c.Records)
	}
}
