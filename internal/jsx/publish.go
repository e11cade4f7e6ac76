package jsx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
)

// Publisher sends chunks to JetStream and waits for their PubAcks. A chunk
// is published with its ID as Nats-Msg-Id, so republishing after a failure
// or a redelivery is deduplicated by the server.
type Publisher struct {
	js jetstream.JetStream
	// OnDuplicate, when set, is told about every publish the server dropped
	// as a duplicate (work redone after a redelivery).
	OnDuplicate func()
}

// NewPublisher wraps a JetStream context.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// ToMsg builds the message for c on subject, compressed as
// storage.compression says, except on Vivo's streams: they hold
// stream_queue_size bytes of events as upstream counts them, so their chunks
// are stored as is.
func ToMsg(subject string, c *chunk.Chunk) *nats.Msg {
	if strings.HasPrefix(subject, subjectVivo) {
		return chunk.ToPlainMsg(subject, c)
	}
	return chunk.ToMsg(subject, c)
}

// Pending is one chunk on its way.
type Pending struct {
	Subject string
	Chunk   *chunk.Chunk
	future  jetstream.PubAckFuture
	err     error
}

// PublishAll publishes every chunk asynchronously and returns when all are
// acknowledged, republishing (same Msg-Id) the ones that failed for a
// transient reason until ctx ends. A full stream with discard-new is
// reported as ErrStreamFull so callers can apply backpressure.
func (p *Publisher) PublishAll(ctx context.Context, items []Pending) error {
	delay := 50 * time.Millisecond
	for {
		for i := range items {
			if items[i].future != nil || items[i].err == errDone {
				continue
			}
			f, err := p.js.PublishMsgAsync(ToMsg(items[i].Subject, items[i].Chunk))
			if err != nil {
				items[i].err = err
				continue
			}
			items[i].future, items[i].err = f, nil
		}
		var failed error
		for i := range items {
			it := &items[i]
			if it.err == errDone {
				continue
			}
			if it.future == nil {
				failed = it.err
				continue
			}
			select {
			case ack := <-it.future.Ok():
				it.err = errDone
				if ack != nil && ack.Duplicate && p.OnDuplicate != nil {
					p.OnDuplicate()
				}
			case err := <-it.future.Err():
				it.future, it.err = nil, err
				failed = err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if failed == nil {
			return nil
		}
		if isStreamFull(failed) {
			failed = fmt.Errorf("%w: %w", ErrStreamFull, failed)
		}
		if !retryable(failed) {
			return failed
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last publish error: %w)", ctx.Err(), failed)
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

// Publish publishes one chunk and waits for its PubAck (with retries as PublishAll).
func (p *Publisher) Publish(ctx context.Context, subject string, c *chunk.Chunk) error {
	return p.PublishAll(ctx, []Pending{{Subject: subject, Chunk: c}})
}

var errDone = errors.New("done")

// ErrStreamFull means JetStream refused new data for lack of room: the target
// stream is at its byte limit (discard-new), or the server's whole store is.
var ErrStreamFull = errors.New("stream full")

// IsStreamFull reports whether a publish failed for lack of room, in the
// stream or in the server's store (IsStorageFull).
func IsStreamFull(err error) bool { return errors.Is(err, ErrStreamFull) || isStreamFull(err) }

func isStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10077 JSStreamStoreFailed carries "maximum bytes/messages exceeded" for
		// discard-new limits.
		return (apiErr.ErrorCode == 10077 && strings.Contains(apiErr.Description, "maximum")) || IsStorageFull(err)
	}
	return false
}

// IsStorageFull reports whether a publish failed because the server's
// JetStream store is full (its max_file_store, by default 75% of the disk
// space free when it started), as opposed to one stream's limit.
func IsStorageFull(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10023 "insufficient resources": the server's limit, checked before
		// each message; 10047 "insufficient storage resources available";
		// 10002 the account's JetStream limit.
		switch apiErr.ErrorCode {
		case 10023, 10047, 10002:
			return true
		}
	}
	return false
}

// retryable tells transient publish failures from permanent ones.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// Message too large, bad subject or stream config problems will not heal.
		if apiErr.Code == 400 && !errors.Is(err, ErrStreamFull) {
			return false
		}
	}
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) {
		return false
	}
	return true
}
