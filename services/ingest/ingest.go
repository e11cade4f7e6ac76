// Package ingest runs Floe's inputs, groups their events into chunks by tag
// and publishes the chunks to FLOE_IN. An input's receipt resolves only when
// JetStream has stored every chunk holding its events.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/bufpool"
	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

// DefaultChunkSize is the size at which a chunk is closed (Fluent Bit aims at ~256 KiB-2 MiB).
const DefaultChunkSize = 512 << 10

// Input is one configured input instance.
type Input struct {
	Name    string // display name
	Tag     string // default tag
	Input   plugin.Input
	Metrics *telemetry.InputMetrics
	// MemBufLimit pauses this input while this many bytes it wrote are not
	// yet stored (Fluent Bit's mem_buf_limit); 0 = no limit.
	MemBufLimit int64
}

// Config configures the ingest stage.
type Config struct {
	Inputs    []Input
	Flush     time.Duration // close open chunks this often; default 1s
	ChunkSize int           // close a chunk at this size; default DefaultChunkSize
	// MaxPayload is the server's message limit; chunks stay under it.
	MaxPayload int
	// Grace bounds how long shutdown waits for pending chunks to be stored.
	Grace   time.Duration
	Logger  *slog.Logger
	Metrics *telemetry.StageMetrics
	// Ordered publishes one chunk at a time ([SERVICE] ordering per_tag).
	Ordered bool
}

// Service is a running ingest stage.
type Service struct {
	cfg   Config
	js    jetstream.JetStream
	pub   *jsx.Publisher
	log   *slog.Logger
	runID string
	seq   atomic.Uint64

	gateMu      sync.Mutex
	paused      chan struct{} // non-nil while inputs are paused; closed on resume
	pauseReason string
	pauseWarned bool                 // this pause was logged at warn level
	pauseLogged map[string]time.Time // last warn per reason
	inPause     []*inputPause        // per input, as cfg.Inputs

	// bufs holds chunk-sized buffers for busy tags, reused once their chunk
	// is stored: growing each chunk by doubling copied it about twice over.
	bufs bufpool.Pool

	mu    sync.Mutex
	open  map[string]*openChunk
	out   chan *sealed
	done  chan struct{} // closed when every input has returned
	stats *telemetry.StageMetrics
}

type openChunk struct {
	tag      string
	source   string
	data     []byte
	records  int
	receipts []*Receipt
	pooled   bool // data is a buffer of bufs
}

type sealed struct {
	c        *chunk.Chunk
	receipts []*Receipt
	pooled   bool // c.Data goes back to bufs once stored
}

// New builds the stage.
func New(js jetstream.JetStream, cfg Config) *Service {
	if cfg.Flush <= 0 {
		cfg.Flush = time.Second
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.MaxPayload > 0 && cfg.ChunkSize > cfg.MaxPayload-4096 {
		cfg.ChunkSize = cfg.MaxPayload - 4096
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = &telemetry.StageMetrics{}
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	inPause := make([]*inputPause, len(cfg.Inputs))
	for i, in := range cfg.Inputs {
		inPause[i] = &inputPause{name: in.Name, stats: cfg.Metrics, log: cfg.Logger}
		inPause[i].p, _ = in.Input.(plugin.Pauser)
	}
	return &Service{
		inPause: inPause,
		cfg:     cfg,
		js:      js,
		pub:     jsx.NewPublisher(js),
		log:     cfg.Logger,
		runID:   hex.EncodeToString(id[:]),
		open:    map[string]*openChunk{},
		out:     make(chan *sealed, 4),
		bufs:    bufpool.New(4),
		done:    make(chan struct{}),
		stats:   cfg.Metrics,
	}
}

// Done is closed when every input has finished by itself (stdin at EOF,
// dummy after its samples) and their chunks are stored.
func (s *Service) Done() <-chan struct{} { return s.done }

// Run runs the inputs until ctx ends or they all finish, then closes the
// open chunks and waits (up to Grace) until JetStream has them.
func (s *Service) Run(ctx context.Context) error {
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()

	var pipe sync.WaitGroup
	inflight := make(chan *pendingPub, 4)
	pipe.Add(2)
	go func() { defer pipe.Done(); s.send(drainCtx, inflight) }()
	go func() { defer pipe.Done(); s.confirm(drainCtx, inflight) }()

	tickCtx, stopTick := context.WithCancel(ctx)
	go s.ticker(tickCtx)

	var wg sync.WaitGroup
	errs := make([]error, len(s.cfg.Inputs))
	for i, in := range s.cfg.Inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &writer{s: s, in: in, gate: &memGate{limit: in.MemBufLimit, pause: s.inPause[i]}}
			if err := in.Input.Run(ctx, w); err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("input %s: %w", in.Name, err)
				s.log.Error("input stopped", "input", in.Name, "error", err)
			}
		}()
	}
	wg.Wait()
	stopTick()
	// Bound the wait for PubAcks at shutdown; finishing inputs wait as long as it takes.
	// Armed before sealAll: with FLOE_IN full, the ticker may be blocked
	// handing a chunk to a sender stuck retrying, and only the end of the
	// grace period unblocks them.
	if ctx.Err() != nil {
		t := time.AfterFunc(s.cfg.Grace, cancelDrain)
		defer t.Stop()
	}
	s.sealAll()
	close(s.out)
	pipe.Wait()
	close(s.done)
	return errors.Join(errs...)
}

func (s *Service) ticker(ctx context.Context) {
	t := time.NewTicker(s.cfg.Flush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sealAll()
		}
	}
}

// sealAll closes every open chunk. The caller must not hold s.mu.
func (s *Service) sealAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, oc := range s.open {
		if oc.records > 0 {
			s.sealLocked(oc)
		}
		delete(s.open, t)
	}
}

// sealSource closes the open chunks of one input. The caller must not hold s.mu.
func (s *Service) sealSource(source string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, oc := range s.open {
		if oc.source != source {
			continue
		}
		if oc.records > 0 {
			s.sealLocked(oc)
		}
		delete(s.open, k)
	}
}

// sealLocked hands an open chunk to the sender. It blocks while the sender is
// behind, which is how backpressure reaches the inputs.
func (s *Service) sealLocked(oc *openChunk) {
	id := s.runID + "-" + strconv.FormatUint(s.seq.Add(1), 10)
	c := &chunk.Chunk{ID: id, Tag: oc.tag, Type: chunk.Logs, Records: oc.records, Data: oc.data, Source: oc.source}
	s.stats.Pending.Add(1)
	s.out <- &sealed{c: c, receipts: oc.receipts, pooled: oc.pooled}
	oc.data, oc.records, oc.receipts, oc.pooled = nil, 0, nil, false
}

// grow makes room for n more bytes in oc. A chunk past an eighth of the
// chunk size belongs to a busy tag: it moves into a whole chunk's buffer at
// once (from bufs) rather than doubling toward it; small chunks of quiet tags
// stay small, so many open tags do not each hold a chunk-sized buffer.
func (s *Service) grow(oc *openChunk, n int) {
	need := len(oc.data) + n
	if need <= cap(oc.data) {
		return
	}
	if need <= s.cfg.ChunkSize/8 || need > s.cfg.ChunkSize {
		nb := make([]byte, len(oc.data), max(need, 4096, 2*cap(oc.data)))
		copy(nb, oc.data)
		oc.data = nb
		return
	}
	var nb []byte
	if b, ok := s.bufs.Get(s.cfg.ChunkSize); ok {
		nb = b
	} else {
		nb = make([]byte, 0, s.cfg.ChunkSize)
	}
	oc.data = append(nb, oc.data...)
	oc.pooled = true
}

// recycle gives a stored chunk's buffer back for the next busy chunk.
func (s *Service) recycle(sc *sealed) {
	if !sc.pooled {
		return
	}
	b := sc.c.Data
	sc.c.Data = nil
	sc.pooled = false
	s.bufs.Put(b)
}

// released gives a chunk's buffer back as soon as the chunk is compressed:
// the client sent the compressed copy and a republish sends it again, so a
// busy input need not hold a chunk-sized buffer per publish in flight.
func (s *Service) released(sc *sealed) {
	b := sc.c.Data
	if sc.c.ReleaseData() && sc.pooled {
		sc.pooled = false
		s.bufs.Put(b)
	}
}

type pendingPub struct {
	sc     *sealed
	future jetstream.PubAckFuture
	stored bool // already acknowledged (ordered mode)
}

// send publishes sealed chunks asynchronously, in order.
func (s *Service) send(ctx context.Context, inflight chan<- *pendingPub) {
	defer close(inflight)
	for sc := range s.out {
		f, err := s.js.PublishMsgAsync(chunk.ToMsg(jsx.InSubject(sc.c.Tag), sc.c))
		if err != nil {
			f = nil // confirm republishes synchronously
		}
		s.released(sc)
		p := &pendingPub{sc: sc, future: f}
		if s.cfg.Ordered {
			// One chunk at a time: a failed publish retried later must not
			// land behind the chunks that followed it.
			if f != nil {
				select {
				case <-f.Ok():
				case err = <-f.Err():
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
			if f == nil || err != nil {
				if err == nil {
					err = errors.New("not sent")
				}
				err = s.republish(ctx, sc.c, err)
			}
			p.stored, p.future = err == nil, nil
		}
		inflight <- p
	}
}

// confirm waits for PubAcks in order and resolves receipts, republishing
// (same Msg-Id, so deduplicated) anything that failed.
func (s *Service) confirm(ctx context.Context, inflight <-chan *pendingPub) {
	for p := range inflight {
		var err error
		if p.stored {
			// acknowledged in send (ordered mode)
		} else if p.future == nil {
			err = errors.New("not sent")
		} else {
			select {
			case <-p.future.Ok():
			case err = <-p.future.Err():
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if err != nil && ctx.Err() == nil {
			err = s.republish(ctx, p.sc.c, err)
		}
		if err != nil {
			s.log.Error("chunk not stored", "tag", p.sc.c.Tag, "records", p.sc.c.Records, "error", err)
		} else {
			s.stats.ChunksOut.Add(1)
		}
		for _, r := range p.sc.receipts {
			r.release(err)
		}
		// Stored (or given up on): nothing reads the chunk's bytes any more;
		// the client copied them when it sent them.
		s.recycle(p.sc)
		s.stats.Pending.Add(-1)
	}
}

// republish retries a chunk whose publish failed until it is stored or ctx
// ends. While FLOE_IN is full the inputs are paused; they resume as soon as
// a chunk is stored again.
func (s *Service) republish(ctx context.Context, c *chunk.Chunk, err error) error {
	delay := 50 * time.Millisecond
	for err != nil {
		if jsx.IsStorageFull(err) {
			s.pause(ReasonStorageFull)
		} else if jsx.IsStreamFull(err) {
			s.pause(ReasonStreamFull)
		} else {
			s.log.Debug("publish failed, retrying", "tag", c.Tag, "error", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last publish error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		if delay < 250*time.Millisecond {
			delay *= 2
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = s.js.PublishMsg(pctx, chunk.ToMsg(jsx.InSubject(c.Tag), c))
		cancel()
	}
	s.resume()
	return nil
}

// Why inputs are paused (Paused, the "inputs paused" log line).
const (
	ReasonStreamFull  = "FLOE_IN is at its byte limit"
	ReasonStorageFull = "JetStream storage is full (the server's file-store limit or disk); resuming when outputs free space"
)

// Paused reports why the inputs are paused, or "" when they are not.
func (s *Service) Paused() string {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	return s.pauseReason
}

// pause stops every input's writes (they block in Write) and tells inputs
// that can refuse their clients instead (plugin.Pauser). It logs once per
// pause, not per refused publish.
func (s *Service) pause(reason string) {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	if s.paused != nil {
		if reason != s.pauseReason {
			// FLOE_IN at its limit, then the whole store: say so once.
			s.pauseReason = reason
			s.logPause("inputs still paused", reason)
			s.stats.StorageFull.Set(b2i(reason == ReasonStorageFull))
		}
		return
	}
	s.paused = make(chan struct{})
	s.pauseReason = reason
	s.pauseWarned = false
	s.logPause("inputs paused", reason)
	s.stats.StorageFull.Set(b2i(reason == ReasonStorageFull))
	for _, ip := range s.inPause {
		ip.setPipeline(true)
	}
}

// pauseLogEvery rate-limits the pause log: under steady backpressure inputs
// pause and resume many times a second, and one line per reason per
// interval says it all (the paused_inputs and storage_full gauges say the rest).
const pauseLogEvery = 10 * time.Second

// logPause logs a pause at warn level once per reason per pauseLogEvery, at
// debug level otherwise. The caller holds gateMu.
func (s *Service) logPause(msg, reason string) {
	now := time.Now()
	if last, ok := s.pauseLogged[reason]; ok && now.Sub(last) < pauseLogEvery {
		s.log.Debug(msg, "reason", reason)
		return
	}
	if s.pauseLogged == nil {
		s.pauseLogged = map[string]time.Time{}
	}
	s.pauseLogged[reason] = now
	s.pauseWarned = true
	s.log.Warn(msg, "reason", reason)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (s *Service) resume() {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	if s.paused == nil {
		return
	}
	close(s.paused)
	s.paused = nil
	if s.pauseWarned {
		s.log.Info("inputs resumed", "paused_for", s.pauseReason)
	} else {
		s.log.Debug("inputs resumed", "paused_for", s.pauseReason)
	}
	s.pauseReason = ""
	s.stats.StorageFull.Set(0)
	for _, ip := range s.inPause {
		ip.setPipeline(false)
	}
}

// inputPause is one input's paused state: paused while the whole pipeline
// is (FLOE_IN or the store full) or while its own mem_buf_limit is reached.
// An input that refuses its clients instead of blocking in Write
// (plugin.Pauser: http and OTLP answer 503 at once, datagram inputs drop
// and count) is told once per change, so the two causes overlapping do not
// resume it while one still holds. paused_inputs counts inputs paused for
// either cause, Pausers or not (the others block in Write).
type inputPause struct {
	name  string
	p     plugin.Pauser // nil: the input only blocks in Write
	stats *telemetry.StageMetrics
	log   *slog.Logger

	mu       sync.Mutex
	pipeline bool // FLOE_IN or storage full
	mem      bool // mem_buf_limit reached
}

func (ip *inputPause) setPipeline(on bool) { ip.set(func() { ip.pipeline = on }) }
func (ip *inputPause) setMem(on bool)      { ip.set(func() { ip.mem = on }) }

func (ip *inputPause) set(change func()) {
	if ip == nil {
		return
	}
	ip.mu.Lock()
	defer ip.mu.Unlock()
	was := ip.pipeline || ip.mem
	change()
	now := ip.pipeline || ip.mem
	if was == now {
		return
	}
	if now {
		ip.stats.Paused.Add(1)
		if ip.mem && !ip.pipeline {
			// Fluent Bit: "paused (mem buf overlimit)". Under steady load
			// this flips many times a second, hence debug level; the
			// paused_inputs gauge shows it.
			ip.log.Debug("input paused: mem_buf_limit reached", "input", ip.name)
		}
		if ip.p != nil {
			ip.p.Pause()
		}
		return
	}
	ip.stats.Paused.Add(-1)
	if ip.p != nil {
		ip.p.Resume()
	}
}

// waitOpen blocks while the inputs are paused.
func (s *Service) waitOpen(ctx context.Context) error {
	s.gateMu.Lock()
	ch := s.paused
	s.gateMu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer is the plugin.Writer an input writes through.
type writer struct {
	s    *Service
	in   Input
	gate *memGate
}

func (w *writer) Write(ctx context.Context, t string, data []byte, records int) (plugin.Receipt, error) {
	if err := w.s.waitOpen(ctx); err != nil {
		return nil, err
	}
	if err := w.gate.acquire(ctx, len(data)); err != nil {
		return nil, err
	}
	if t == "" {
		t = w.in.Tag
	}
	if w.in.Metrics != nil {
		w.in.Metrics.Records.Add(uint64(records))
		w.in.Metrics.Bytes.Add(uint64(len(data)))
	}
	w.s.stats.RecordsIn.Add(uint64(records))
	r, err := w.s.append(ctx, w.in.Name, t, data, records)
	if err != nil {
		w.gate.release(len(data))
		return nil, err
	}
	n := len(data)
	r.onDone(func() { w.gate.release(n) })
	return r, nil
}

// WriteSignal takes one metrics or traces payload (OTLP protobuf) as a chunk
// of its own: such payloads are not concatenations of events, so they are
// never merged or split. Logs go through Write.
func (w *writer) WriteSignal(ctx context.Context, signal, t string, data []byte, records int) (plugin.Receipt, error) {
	if signal == "" || signal == chunk.Logs {
		return w.Write(ctx, t, data, records)
	}
	if err := w.s.waitOpen(ctx); err != nil {
		return nil, err
	}
	if t == "" {
		t = w.in.Tag
	}
	if w.in.Metrics != nil {
		w.in.Metrics.Records.Add(uint64(records))
		w.in.Metrics.Bytes.Add(uint64(len(data)))
	}
	if w.s.cfg.MaxPayload > 0 && len(data) > w.s.cfg.MaxPayload-4096 {
		return nil, fmt.Errorf("%s payload of %d bytes exceeds the message limit", signal, len(data))
	}
	// mem_buf_limit counts every byte the input has in flight, whatever
	// the signal.
	if err := w.gate.acquire(ctx, len(data)); err != nil {
		return nil, err
	}
	r := newReceipt()
	r.hold()
	w.s.mu.Lock()
	id := w.s.runID + "-" + strconv.FormatUint(w.s.seq.Add(1), 10)
	c := &chunk.Chunk{ID: id, Tag: t, Type: signal, Records: records, Data: data, Source: w.in.Name}
	w.s.stats.Pending.Add(1)
	w.s.out <- &sealed{c: c, receipts: []*Receipt{r}}
	w.s.mu.Unlock()
	n := len(data)
	r.onDone(func() { w.gate.release(n) })
	r.release(nil)
	return r, nil
}

// memGate is an input's mem_buf_limit: Write blocks while the bytes written
// but not yet stored reach the limit (one write may exceed it, as in Fluent
// Bit). A zero limit never blocks. The gate closing pauses its input (the
// input's Pauser, if any, is told at once, so it refuses clients instead of
// holding them in Write) and opening resumes it.
type memGate struct {
	limit int64
	pause *inputPause // nil in tests of the gate alone
	mu    sync.Mutex
	used  int64
	wake  chan struct{}
}

func (g *memGate) acquire(ctx context.Context, n int) error {
	if g == nil || g.limit <= 0 {
		return nil
	}
	for {
		g.mu.Lock()
		if g.used < g.limit {
			g.used += int64(n)
			if g.used >= g.limit {
				// Told under g.mu, so a release racing this cannot
				// resume before the pause lands.
				g.pause.setMem(true)
			}
			g.mu.Unlock()
			return nil
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *memGate) release(n int) {
	if g == nil || g.limit <= 0 {
		return
	}
	g.mu.Lock()
	g.used -= int64(n)
	if g.used < g.limit {
		g.pause.setMem(false)
		if g.wake != nil {
			close(g.wake)
			g.wake = nil
		}
	}
	g.mu.Unlock()
}

// append adds encoded events for tag to its open chunk, splitting at event
// boundaries when they do not fit.
func (s *Service) append(ctx context.Context, source, t string, data []byte, records int) (*Receipt, error) {
	r := newReceipt()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Chunks are per input and tag, as Fluent Bit's, so a chunk knows its source.
	key := source + "\x00" + t
	oc := s.open[key]
	if oc == nil {
		oc = &openChunk{tag: t, source: source}
		s.open[key] = oc
	}
	add := func(part []byte, n int) {
		if len(oc.data)+len(part) > s.cfg.ChunkSize && oc.records > 0 {
			s.sealLocked(oc)
		}
		s.grow(oc, len(part))
		oc.data = append(oc.data, part...)
		oc.records += n
		if len(oc.receipts) == 0 || oc.receipts[len(oc.receipts)-1] != r {
			r.hold()
			oc.receipts = append(oc.receipts, r)
		}
	}
	if len(data) <= s.cfg.ChunkSize {
		add(data, records)
	} else {
		// Split a large write into chunk-sized runs of whole events.
		it := event.NewIter(data)
		start, n := 0, 0
		for it.Next() {
			ev := it.Event()
			if len(ev.Raw) > s.cfg.ChunkSize {
				r.release(nil)
				return nil, fmt.Errorf("event at byte offset %d is %d bytes, larger than the chunk limit %d", ev.Offset, len(ev.Raw), s.cfg.ChunkSize)
			}
			if ev.Offset+len(ev.Raw)-start > s.cfg.ChunkSize {
				add(data[start:ev.Offset], n)
				start, n = ev.Offset, 0
			}
			n++
		}
		if err := it.Err(); err != nil {
			r.release(nil)
			return nil, fmt.Errorf("write %s: %w", t, err)
		}
		if n > 0 {
			add(data[start:], n)
		}
	}
	if len(oc.data) >= s.cfg.ChunkSize {
		s.sealLocked(oc)
	}
	r.release(nil) // drop the writer's own hold
	return r, nil
}

// Receipt resolves when every chunk holding a write's events is stored.
type Receipt struct {
	pending atomic.Int32
	done    chan struct{}
	mu      sync.Mutex
	err     error
	after   []func()
}

// onDone runs f when the receipt resolves (at once if it has).
func (r *Receipt) onDone(f func()) {
	r.mu.Lock()
	select {
	case <-r.done:
		r.mu.Unlock()
		f()
		return
	default:
	}
	r.after = append(r.after, f)
	r.mu.Unlock()
}

func newReceipt() *Receipt {
	r := &Receipt{done: make(chan struct{})}
	r.pending.Store(1)
	return r
}

func (r *Receipt) hold() { r.pending.Add(1) }

func (r *Receipt) release(err error) {
	if err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	if r.pending.Add(-1) == 0 {
		r.mu.Lock()
		close(r.done)
		after := r.after
		r.after = nil
		r.mu.Unlock()
		for _, f := range after {
			f()
		}
	}
}

// Done is closed when the events are stored (or failed for good).
func (r *Receipt) Done() <-chan struct{} { return r.done }

// Err is the storing error, if any; valid after Done.
func (r *Receipt) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

var _ plugin.Writer = (*writer)(nil)

// Flush closes this input's open chunks now (plugin.Flusher): an input
// asks for it when a caller waits for its events to be stored (a forward
// ack, an HTTP or OTLP answer). Other inputs' chunks stay open and keep
// filling to their size or the flush interval, instead of being cut small
// by every request of a busy network input.
func (w *writer) Flush() { w.s.sealSource(w.in.Name) }

var _ plugin.Flusher = (*writer)(nil)

// WriteChunk stores data as chunks of its own with ids the input chose
// (plugin.ChunkWriter): id for the first, id/1, id/2 … when data is larger
// than a chunk, cut at the same event boundaries every time for the same
// data, so a re-read republished after a restart carries the same
// Nats-Msg-Ids and JetStream drops the copies.
func (w *writer) WriteChunk(ctx context.Context, id, t string, data []byte, records int) (plugin.Receipt, error) {
	if id == "" {
		return w.Write(ctx, t, data, records)
	}
	if err := w.s.waitOpen(ctx); err != nil {
		return nil, err
	}
	if err := w.gate.acquire(ctx, len(data)); err != nil {
		return nil, err
	}
	if t == "" {
		t = w.in.Tag
	}
	type part struct {
		data []byte
		n    int
	}
	var parts []part
	if len(data) <= w.s.cfg.ChunkSize {
		parts = append(parts, part{data, records})
	} else {
		it := event.NewIter(data)
		start, n := 0, 0
		for it.Next() {
			ev := it.Event()
			if len(ev.Raw) > w.s.cfg.ChunkSize {
				w.gate.release(len(data))
				return nil, fmt.Errorf("event at byte offset %d is %d bytes, larger than the chunk limit %d", ev.Offset, len(ev.Raw), w.s.cfg.ChunkSize)
			}
			if ev.Offset+len(ev.Raw)-start > w.s.cfg.ChunkSize {
				parts = append(parts, part{data[start:ev.Offset], n})
				start, n = ev.Offset, 0
			}
			n++
		}
		if err := it.Err(); err != nil {
			w.gate.release(len(data))
			return nil, fmt.Errorf("write %s: %w", t, err)
		}
		if n > 0 {
			parts = append(parts, part{data[start:], n})
		}
	}
	if w.in.Metrics != nil {
		w.in.Metrics.Records.Add(uint64(records))
		w.in.Metrics.Bytes.Add(uint64(len(data)))
	}
	w.s.stats.RecordsIn.Add(uint64(records))
	r := newReceipt()
	w.s.mu.Lock()
	if ctx.Err() != nil {
		w.s.mu.Unlock()
		w.gate.release(len(data))
		return nil, ctx.Err()
	}
	// A chunk that is the whole buffer goes back to bufs once stored: the
	// writer owns it (ChunkWriter). Parts share one, which is left to the GC.
	pooled := len(parts) == 1 && cap(data) >= w.s.cfg.ChunkSize
	for i, p := range parts {
		cid := id
		if i > 0 {
			cid = id + "/" + strconv.Itoa(i)
		}
		r.hold()
		c := &chunk.Chunk{ID: cid, Tag: t, Type: chunk.Logs, Records: p.n, Data: p.data, Source: w.in.Name}
		w.s.stats.Pending.Add(1) // the sender takes one off per chunk it is done with
		w.s.out <- &sealed{c: c, receipts: []*Receipt{r}, pooled: pooled}
	}
	w.s.mu.Unlock()
	n := len(data)
	r.onDone(func() { w.gate.release(n) })
	r.release(nil)
	return r, nil
}

// ChunkBuffer lends a buffer of a stored chunk when one is at hand and
// large enough.
func (w *writer) ChunkBuffer(n int) []byte {
	if b, ok := w.s.bufs.Get(n); ok {
		return b
	}
	return make([]byte, 0, max(n, w.s.cfg.ChunkSize))
}

var _ plugin.ChunkWriter = (*writer)(nil)
