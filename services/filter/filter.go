// Package filter runs the filter chains: it consumes FLOE_IN, applies every
// [FILTER] whose Match matches the chunk's tag in configuration order, and
// publishes the result to FLOE_FILTERED. Replicas share one durable
// consumer, so filters scale by starting more processes.
package filter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

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
}

// Service is the filter stage.
type Service struct {
	cfg Config
	js  jetstream.JetStream
	pub *jsx.Publisher
}

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
	return &Service{cfg: cfg, js: js, pub: pub}
}

// Run consumes until ctx ends; work bounds chunks already being processed.
func (s *Service) Run(ctx, work context.Context) error {
	return jsx.Consume(ctx, work, s.js, jsx.ConsumeOptions{
		Stream:     jsx.StreamIn,
		Durable:    jsx.DurableFilter,
		Workers:    s.cfg.Workers,
		RetryLimit: -1,
		Stage:      "filter",
		Logger:     s.cfg.Logger,
		Ordered:    s.cfg.Ordered,
		OnDeadLetter: func(jetstream.Msg, error) {
			s.cfg.Metrics.DeadLetters.Add(1)
		},
	}, s.handle)
}

func (s *Service) handle(ctx context.Context, m jetstream.Msg) error {
	c := chunk.FromHeaders(m.Headers(), m.Data(), nil)
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
	out, err := s.Apply(ctx, c)
	if err != nil {
		var de *event.DecodeError
		if errors.As(err, &de) {
			return plugin.Permanent(err)
		}
		return err
	}
	items := make([]jsx.Pending, len(out))
	for i, oc := range out {
		// Derived from the input's id, so a redelivered chunk republishes
		// with the same ids and the server drops the copies.
		oc.ID = c.ID + ".f" + strconv.Itoa(i)
		if oc.Source == "" {
			oc.Source = c.Source
		}
		items[i] = jsx.Pending{Subject: jsx.FilteredSubject(oc.Tag), Chunk: oc}
	}
	if err := s.pub.PublishAll(ctx, items); err != nil {
		return fmt.Errorf("publish filtered chunk of %s: %w", c.Tag, err)
	}
	s.cfg.Metrics.ChunksOut.Add(uint64(len(out)))
	return nil
}

// Apply runs the chain over one chunk. A chunk no filter matches is returned
// as is, without being decoded.
func (s *Service) Apply(ctx context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	cur := []*chunk.Chunk{c}
	for i := range s.cfg.Filters {
		f := &s.cfg.Filters[i]
		var next []*chunk.Chunk
		for _, in := range cur {
			// Filters process logs; metrics and traces (OTLP) pass through.
			if in.Signal() != chunk.Logs || !f.Matcher.Match(in.Tag) {
				next = append(next, in)
				continue
			}
			res, err := f.Filter.FilterChunk(ctx, in)
			if err != nil {
				if f.Metrics != nil {
					f.Metrics.Errors.Add(1)
				}
				return nil, fmt.Errorf("filter %s on tag %s: %w", f.Name, in.Tag, err)
			}
			if f.Metrics != nil {
				account(f.Metrics, in, res)
			}
			next = append(next, res...)
		}
		cur = next
		if len(cur) == 0 {
			break
		}
	}
	return cur, nil
}

// account records a filter's effect as Fluent Bit's filter metrics do.
func account(m *telemetry.FilterMetrics, in *chunk.Chunk, out []*chunk.Chunk) {
	inRecords := in.Records
	if inRecords == 0 {
		inRecords, _ = event.Count(in.Data)
	}
	m.Records.Add(uint64(inRecords))
	m.Bytes.Add(uint64(len(in.Data)))
	outRecords, outBytes := 0, 0
	for _, oc := range out {
		outRecords += oc.Records
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
