// Package router consumes FLOE_FILTERED and publishes one copy of each chunk
// to the stream of every output whose Match or Match_Regex accepts its tag.
//
// A chunk no output accepts is dropped, as in Fluent Bit, but not silently:
// its records count in floe_dropped_records_total{stage="router",
// reason="unmatched"} and it is logged at warning level with its tag (the
// first of a burst at once, then a summary every 10 s). To drop a tag on
// purpose, route it to a null output.
package router

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/tag"
	"github.com/floe-io/floe/internal/telemetry"
)

// Route is one output the router can send to.
type Route struct {
	Name    string // display name, for logs
	ID      string // jsx.OutputID of the instance
	Matcher *tag.Matcher
	Signals map[string]bool // signal types the output takes; nil = all
	Vivo    bool            // a Vivo exporter: publish to its per-signal stream
}

// Config configures the router.
type Config struct {
	Routes  []Route
	Workers int
	Logger  *slog.Logger
	Metrics *telemetry.StageMetrics
	Ordered bool // [SERVICE] ordering per_tag
	// AckWait is how long a held chunk stays unacknowledged before JetStream
	// redelivers it ([SERVICE] nats.ack_wait); 0 = jsx default.
	AckWait time.Duration
}

// Service is the router stage.
type Service struct {
	cfg       Config
	js        jetstream.JetStream
	pub       *jsx.Publisher
	unmatched *telemetry.Dropper
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
	unmatched := cfg.Metrics.Dropper(cfg.Logger, "", telemetry.DropUnmatched,
		"chunk matches no output, dropped", slog.LevelWarn)
	return &Service{cfg: cfg, js: js, pub: pub, unmatched: unmatched}
}

// Run consumes until ctx ends.
func (s *Service) Run(ctx, work context.Context) error {
	defer s.unmatched.Flush()
	return jsx.Consume(ctx, work, s.js, jsx.ConsumeOptions{
		Stream:     jsx.StreamFiltered,
		Durable:    jsx.DurableRouter,
		Workers:    s.cfg.Workers,
		RetryLimit: -1,
		Stage:      "router",
		Logger:     s.cfg.Logger,
		Ordered:    s.cfg.Ordered,
		AckWait:    s.cfg.AckWait,
	}, s.handle)
}

// Targets lists the routes a chunk of tag and signal type goes to.
func (s *Service) Targets(t, signal string) []*Route {
	var out []*Route
	for i := range s.cfg.Routes {
		r := &s.cfg.Routes[i]
		if r.Signals != nil && !r.Signals[signal] {
			continue
		}
		if r.Matcher.Match(t) {
			out = append(out, r)
		}
	}
	return out
}

func (s *Service) handle(ctx context.Context, m jetstream.Msg) error {
	// The router reads headers only: the data goes on in the bytes it came
	// in (decoded only for Vivo's plain streams).
	c, err := chunk.FromHeadersLazy(m.Headers(), m.Data(), nil)
	if err != nil {
		return plugin.Permanent(err)
	}
	if c.ID == "" {
		if md, err := m.Metadata(); err == nil {
			c.ID = "filtered:" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
	}
	items := s.Fanout(c)
	if len(items) > 0 {
		if err := s.pub.PublishAll(ctx, items); err != nil {
			return fmt.Errorf("route chunk of %s: %w", c.Tag, err)
		}
	}
	s.Count(c, len(items))
	return nil
}

// Fanout is what routing c publishes: one copy per output that takes it,
// each with an id derived from c's, so that routing the same chunk again
// (a redelivery) republishes the same Nats-Msg-Ids and the server drops the
// copies. None when no output takes it. It changes no state: a caller that
// publishes the copies reports with Count once they are stored. A filter
// stage in the same process uses it to skip FLOE_FILTERED (fused mode).
func (s *Service) Fanout(c *chunk.Chunk) []jsx.Pending {
	targets := s.Targets(c.Tag, c.Signal())
	if len(targets) == 0 {
		return nil
	}
	if len(targets) > 1 {
		c.Compress() // once, before the copies
	}
	items := make([]jsx.Pending, len(targets))
	for i, r := range targets {
		oc := *c
		oc.ID = c.ID + ">" + r.ID
		subject := jsx.OutSubject(r.ID, c.Tag)
		if r.Vivo {
			subject = jsx.VivoSubject(r.ID, c.Signal(), c.Tag)
		}
		items[i] = jsx.Pending{Subject: subject, Chunk: &oc}
	}
	return items
}

// Count records c as routed once its published copies (Fanout's) are
// stored. A chunk with none is dropped, as Fluent Bit drops a chunk without
// routes: counted and logged as unmatched.
func (s *Service) Count(c *chunk.Chunk, published int) {
	s.cfg.Metrics.ChunksIn.Add(1)
	s.cfg.Metrics.RecordsIn.Add(uint64(c.Records))
	if published == 0 {
		s.cfg.Metrics.Unmatched.Add(1)
		s.cfg.Metrics.UnmatchedRecords.Add(uint64(c.Records))
		s.unmatched.Drop(telemetry.ChunkRecords(c), "tag", c.Tag, "type", c.Signal(), "chunk", c.ID)
		return
	}
	s.cfg.Metrics.ChunksOut.Add(uint64(published))
}
