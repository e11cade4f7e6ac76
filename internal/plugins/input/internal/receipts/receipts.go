// Package receipts tracks the receipts an input gets for its writes, so that
// it can wait for all of them before it returns.
package receipts

import (
	"context"
	"log/slog"

	"github.com/floe-io/floe/internal/plugin"
)

// Tracker holds the receipts not yet resolved. It is not safe for concurrent use.
type Tracker struct {
	Logger  *slog.Logger // failed receipts are logged here when set
	pending []plugin.Receipt
	failed  int
}

// Add tracks r and forgets the receipts that have already resolved.
func (t *Tracker) Add(r plugin.Receipt) {
	if r != nil {
		t.pending = append(t.pending, r)
	}
	t.reap()
}

// Pending is the number of receipts not known to be resolved.
func (t *Tracker) Pending() int { return len(t.pending) }

// Failed is the number of receipts that resolved with an error.
func (t *Tracker) Failed() int { return t.failed }

// reap drops resolved receipts from the front; they mostly resolve in order.
func (t *Tracker) reap() {
	n := 0
	for n < len(t.pending) {
		select {
		case <-t.pending[n].Done():
			t.check(t.pending[n])
			n++
			continue
		default:
		}
		break
	}
	if n > 0 {
		rest := copy(t.pending, t.pending[n:])
		clear(t.pending[rest:])
		t.pending = t.pending[:rest]
	}
}

func (t *Tracker) check(r plugin.Receipt) {
	if err := r.Err(); err != nil {
		t.failed++
		if t.Logger != nil {
			t.Logger.Error("events were not stored", "error", err)
		}
	}
}

// Wait blocks until every tracked receipt has resolved or ctx ends, in which
// case it returns ctx.Err().
func (t *Tracker) Wait(ctx context.Context) error {
	for len(t.pending) > 0 {
		select {
		case <-t.pending[0].Done():
			t.check(t.pending[0])
			t.pending[0] = nil
			t.pending = t.pending[1:]
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
