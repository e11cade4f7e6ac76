// Package output delivers chunks from each output's stream to its sink. A
// chunk is acknowledged only after the sink answered OK; RETRY waits with
// Fluent Bit's full-jitter backoff up to retry_limit, and ERROR or exhausted
// retries set the chunk aside as a dead letter.
//
// Dead letters also count in floe_dropped_records_total{stage="output",
// plugin=<output>}: reason "malformed_chunk" when the chunk's MessagePack
// does not decode, "dead_letter" otherwise (ERROR, retries exhausted).
package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/bufpool"
	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

// Output is one configured output instance.
type Output struct {
	Name       string // display name
	ID         string // jsx.OutputID
	Output     plugin.Output
	Workers    int
	RetryLimit int // negative = no limit
	Metrics    *telemetry.OutputMetrics
}

// Config configures the output stage.
type Config struct {
	Outputs       []Output
	SchedulerBase time.Duration // default 5s
	SchedulerCap  time.Duration // default 2000s
	Logger        *slog.Logger
	Metrics       *telemetry.StageMetrics
	Ordered       bool // [SERVICE] ordering per_tag
	// AckWait is how long a held chunk stays unacknowledged before JetStream
	// redelivers it ([SERVICE] nats.ack_wait); 0 = jsx default.
	AckWait time.Duration
}

// Service is the output stage.
type Service struct {
	cfg  Config
	js   jetstream.JetStream
	bufs bufpool.Pool // decompression buffers lent to DataBorrower outputs
}

// New builds the stage.
func New(js jetstream.JetStream, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = &telemetry.StageMetrics{}
	}
	if cfg.SchedulerBase <= 0 {
		cfg.SchedulerBase = 5 * time.Second
	}
	if cfg.SchedulerCap <= 0 {
		cfg.SchedulerCap = 2000 * time.Second
	}
	// One buffer per flush that can run at once is all reuse needs.
	n := 0
	for _, o := range cfg.Outputs {
		n += max(o.Workers, 1)
	}
	return &Service{cfg: cfg, js: js, bufs: bufpool.New(n)}
}

// Run consumes every output's stream until ctx ends.
func (s *Service) Run(ctx, work context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(s.cfg.Outputs))
	for i := range s.cfg.Outputs {
		o := &s.cfg.Outputs[i]
		if o.Metrics == nil {
			o.Metrics = &telemetry.OutputMetrics{}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = jsx.Consume(ctx, work, s.js, jsx.ConsumeOptions{
				Stream:     jsx.OutputStreamName(o.ID),
				Durable:    jsx.DurableOutput,
				Workers:    o.Workers,
				RetryLimit: o.RetryLimit,
				Backoff:    jsx.FullJitter(s.cfg.SchedulerBase, s.cfg.SchedulerCap),
				Stage:      o.ID,
				Logger:     s.cfg.Logger.With("output", o.Name),
				Ordered:    s.cfg.Ordered,
				AckWait:    s.cfg.AckWait,
				OnDeadLetter: func(m jetstream.Msg, reason error) {
					o.Metrics.DeadLetters.Add(1)
					c, _ := chunk.FromHeaders(m.Headers(), m.Data(), nil)
					o.Metrics.DroppedRecords.Add(uint64(c.Records))
					s.cfg.Metrics.DeadLetters.Add(1)
					// Logged by the dead-letter hop, one line per chunk; counted here.
					s.cfg.Metrics.Dropped(o.Name, telemetry.DeadLetterReason(reason)).Add(uint64(telemetry.ChunkRecords(c)))
				},
				OnRetry: func(m jetstream.Msg, _ int, _ time.Duration) {
					o.Metrics.Retries.Add(1)
					o.Metrics.RetriedRecords.Add(uint64(chunk.RecordsOf(m.Headers())))
				},
			}, func(ctx context.Context, m jetstream.Msg) error { return s.flush(ctx, o, m) })
		}()
	}
	wg.Wait()
	cctx, cancel := context.WithTimeout(work, 10*time.Second)
	defer cancel()
	for _, o := range s.cfg.Outputs {
		if err := plugin.Close(cctx, o.Output); err != nil {
			errs = append(errs, fmt.Errorf("close output %s: %w", o.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) flush(ctx context.Context, o *Output, m jetstream.Msg) error {
	// An output that keeps nothing once Flush returns gets the chunk
	// decompressed into a reused buffer: a fresh 480 KiB one per chunk was
	// the output stage's largest allocation. Only buffers decompressed into
	// go back; an uncompressed chunk's data is the message's own.
	var buf []byte
	_, borrows := o.Output.(plugin.DataBorrower)
	borrows = borrows && m.Headers().Get(chunk.HeaderEncoding) == chunk.EncodingS2
	if borrows {
		buf, _ = s.bufs.Get(0)
	}
	c, err := chunk.FromHeadersInto(m.Headers(), m.Data(), buf, nil)
	if err != nil {
		if borrows {
			s.bufs.Put(buf)
		}
		return plugin.Permanent(err)
	}
	if borrows {
		defer func() {
			if cap(c.Data) <= 2<<20 {
				s.bufs.Put(c.Data)
			}
		}()
	}
	s.cfg.Metrics.ChunksIn.Add(1)
	s.cfg.Metrics.RecordsIn.Add(uint64(c.Records))
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		s.cfg.Metrics.Redeliveries.Add(1)
	}
	err = o.Output.Flush(ctx, c)
	if err == nil {
		o.Metrics.ProcRecords.Add(uint64(c.Records))
		o.Metrics.ProcBytes.Add(uint64(len(c.Data)))
		return nil
	}
	o.Metrics.Errors.Add(1)
	var de *event.DecodeError
	if errors.As(err, &de) {
		return plugin.Permanent(err)
	}
	if md, merr := m.Metadata(); merr == nil && !plugin.IsPermanent(err) &&
		o.RetryLimit >= 0 && int(md.NumDelivered) > o.RetryLimit {
		o.Metrics.RetriesFailed.Add(1)
	}
	return err
}
