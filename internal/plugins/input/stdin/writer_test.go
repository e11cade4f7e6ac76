package stdin

import (
	"context"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// write is one recorded Write.
type write struct {
	tag     string
	data    []byte
	records int
}

// fakeWriter records writes. Its receipts are resolved already, or after
// delay when delay is set.
type fakeWriter struct {
	mu      sync.Mutex
	writes  []write
	delay   time.Duration
	pending sync.WaitGroup // receipts not resolved yet
	stored  int            // records whose receipt resolved
}

type receipt struct {
	done chan struct{}
	err  error
}

func (r *receipt) Done() <-chan struct{} { return r.done }
func (r *receipt) Err() error            { return r.err }

func (w *fakeWriter) Write(ctx context.Context, tag string, data []byte, records int) (plugin.Receipt, error) {
	w.mu.Lock()
	w.writes = append(w.writes, write{tag, append([]byte(nil), data...), records})
	w.mu.Unlock()
	r := &receipt{done: make(chan struct{})}
	if w.delay == 0 {
		w.mu.Lock()
		w.stored += records
		w.mu.Unlock()
		close(r.done)
		return r, nil
	}
	w.pending.Add(1)
	time.AfterFunc(w.delay, func() {
		w.mu.Lock()
		w.stored += records
		w.mu.Unlock()
		close(r.done)
		w.pending.Done()
	})
	return r, nil
}

// events decodes every recorded event.
func (w *fakeWriter) events() ([]event.Event, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []event.Event
	for _, wr := range w.writes {
		it := event.NewIter(wr.data)
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
