package vivo

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scanOpts selects the messages of a scan.
type scanOpts struct {
	stream      string
	lo, hi      uint64 // sequences, inclusive; hi 0 = no upper bound
	filter      string // subject filter; "" = all
	headersOnly bool
	// follow waits for new messages instead of ending at the stream's end;
	// onIdle is called after idle without one.
	follow bool
	idle   time.Duration
	onIdle func() error
}

// pullAhead is the number of messages a scan buffers ahead of its reader.
const pullAhead = 256

// pullBytes bounds one pull request of a scan. It must exceed the largest
// message, or the consumer stalls.
func (s *Service) pullBytes() int {
	n := 4 << 20
	if nc := s.js.Conn(); nc != nil {
		n = max(n, int(nc.MaxPayload())+64<<10)
	}
	return n
}

// scan reads a stream in order from o.lo with an ephemeral ordered
// consumer, calling fn for each message until fn says stop, o.hi is passed,
// or (one-shot) the stream has nothing more. Memory is bounded by the
// look-ahead (pullAhead messages), whatever the range.
func (s *Service) scan(ctx context.Context, o scanOpts, fn func(m jetstream.Msg, seq uint64) (bool, error)) error {
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(o.lo, 1),
		HeadersOnly:       o.headersOnly,
		InactiveThreshold: 30 * time.Second,
	}
	if o.filter != "" {
		cfg.FilterSubjects = []string{o.filter}
	}
	cons, err := s.js.OrderedConsumer(ctx, o.stream, cfg)
	if err != nil {
		return err
	}
	// At most pullAhead messages, and pullBytes per pull request, are
	// buffered ahead of the reader (PullMaxBytes alone would size the
	// buffer for a million messages).
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(pullAhead, s.pullBytes()))
	if err != nil {
		return err
	}
	defer func() {
		it.Stop()
		s.dropConsumer(o.stream, cons)
	}()
	if info := cons.CachedInfo(); !o.follow && info != nil && info.NumPending == 0 {
		return nil // nothing (matching) from lo on
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	wait := stallTimeout
	if o.follow && o.idle > 0 {
		wait = o.idle
	}
	for {
		m, err := it.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, nats.ErrTimeout) {
				if !o.follow {
					return nil // what was announced vanished (purged or evicted meanwhile)
				}
				if o.onIdle != nil {
					if err := o.onIdle(); err != nil {
						return err
					}
				}
				continue
			}
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := meta.Sequence.Stream
		if o.hi != 0 && seq > o.hi {
			return nil
		}
		more, err := fn(m, seq)
		if err != nil || !more {
			return err
		}
		if o.hi != 0 && seq >= o.hi {
			return nil
		}
		if !o.follow && meta.NumPending == 0 {
			return nil
		}
	}
}

// dropConsumer deletes a scan's ephemeral consumer at once rather than
// leaving it to the inactivity threshold.
func (s *Service) dropConsumer(stream string, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || info.Name == "" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		_ = s.js.DeleteConsumer(ctx, stream, info.Name)
	}()
}
