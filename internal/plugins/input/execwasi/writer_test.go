package execwasi

import (
	"context"
	"sync"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// write is one recorded Write.
type write struct {
	tag     string
	data    []byte
	records int
}

// fakeWriter records writes; its receipts are resolved already.
type fakeWriter struct {
	mu      sync.Mutex
	writes  []write
	flushes int
	notify  chan struct{} // receives a value after each write, if set
}

type receipt struct{ done chan struct{} }

func (r *receipt) Done() <-chan struct{} { return r.done }
func (r *receipt) Err() error            { return nil }

func (w *fakeWriter) Write(_ context.Context, tag string, data []byte, records int) (plugin.Receipt, error) {
	w.mu.Lock()
	w.writes = append(w.writes, write{tag, append([]byte(nil), data...), records})
	w.mu.Unlock()
	if w.notify != nil {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
	r := &receipt{done: make(chan struct{})}
	close(r.done)
	return r, nil
}

func (w *fakeWriter) Flush() {
	w.mu.Lock()
	w.flushes++
	w.mu.Unlock()
}

func (w *fakeWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

// batches decodes every recorded write; it checks the record counts.
func (w *fakeWriter) batches() ([][]event.Event, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][]event.Event
	for _, wr := range w.writes {
		var evs []event.Event
		it := event.NewIter(wr.data)
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
		if len(evs) != wr.records {
			return nil, errRecords{len(evs), wr.records}
		}
		out = append(out, evs)
	}
	return out, nil
}

type errRecords [2]int

func (e errRecords) Error() string { return "write holds a different number of events than it says" }
