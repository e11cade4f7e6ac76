package wasm

import (
	"context"
	"sync"
)

// pool hands out workers, one goroutine each, making up to size of them on
// demand.
type pool struct {
	slots  chan struct{} // one token per worker that may be in use
	mu     sync.Mutex
	idle   []*worker
	closed bool
	make   func(context.Context) (*worker, error)
	drop   func(context.Context, *worker) // closes a worker's instance
	all    sync.WaitGroup                 // workers in use
}

func newPool(size int, mk func(context.Context) (*worker, error), drop func(context.Context, *worker)) *pool {
	return &pool{slots: make(chan struct{}, size), make: mk, drop: drop}
}

// add puts a worker made outside get (the first one) in the pool.
func (p *pool) add(w *worker) {
	p.mu.Lock()
	p.idle = append(p.idle, w)
	p.mu.Unlock()
}

func (p *pool) get(ctx context.Context) (*worker, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return nil, errClosed
	}
	p.all.Add(1)
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return w, nil
	}
	p.mu.Unlock()
	w, err := p.make(ctx)
	if err != nil {
		p.all.Done()
		<-p.slots
		return nil, err
	}
	return w, nil
}

// put returns a worker taken with get.
func (p *pool) put(w *worker) {
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.idle = append(p.idle, w)
	}
	p.mu.Unlock()
	if closed && w.inst != nil {
		p.drop(context.Background(), w)
	}
	<-p.slots
	p.all.Done()
}

func (p *pool) close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		if w.inst != nil {
			p.drop(ctx, w)
		}
	}
	done := make(chan struct{})
	go func() { p.all.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
