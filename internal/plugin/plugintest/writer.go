package plugintest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// Write is one call an input made.
type Write struct {
	Tag     string
	Data    []byte
	Records int
}

// Writer is a plugin.Writer for input tests: it records every write. Its
// receipts are resolved at once, or after Delay when set. Lock Mu to read
// the fields while the input runs.
type Writer struct {
	Mu      sync.Mutex
	Writes  []Write
	Delay   time.Duration
	Pending sync.WaitGroup // receipts not resolved yet (with Delay)
	Stored  int            // records whose receipt resolved
	Flushes int            // calls of Flush (plugin.Flusher)
	Notify  chan struct{}  // receives a value after each write, if set
	// Hold, when set, blocks every Write until it is closed (or the
	// write's context ends), as ingest's Writer blocks while paused.
	Hold chan struct{}
}

type receipt struct{ done chan struct{} }

func (r *receipt) Done() <-chan struct{} { return r.done }
func (r *receipt) Err() error            { return nil }

// Write records a write.
func (w *Writer) Write(ctx context.Context, tag string, data []byte, records int) (plugin.Receipt, error) {
	if w.Hold != nil {
		select {
		case <-w.Hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	w.Mu.Lock()
	w.Writes = append(w.Writes, Write{tag, append([]byte(nil), data...), records})
	w.Mu.Unlock()
	if w.Notify != nil {
		select {
		case w.Notify <- struct{}{}:
		default:
		}
	}
	r := &receipt{done: make(chan struct{})}
	resolve := func() {
		w.Mu.Lock()
		w.Stored += records
		w.Mu.Unlock()
		close(r.done)
	}
	if w.Delay == 0 {
		resolve()
		return r, nil
	}
	w.Pending.Add(1)
	time.AfterFunc(w.Delay, func() {
		resolve()
		w.Pending.Done()
	})
	return r, nil
}

// Flush counts calls (plugin.Flusher).
func (w *Writer) Flush() {
	w.Mu.Lock()
	w.Flushes++
	w.Mu.Unlock()
}

// Count is the number of writes so far.
func (w *Writer) Count() int {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	return len(w.Writes)
}

// Batches decodes every write; each must hold as many events as it said.
func (w *Writer) Batches() ([][]event.Event, error) {
	w.Mu.Lock()
	defer w.Mu.Unlock()
	var out [][]event.Event
	for i, wr := range w.Writes {
		var evs []event.Event
		it := event.NewIter(wr.Data)
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if len(evs) != wr.Records {
			return nil, fmt.Errorf("write %d holds %d events but says %d", i, len(evs), wr.Records)
		}
		out = append(out, evs)
	}
	return out, nil
}

// Events decodes every recorded event, in order.
func (w *Writer) Events() ([]event.Event, error) {
	batches, err := w.Batches()
	var out []event.Event
	for _, b := range batches {
		out = append(out, b...)
	}
	return out, err
}

var _ plugin.Writer = (*Writer)(nil)
var _ plugin.Flusher = (*Writer)(nil)
