package jsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
)

// Handler processes one message. It returns nil only when everything the
// message produced is durably accepted downstream. Errors are classified
// with the plugin error classes: Permanent → dead letter, Throttle → retry
// after its delay, anything else → retry with backoff.
type Handler func(ctx context.Context, m jetstream.Msg) error

// ConsumeOptions configure a consume loop.
type ConsumeOptions struct {
	Stream         string
	Durable        string
	FilterSubjects []string
	Workers        int           // concurrent handlers; default 1
	MaxAckPending  int           // default 4 × Workers
	AckWait        time.Duration // default 10s; long handlers send InProgress
	// RetryLimit is how many times a failing message is retried before it is
	// dead-lettered; negative means without limit.
	RetryLimit int
	// Backoff returns the wait before retry number attempt (1 = first retry).
	Backoff func(attempt int) time.Duration
	// Stage names the stage in dead-letter subjects and headers.
	Stage  string
	Logger *slog.Logger
	// OnDeadLetter is told about every chunk set aside (for metrics).
	OnDeadLetter func(m jetstream.Msg, reason error)
	// OnRetry is told about every retry scheduled (for metrics).
	OnRetry func(m jetstream.Msg, attempt int, delay time.Duration)
	// Ordered keeps the stream's order across replicas ([SERVICE] ordering
	// per_tag): one message in flight, one replica pinned at a time (the
	// others take over when it goes away), and retries done in place so a
	// failing chunk is never overtaken by the next.
	Ordered bool
}

// priorityGroup is the pull group ordered consumers pin their replicas in.
const priorityGroup = "floe"

// FullJitter is Fluent Bit's scheduler backoff: a uniform wait in
// [base, min(cap, base·2^attempt)].
func FullJitter(base, cap time.Duration) func(int) time.Duration {
	return func(attempt int) time.Duration {
		hi := base
		for i := 0; i < attempt && hi < cap; i++ {
			hi *= 2
		}
		if hi > cap {
			hi = cap
		}
		if hi <= base {
			return base
		}
		return base + time.Duration(rand.Int64N(int64(hi-base)+1))
	}
}

func (o *ConsumeOptions) defaults() {
	if o.Workers <= 0 || o.Ordered {
		o.Workers = 1
	}
	if o.Ordered {
		o.MaxAckPending = 1
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 4 * o.Workers
	}
	if o.AckWait <= 0 {
		o.AckWait = 10 * time.Second
	}
	if o.Backoff == nil {
		o.Backoff = FullJitter(time.Second, time.Minute)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// ConsumerConfig is the durable pull consumer the options describe.
func (o ConsumeOptions) ConsumerConfig() jetstream.ConsumerConfig {
	o.defaults()
	c := jetstream.ConsumerConfig{
		Durable:        o.Durable,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        o.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  o.MaxAckPending,
		FilterSubjects: o.FilterSubjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if o.Ordered {
		c.PriorityPolicy = jetstream.PriorityPolicyPinned
		c.PriorityGroups = []string{priorityGroup}
		c.PinnedTTL = o.AckWait
	}
	return c
}

// Consume runs the loop until ctx ends. Handlers already running when ctx
// ends finish with work, a context the caller cancels to cut them short.
func Consume(ctx, work context.Context, js jetstream.JetStream, o ConsumeOptions, h Handler) error {
	o.defaults()
	var cons jetstream.Consumer
	delay := 200 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := js.CreateOrUpdateConsumer(cctx, o.Stream, o.ConsumerConfig())
		cancel()
		if err == nil {
			cons = c
			break
		}
		o.Logger.Warn("cannot create consumer, retrying", "stream", o.Stream, "consumer", o.Durable, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		if delay < 5*time.Second {
			delay *= 2
		}
	}
	for ctx.Err() == nil {
		if err := consumeOnce(ctx, work, js, cons, o, h); err != nil {
			o.Logger.Warn("consume loop interrupted, restarting", "stream", o.Stream, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// pullExpiry bounds each pull request, and so the heartbeats the server
// sends for it (half of it): a pull that went quiet (its consumer's leader
// moved, a cluster still settling) is noticed after two missed heartbeats
// and reissued. nats.go's default, 30 s, left an output idle for 30 s after
// a fresh cluster's first election; 5 s costs one idle request per 5 s.
const pullExpiry = 5 * time.Second

func consumeOnce(ctx, work context.Context, js jetstream.JetStream, cons jetstream.Consumer, o ConsumeOptions, h Handler) error {
	opts := []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(o.MaxAckPending), jetstream.PullExpiry(pullExpiry)}
	if o.Ordered {
		opts = append(opts, jetstream.PullPriorityGroup(priorityGroup))
	}
	it, err := cons.Messages(opts...)
	if err != nil {
		return err
	}
	// On stop, drain what the client already pulled, but do not wait for the
	// outstanding pull request to expire: anything left is redelivered. The
	// drain needs the server to answer; one that stopped answering never
	// does, so Next is also given up on shortly after the stop.
	nextCtx, cancelNext := context.WithCancel(context.Background())
	defer cancelNext()
	stop := context.AfterFunc(ctx, func() {
		it.Drain()
		time.AfterFunc(200*time.Millisecond, func() {
			it.Stop()
			cancelNext()
		})
	})
	defer stop()
	defer it.Stop()
	var wg sync.WaitGroup
	errc := make(chan error, o.Workers)
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := it.Next(jetstream.NextContext(nextCtx))
				if err != nil {
					if nextCtx.Err() != nil {
						return
					}
					if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						errc <- err
						it.Stop()
					}
					return
				}
				handle(work, js, m, o, h)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// unacked counts, per stream, the messages this process's handlers hold
// without having answered them yet: what a stop cut short leaves behind.
var unacked sync.Map // stream name → *atomic.Int64

func unackedCounter(stream string) *atomic.Int64 {
	if c, ok := unacked.Load(stream); ok {
		return c.(*atomic.Int64)
	}
	c, _ := unacked.LoadOrStore(stream, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// Unacked reports, per stream, how many messages this process's consumers
// are processing and have not acknowledged. They stay in their stream and
// are redelivered if the process goes away.
func Unacked() map[string]int64 {
	out := map[string]int64{}
	unacked.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n > 0 {
			out[k.(string)] = n
		}
		return true
	})
	return out
}

// handle runs h on m and maps its answer onto JetStream acknowledgements.
func handle(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, o ConsumeOptions, h Handler) {
	held := unackedCounter(o.Stream)
	held.Add(1)
	defer held.Add(-1)
	stopProgress := keepAlive(m, o.AckWait)
	err := h(ctx, m)
	if o.Ordered {
		err = retryInPlace(ctx, m, o, h, err)
	}
	stopProgress()
	if err == nil {
		if aerr := m.DoubleAck(ctx); aerr != nil {
			o.Logger.Debug("ack failed; the message will be redelivered and deduplicated", "error", aerr)
		}
		return
	}
	if ctx.Err() != nil {
		// Shutting down: leave the message for redelivery.
		_ = m.Nak()
		return
	}
	attempt := 1
	if md, mderr := m.Metadata(); mderr == nil {
		attempt = int(md.NumDelivered)
	}
	if plugin.IsPermanent(err) || (o.RetryLimit >= 0 && attempt > o.RetryLimit) {
		reason := err
		if !plugin.IsPermanent(err) {
			reason = fmt.Errorf("retries exhausted after %d attempts: %w", attempt, err)
		}
		if derr := DeadLetter(ctx, js, o.Stage, m, reason); derr != nil {
			o.Logger.Error("cannot dead-letter chunk; it will be redelivered", "stage", o.Stage, "error", derr, "reason", reason)
			_ = m.NakWithDelay(time.Second)
			return
		}
		o.Logger.Warn("chunk set aside as dead letter", "stage", o.Stage, "tag", m.Headers().Get(chunk.HeaderTag), "reason", reason)
		if o.OnDeadLetter != nil {
			o.OnDeadLetter(m, reason)
		}
		_ = m.TermWithReason(truncate(reason.Error(), 200))
		return
	}
	d, ok := plugin.ThrottleDelay(err)
	if !ok {
		d = o.Backoff(attempt)
	}
	if o.OnRetry != nil {
		o.OnRetry(m, attempt, d)
	}
	o.Logger.Warn("failed to process chunk, retrying", "stage", o.Stage, "tag", m.Headers().Get(chunk.HeaderTag),
		"attempt", attempt, "retry_in", d.String(), "error", err)
	_ = m.NakWithDelay(d)
}

// retryInPlace retries a failing message without giving it back to the
// server, so no later message overtakes it. It returns nil on success, the
// error once it is permanent or the retries are exhausted (the caller dead-
// letters it), or ctx's error when stopping.
func retryInPlace(ctx context.Context, m jetstream.Msg, o ConsumeOptions, h Handler, err error) error {
	for attempt := 1; err != nil && !plugin.IsPermanent(err); attempt++ {
		if o.RetryLimit >= 0 && attempt > o.RetryLimit {
			return plugin.Permanent(fmt.Errorf("retries exhausted after %d attempts: %w", attempt, err))
		}
		d, ok := plugin.ThrottleDelay(err)
		if !ok {
			d = o.Backoff(attempt)
		}
		if o.OnRetry != nil {
			o.OnRetry(m, attempt, d)
		}
		o.Logger.Warn("failed to process chunk, retrying in place (ordered)", "stage", o.Stage,
			"tag", m.Headers().Get(chunk.HeaderTag), "attempt", attempt, "retry_in", d.String(), "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		err = h(ctx, m)
	}
	return err
}

// keepAlive tells the server the message is still being worked on while a
// long handler runs, so it is not redelivered meanwhile.
func keepAlive(m jetstream.Msg, ackWait time.Duration) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// DeadLetter copies m to the dead-letter stream with the reason and stage in headers.
func DeadLetter(ctx context.Context, js jetstream.JetStream, stage string, m jetstream.Msg, reason error) error {
	h := m.Headers()
	t := h.Get(chunk.HeaderTag)
	dm := nats.NewMsg(DLQSubject(stage, t))
	dm.Data = m.Data()
	for k, v := range h {
		if k == nats.MsgIdHdr {
			continue
		}
		dm.Header[k] = v
	}
	dm.Header.Set(chunk.HeaderReason, reason.Error())
	dm.Header.Set(chunk.HeaderStage, stage)
	dm.Header.Set("Floe-Origin-Subject", m.Subject())
	if md, err := m.Metadata(); err == nil {
		dm.Header.Set("Floe-Origin-Stream", md.Stream)
		dm.Header.Set("Floe-Origin-Seq", strconv.FormatUint(md.Sequence.Stream, 10))
		// Dedup on the origin message: a dead letter re-sent after a crash is stored once.
		dm.Header.Set(nats.MsgIdHdr, "dlq:"+md.Stream+":"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := js.PublishMsg(cctx, dm)
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
