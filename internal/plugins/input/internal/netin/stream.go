package netin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/receipts"
)

// ErrTooLarge means a record did not fit in the connection's buffer.
var ErrTooLarge = errors.New("incoming data exceeds the buffer limit")

// DecodeFunc decodes the start of buf and returns how many bytes it used;
// eof says no more bytes will come. An error closes the connection.
type DecodeFunc func(buf []byte, eof bool) (int, error)

// ReadStream reads c into a buffer that grows by chunk bytes up to max and
// hands what is not yet decoded to decode after every read. A buffer at max
// that decode cannot use is ErrTooLarge, as in Fluent Bit (the connection
// is closed). Because decode writes its events (and Write blocks while the
// pipeline is paused), the socket is not read meanwhile and a TCP client
// blocks once the kernel buffers fill: backpressure, not loss.
func ReadStream(c net.Conn, chunk, max int, decode DecodeFunc) error {
	if chunk <= 0 {
		chunk = 32 << 10
	}
	if max < chunk {
		max = chunk
	}
	buf := make([]byte, 0, chunk)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= max {
				return fmt.Errorf("%w (%d bytes)", ErrTooLarge, max)
			}
			nb := make([]byte, len(buf), min(cap(buf)+chunk, max))
			copy(nb, buf)
			buf = nb
		}
		n, rerr := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		eof := rerr != nil
		if n > 0 || eof {
			used, err := decode(buf, eof)
			if err != nil {
				return err
			}
			rest := copy(buf, buf[used:])
			buf = buf[:rest]
			if cap(buf) > chunk && len(buf) < chunk {
				buf = append(make([]byte, 0, chunk), buf...) // give back a grown buffer
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, net.ErrClosed) {
				return nil
			}
			return rerr
		}
	}
}

// Writes sends a connection's batches to the pipeline and keeps track of
// their receipts, so that a failed store is logged and shutdown can wait.
type Writes struct {
	W       plugin.Writer
	Tag     string // "" for the input's tag
	tracker receipts.Tracker
}

// Write writes b (if it holds records) and resets it.
func (w *Writes) Write(ctx context.Context, b *Batch) error {
	if b.Records == 0 {
		return nil
	}
	r, err := w.W.Write(ctx, w.Tag, b.Data, b.Records)
	b.Reset()
	if err != nil {
		return err
	}
	w.tracker.Add(r)
	return nil
}

// Wait waits for the receipts of every write; once ctx has ended it waits
// at most grace more.
func (w *Writes) Wait(ctx context.Context, grace time.Duration) {
	wctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
	}
	_ = w.tracker.Wait(wctx)
}

// Queue carries the events of a datagram socket to the pipeline. A
// datagram sender cannot be slowed down, so the reader never blocks: what
// does not fit in the queue (Limit bytes) while the pipeline is slow or
// paused is dropped, and the caller counts it.
type Queue struct {
	Limit int
	mu    sync.Mutex
	b     Batch
	wake  chan struct{}
}

// NewQueue makes a queue holding at most limit bytes of events.
func NewQueue(limit int) *Queue { return &Queue{Limit: limit, wake: make(chan struct{}, 1)} }

// Put adds the events of b to the queue, or reports false when they do not fit.
func (q *Queue) Put(b *Batch) bool {
	if b.Records == 0 {
		return true
	}
	q.mu.Lock()
	if len(q.b.Data) > 0 && len(q.b.Data)+len(b.Data) > q.Limit {
		q.mu.Unlock()
		return false
	}
	q.b.Data = append(q.b.Data, b.Data...)
	q.b.Records += b.Records
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *Queue) take() Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.b
	q.b = Batch{}
	return b
}

// Run writes the queued events until ctx ends, then writes what is left
// (bounded by grace) and waits for the receipts.
func (q *Queue) Run(ctx context.Context, w *Writes, grace time.Duration) error {
	for {
		select {
		case <-q.wake:
			b := q.take()
			if err := w.Write(ctx, &b); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		case <-ctx.Done():
			b := q.take()
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
			err := w.Write(wctx, &b)
			plugin.FlushWriter(w.W)
			_ = w.tracker.Wait(wctx)
			cancel()
			return err
		}
	}
}
