// Package filter runs the filter chains: it consumes FLOE_IN, applies every
// [FILTER] whose Match matches the chunk's tag in configuration order, and
// publishes the result to FLOE_FILTERED. Replicas share one durable
// consumer, so filters scale by starting more processes.
//
// Records a filter does not pass on are counted in
// floe_dropped_records_total{stage="filter",plugin=<filter>}: reason
// "filtered" for the filter doing its job (grep, a WASM function returning
// NULL; logged at debug level only), "filter_error" for records the filter
// noted it dropped because it failed on them (a WASM call that trapped with
// on_error drop; logged at warning level, rate-limited). A chunk that cannot
// be decoded is set aside on the dead-letter stream and counted as
// "malformed_chunk" (other dead letters as "dead_letter"); the dead-letter
// hop logs each one.
package filter

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

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/tag"
	"github.com/floe-io/floe/internal/telemetry"
)

// Filter is one configured filter instance.
type Filter struct {
	Name    string
	Matcher *tag.Matcher
	Filter  plugin.Filter
	Metrics *telemetry.FilterMetrics
}

// Config configures the filter stage.
type Config struct {
	Filters []Filter
	Workers int
	Logger  *slog.Logger
	Metrics *telemetry.StageMetrics
	Ordered bool // [SERVICE] ordering per_tag
	// AckWait is how long a held chunk stays unacknowledged before JetStream
	// redelivers it ([SERVICE] nats.ack_wait); 0 = jsx default.
	AckWait time.Duration
	// Forward, when set, takes the filtered chunks straight to the output
	// streams instead of through FLOE_FILTERED: the router of the same
	// process ([SERVICE] fuse, on by default when filter and router share a
	// process). A FLOE_IN message is still acknowledged only once every copy
	// is stored, and the copies' ids derive from the message's as they would
	// through the router, so a redelivery republishes the same ids.
	Forward Forwarder
}

// Forwarder routes filtered chunks in the process (a router.Service).
type Forwarder interface {
	// Fanout is the copies of c to publish, each with an id derived from
	// c's; none when no output takes c.
	Fanout(c *chunk.Chunk) []jsx.Pending
	// Count records c as routed once its published copies are stored.
	Count(c *chunk.Chunk, published int)
}

// Service is the filter stage.
type Service struct {
	cfg      Config
	js       jetstream.JetStream
	pub      *jsx.Publisher
	drops    []filterDrops // parallel to cfg.Filters
	notes    sync.Pool     // *telemetry.DropNotes
	token    string        // this process's part of the ids of flushed chunks
	flushSeq atomic.Uint64
}

// filterDrops are one filter's drop sites.
type filterDrops struct {
	filtered, failed *telemetry.Dropper
}

// filterError is a filter's failure on a chunk; it names the filter so a
// dead letter is counted against it.
type filterError struct {
	name, tag string
	err       error
}

func (e *filterError) Error() string {
	return fmt.Sprintf("filter %s on tag %s: %v", e.name, e.tag, e.err)
}
func (e *filterError) Unwrap() error { return e.err }

// New builds the stage.
func New(js jetstream.JetStream, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = &telemetry.StageMetrics{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	pub := jsx.NewPublisher(js)
	pub.OnDuplicate = func() { cfg.Metrics.Duplicates.Add(1) }
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	s := &Service{cfg: cfg, js: js, pub: pub, token: hex.EncodeToString(tok[:])}
	s.notes.New = func() any { return new(telemetry.DropNotes) }
	for _, f := range cfg.Filters {
		log := cfg.Logger.With("filter", f.Name)
		s.drops = append(s.drops, filterDrops{
			filtered: cfg.Metrics.Dropper(log, f.Name, telemetry.DropFiltered, "records filtered out", slog.LevelDebug),
			failed:   cfg.Metrics.Dropper(log, f.Name, telemetry.DropFilterError, "records dropped by a failing filter", slog.LevelWarn),
		})
	}
	return s
}

// Run consumes until ctx ends; work bounds chunks already being processed.
// When Run returns after its in-flight chunks finished, it has closed every
// filter that implements plugin.Closer: a Service runs once, and a reload
// builds a new one with new filter instances.
func (s *Service) Run(ctx, work context.Context) error {
	defer func() {
		for _, d := range s.drops {
			d.filtered.Flush()
			d.failed.Flush()
		}
	}()
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); s.flushLoop(ctx) }()
	defer func() {
		<-loopDone
		// Consumption has stopped: pass on what filters still hold.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(work), 10*time.Second)
		defer cancel()
		s.flushPending(fctx, time.Now(), true)
		// Nothing is in flight any more (Consume waits for its handlers and
		// the last flush has run): release what the filters hold (Lua
		// states, WASM instance pools, tickers). A reload builds new
		// instances, so each is closed once, here.
		s.closeFilters(fctx)
	}()
	return jsx.Consume(ctx, work, s.js, jsx.ConsumeOptions{
		Stream:     jsx.StreamIn,
		Durable:    jsx.DurableFilter,
		Workers:    s.cfg.Workers,
		RetryLimit: -1,
		Stage:      "filter",
		Logger:     s.cfg.Logger,
		Ordered:    s.cfg.Ordered,
		AckWait:    s.cfg.AckWait,
		OnDeadLetter: func(m jetstream.Msg, reason error) {
			s.cfg.Metrics.DeadLetters.Add(1)
			// Logged by the dead-letter hop, one line per chunk; counted here.
			plugin := ""
			if fe := (*filterError)(nil); errors.As(reason, &fe) {
				plugin = fe.name
			}
			c, _ := chunk.FromHeaders(m.Headers(), m.Data(), nil)
			s.cfg.Metrics.Dropped(plugin, telemetry.DeadLetterReason(reason)).Add(uint64(telemetry.ChunkRecords(c)))
		},
	}, s.handle)
}

func (s *Service) handle(ctx context.Context, m jetstream.Msg) error {
	// Decompressed only when a filter reads it (applyFrom): a chunk no
	// filter matches goes on in the bytes it came in.
	c, err := chunk.FromHeadersLazy(m.Headers(), m.Data(), nil)
	if err != nil {
		return plugin.Permanent(err)
	}
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		s.cfg.Metrics.Redeliveries.Add(1)
	}
	if c.ID == "" {
		if md, err := m.Metadata(); err == nil {
			c.ID = "in:" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
	}
	s.cfg.Metrics.ChunksIn.Add(1)
	s.cfg.Metrics.RecordsIn.Add(uint64(c.Records))
	out, again, err := s.Apply(ctx, c)
	if err != nil {
		var de *event.DecodeError
		if errors.As(err, &de) {
			return plugin.Permanent(err)
		}
		return err
	}
	items := make([]jsx.Pending, 0, len(out)+len(again))
	var fanned []int // with Forward: how many copies each chunk of out became
	for i, oc := range out {
		// Derived from the input's id, so a redelivered chunk republishes
		// with the same ids and the server drops the copies.
		oc.ID = c.ID + ".f" + strconv.Itoa(i)
		if oc.Source == "" {
			oc.Source = c.Source
		}
		items, fanned = s.next(items, fanned, oc)
	}
	for i, oc := range again {
		oc.ID = c.ID + ".e" + strconv.Itoa(i)
		items = append(items, jsx.Pending{Subject: jsx.InSubject(oc.Tag), Chunk: oc})
	}
	if err := s.publish(ctx, items); err != nil {
		return fmt.Errorf("publish filtered chunk of %s: %w", c.Tag, err)
	}
	s.forwarded(out, fanned)
	s.cfg.Metrics.ChunksOut.Add(uint64(len(out)))
	return nil
}

// closeFilters closes every filter that holds resources. A filter that
// fails to close is logged, not fatal: its records were all passed on, and
// a failing Close must not stop a reload.
func (s *Service) closeFilters(ctx context.Context) {
	for _, f := range s.cfg.Filters {
		if err := plugin.Close(ctx, f.Filter); err != nil {
			s.cfg.Logger.Warn("closing filter failed", "filter", f.Name, "error", err)
		}
	}
}

// next appends what a filtered chunk becomes: one message on FLOE_FILTERED,
// or with Forward its copies for the output streams.
func (s *Service) next(items []jsx.Pending, fanned []int, oc *chunk.Chunk) ([]jsx.Pending, []int) {
	if s.cfg.Forward == nil {
		return append(items, jsx.Pending{Subject: jsx.FilteredSubject(oc.Tag), Chunk: oc}), fanned
	}
	copies := s.cfg.Forward.Fanout(oc)
	return append(items, copies...), append(fanned, len(copies))
}

// publish stores items; none is nothing to wait for (every chunk filtered
// out, or, fused, unmatched).
func (s *Service) publish(ctx context.Context, items []jsx.Pending) error {
	if len(items) == 0 {
		return nil
	}
	return s.pub.PublishAll(ctx, items)
}

// forwarded tells Forward the chunks of out are routed, their copies stored.
func (s *Service) forwarded(out []*chunk.Chunk, fanned []int) {
	if s.cfg.Forward == nil {
		return
	}
	for i, oc := range out {
		s.cfg.Forward.Count(oc, fanned[i])
	}
}

// flushers lists the filters that hold records across chunks.
func (s *Service) flushers() []int {
	var out []int
	for i, f := range s.cfg.Filters {
		if _, ok := f.Filter.(plugin.PendingFlusher); ok {
			out = append(out, i)
		}
	}
	return out
}

// flushLoop asks the filters that hold records for those due, until ctx ends.
func (s *Service) flushLoop(ctx context.Context) {
	fl := s.flushers()
	if len(fl) == 0 {
		return
	}
	every := 500 * time.Millisecond
	for _, i := range fl {
		if iv, ok := s.cfg.Filters[i].Filter.(interface{ FlushInterval() time.Duration }); ok {
			every = min(every, max(iv.FlushInterval(), 20*time.Millisecond))
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.flushPending(ctx, now, false)
		}
	}
}

// flushPending runs what filters release (all of it when all is set)
// through the filters after them and publishes the result. Each chunk gets
// an id of its own: it derives from no input chunk.
func (s *Service) flushPending(ctx context.Context, now time.Time, all bool) {
	for _, i := range s.flushers() {
		f := &s.cfg.Filters[i]
		held := f.Filter.(plugin.PendingFlusher).FlushPending(ctx, now, all)
		if len(held) == 0 {
			continue
		}
		n := 0
		for _, c := range held {
			if c.Signal() == chunk.Logs {
				n += c.Records // held records, not metrics derived from them
			}
		}
		if f.Metrics != nil {
			// Fluent Bit counts these as its emitter's records; they were
			// counted as dropped when the filter held them.
			f.Metrics.AddRecords.Add(uint64(n))
		}
		out, again, err := s.applyFrom(ctx, held, i+1)
		if err == nil {
			var items []jsx.Pending
			var fanned []int
			id := func() string { return "flush:" + s.token + ":" + strconv.FormatUint(s.flushSeq.Add(1), 10) }
			for _, oc := range out {
				oc.ID = id()
				items, fanned = s.next(items, fanned, oc)
			}
			for _, oc := range again {
				oc.ID = id()
				items = append(items, jsx.Pending{Subject: jsx.InSubject(oc.Tag), Chunk: oc})
			}
			if err = s.publish(ctx, items); err == nil {
				s.forwarded(out, fanned)
			}
		}
		if err != nil {
			s.cfg.Logger.Error("records held by a filter are lost", "filter", f.Name, "records", n, "error", err)
			s.drops[i].failed.Drop(n, "tag", held[0].Tag)
		}
	}
}

// MaxEmits bounds how many times records may be re-emitted under a new tag
// (rewrite_tag filters bouncing records between each other); beyond it they
// are dropped and counted as filter errors.
const MaxEmits = 8

// Apply runs the chain over one chunk. A chunk no filter matches is returned
// as is, without being decoded. again holds the chunks filters re-emitted
// under new tags (rewrite_tag): they re-enter the filter stage through
// FLOE_IN, where they pass every filter their new tag matches except the
// one whose emitter they come from.
func (s *Service) Apply(ctx context.Context, c *chunk.Chunk) (out, again []*chunk.Chunk, err error) {
	return s.applyFrom(ctx, []*chunk.Chunk{c}, 0)
}

// emitterName is the source of the chunks filter f re-emits.
func emitterName(f *Filter) string {
	if e, ok := f.Filter.(plugin.Emitter); ok {
		return e.EmitterName()
	}
	return "emitter_for_" + f.Name
}

// applyFrom runs the filters from index first on over chunks.
func (s *Service) applyFrom(ctx context.Context, cur []*chunk.Chunk, first int) (_, again []*chunk.Chunk, _ error) {
	notes := s.notes.Get().(*telemetry.DropNotes)
	defer s.notes.Put(notes)
	nctx := telemetry.WithDropNotes(ctx, notes)
	for i := first; i < len(s.cfg.Filters); i++ {
		f := &s.cfg.Filters[i]
		var next []*chunk.Chunk
		for _, in := range cur {
			// Filters process logs; metrics and traces (OTLP) pass through,
			// and so do the records a filter's own emitter re-emitted.
			if in.Signal() != chunk.Logs || !f.Matcher.Match(in.Tag) ||
				(in.Emits > 0 && in.Source == emitterName(f)) {
				next = append(next, in)
				continue
			}
			if err := in.Load(); err != nil {
				return nil, nil, plugin.Permanent(err)
			}
			notes.Reset()
			res, err := f.Filter.FilterChunk(nctx, in)
			for _, oc := range res {
				// A filter may hand back its input, even changed in place:
				// what it returns is compressed afresh when published.
				oc.ForgetWire()
			}
			if err != nil {
				if f.Metrics != nil {
					f.Metrics.Errors.Add(1)
				}
				return nil, nil, &filterError{name: f.Name, tag: in.Tag, err: err}
			}
			// A chunk under another tag leaves the chain here and starts
			// over under its new tag.
			kept := res[:0:0]
			emitted := 0
			for _, oc := range res {
				if oc.Tag == in.Tag {
					// Chunks a filter rebuilt keep the provenance the loop
					// guard and the emitter rule need.
					if oc != in {
						oc.Emits = max(oc.Emits, in.Emits)
						if oc.Source == "" {
							oc.Source = in.Source
						}
					}
					kept = append(kept, oc)
					continue
				}
				if oc.Signal() == chunk.Logs {
					// Metrics a filter derives from records (log_to_metrics)
					// are not those records leaving under a new tag.
					emitted += oc.Records
				}
				oc.Source = emitterName(f)
				oc.Emits = in.Emits + 1
				if oc.Emits > MaxEmits {
					s.cfg.Logger.Warn("records re-emitted too many times under new tags are dropped; do rewrite_tag rules send them back and forth?",
						"filter", f.Name, "tag", oc.Tag, "records", oc.Records, "emits", oc.Emits)
					if i < len(s.drops) {
						s.drops[i].failed.Drop(oc.Records, "tag", oc.Tag)
					}
					continue
				}
				again = append(again, oc)
			}
			inRecords, outRecords := count(in, kept)
			if f.Metrics != nil {
				// As Fluent Bit: records that leave under a new tag are the
				// filter's drop_records, and its emitter's records.
				account(f.Metrics, in, kept, inRecords, outRecords)
			}
			if dropped := inRecords - outRecords - emitted; dropped > 0 && i < len(s.drops) {
				failed := min(notes.Take(telemetry.DropFilterError), dropped)
				s.drops[i].failed.Drop(failed, "tag", in.Tag)
				s.drops[i].filtered.Drop(dropped-failed, "tag", in.Tag)
			}
			next = append(next, kept...)
		}
		cur = next
		if len(cur) == 0 {
			break
		}
	}
	return cur, again, nil
}

// count is the records a filter was given and gave back.
func count(in *chunk.Chunk, out []*chunk.Chunk) (inRecords, outRecords int) {
	inRecords = in.Records
	if inRecords == 0 {
		inRecords, _ = event.Count(in.Data)
	}
	for _, oc := range out {
		outRecords += oc.Records
	}
	return inRecords, outRecords
}

// account records a filter's effect as Fluent Bit's filter metrics do.
func account(m *telemetry.FilterMetrics, in *chunk.Chunk, out []*chunk.Chunk, inRecords, outRecords int) {
	m.Records.Add(uint64(inRecords))
	m.Bytes.Add(uint64(len(in.Data)))
	outBytes := 0
	for _, oc := range out {
		outBytes += len(oc.Data)
	}
	switch {
	case outRecords < inRecords:
		m.DropRecords.Add(uint64(inRecords - outRecords))
	case outRecords > inRecords:
		m.AddRecords.Add(uint64(outRecords - inRecords))
	}
	if outBytes < len(in.Data) && outRecords < inRecords {
		m.DropBytes.Add(uint64(len(in.Data) - outBytes))
	}
}
