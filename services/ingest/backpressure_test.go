package ingest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// endless writes batches until its context ends, counting the writes that returned.
type endless struct {
	writes  atomic.Int64
	paused  atomic.Int32
	resumed atomic.Int32
}

func (e *endless) Pause()  { e.paused.Add(1) }
func (e *endless) Resume() { e.resumed.Add(1) }

func (e *endless) Run(ctx context.Context, w plugin.Writer) error {
	b := batch(50, 200)
	for ctx.Err() == nil {
		if _, err := w.Write(ctx, "bp", b, 50); err != nil {
			return nil
		}
		e.writes.Add(1)
	}
	return nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFullStreamPausesInputsAndResumes(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{InMaxBytes: 256 << 10}); err != nil {
		t.Fatal(err)
	}
	in := &endless{}
	m := &telemetry.StageMetrics{}
	s := New(js, Config{Inputs: []Input{{Name: "e", Tag: "bp", Input: in}}, ChunkSize: 32 << 10,
		Flush: 20 * time.Millisecond, Metrics: m})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	eventually(t, "inputs paused with FLOE_IN full", func() bool { return m.Paused.Load() == 1 })
	if in.paused.Load() != 1 {
		t.Errorf("Pauser.Pause called %d times", in.paused.Load())
	}
	// Writes stall while paused: the count stops moving.
	stalled := in.writes.Load()
	time.Sleep(300 * time.Millisecond)
	if got := in.writes.Load(); got > stalled+1 {
		t.Fatalf("input kept writing while paused: %d → %d", stalled, got)
	}

	// Drain the stream: ingest resumes by itself and writes flow again.
	st, _ := js.Stream(ctx, jsx.StreamIn)
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	// (The stream fills again quickly, so it may be paused again by now.)
	eventually(t, "inputs resumed", func() bool { return in.resumed.Load() >= 1 && in.writes.Load() > stalled+5 })
	cancel()
	<-done
}

func TestMemBufLimitBoundsBytesInFlight(t *testing.T) {
	g := &memGate{limit: 1000}
	ctx := context.Background()
	if err := g.acquire(ctx, 600); err != nil {
		t.Fatal(err)
	}
	if err := g.acquire(ctx, 600); err != nil { // may exceed by one write, as Fluent Bit
		t.Fatal(err)
	}
	blocked := make(chan struct{})
	go func() {
		_ = g.acquire(ctx, 10)
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Fatal("acquire did not block at the limit")
	case <-time.After(100 * time.Millisecond):
	}
	g.release(600)
	g.release(600)
	select {
	case <-blocked:
	case <-time.After(2 * time.Second):
		t.Fatal("acquire did not resume after release")
	}
}

// pauseLog is a plugin.Pauser that records what it was told, in order.
type pauseLog struct {
	mu    sync.Mutex
	calls []string
}

func (p *pauseLog) Pause()  { p.add("pause") }
func (p *pauseLog) Resume() { p.add("resume") }
func (p *pauseLog) add(s string) {
	p.mu.Lock()
	p.calls = append(p.calls, s)
	p.mu.Unlock()
}
func (p *pauseLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.calls, ",")
}

// oneWrite writes one batch, hands its receipt to the test and waits.
type oneWrite struct {
	pauseLog
	data  []byte
	wrote chan plugin.Receipt
}

func (o *oneWrite) Run(ctx context.Context, w plugin.Writer) error {
	r, err := w.Write(ctx, "mem", o.data, 10)
	if err != nil {
		return err
	}
	o.wrote <- r
	<-ctx.Done()
	return nil
}

// An input whose mem_buf_limit is reached is told it is paused as soon as
// the write that reached it returns, not when a later write would block,
// so inputs that answer clients refuse them at once; it is told to resume
// when the bytes are stored. Only that input pauses: FLOE_IN is not full.
func TestMemBufLimitPausesAndResumesThePauser(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// No FLOE_IN yet: publishes fail and are retried, so the written
	// bytes stay in flight and the gate stays closed.
	in := &oneWrite{data: batch(10, 200), wrote: make(chan plugin.Receipt, 1)}
	other := &oneWrite{data: batch(10, 20), wrote: make(chan plugin.Receipt, 1)}
	m := &telemetry.StageMetrics{}
	s := New(js, Config{Inputs: []Input{
		{Name: "limited", Tag: "mem", Input: in, MemBufLimit: 1000},
		{Name: "unlimited", Tag: "mem", Input: other},
	}, Flush: 20 * time.Millisecond, Metrics: m})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	var r plugin.Receipt
	select {
	case r = <-in.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the write that reaches mem_buf_limit blocked")
	}
	if got := in.String(); got != "pause" {
		t.Fatalf("after the write that reached mem_buf_limit the input was told %q, want pause", got)
	}
	select {
	case <-r.Done():
		t.Fatal("receipt resolved with no FLOE_IN")
	default:
	}
	if got := m.Paused.Load(); got != 1 {
		t.Errorf("paused_inputs %d, want 1 (the limited input only)", got)
	}
	if why := s.Paused(); why != "" {
		t.Errorf("the pipeline reports itself paused (%q) though FLOE_IN is not full", why)
	}
	<-other.wrote
	if got := other.String(); got != "" {
		t.Errorf("the input without mem_buf_limit was told %q", got)
	}

	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("receipt not resolved once FLOE_IN exists")
	}
	eventually(t, "input resumed", func() bool { return in.String() == "pause,resume" })
	if got := m.Paused.Load(); got != 0 {
		t.Errorf("paused_inputs %d after resume", got)
	}
	cancel()
	<-done
	st, err := js.Stream(context.Background(), jsx.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Data, err = chunk.Payload(msg.Header, msg.Data); err != nil {
			t.Fatal(err)
		}
		n, err := event.Count(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		events += n
	}
	if events != 20 {
		t.Errorf("FLOE_IN holds %d events, want the 20 written, once", events)
	}
}

// Both causes at once: the input is told once, and resumes only when
// neither holds.
func TestPauseCausesOverlap(t *testing.T) {
	p := &pauseLog{}
	m := &telemetry.StageMetrics{}
	ip := &inputPause{name: "x", p: p, stats: m, log: slog.New(slog.DiscardHandler)}
	ip.setMem(true)
	ip.setPipeline(true)
	ip.setMem(true)
	if got := p.String(); got != "pause" || m.Paused.Load() != 1 {
		t.Fatalf("told %q, paused_inputs %d", got, m.Paused.Load())
	}
	ip.setMem(false)
	if got := p.String(); got != "pause" {
		t.Fatalf("resumed while FLOE_IN is still full: %q", got)
	}
	ip.setPipeline(false)
	ip.setMem(false)
	if got := p.String(); got != "pause,resume" || m.Paused.Load() != 0 {
		t.Fatalf("told %q, paused_inputs %d", got, m.Paused.Load())
	}
}
