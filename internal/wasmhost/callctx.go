package wasmhost

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context of one instance's calls. wazero (with
// WithCloseOnContextDone) stops a call when its context's Done channel
// closes; callCtx closes it when a call overruns the instance's timeout or
// when the caller's context ends during a call. It costs a timer reset per
// call instead of a context.WithTimeout (an allocation and a new timer).
// After it fired the instance is closed, so it is never re-armed.
type callCtx struct {
	parent  context.Context // of the current call: values, cancellation
	timeout time.Duration
	done    chan struct{}
	timer   *time.Timer
	stop    func() bool // unregisters the AfterFunc on parent
	// onFire, when set, runs once as the context fires (under mu): it
	// raises the stop global of code with Floe's inline checks, which
	// do not watch Done.
	onFire func()

	mu       sync.Mutex
	err      error
	inCall   bool
	deadline time.Time
}

func newCallCtx(timeout time.Duration) *callCtx {
	return &callCtx{timeout: timeout, done: make(chan struct{})}
}

func (c *callCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *callCtx) Done() <-chan struct{}       { return c.done }
func (c *callCtx) Value(key any) any           { return c.parent.Value(key) }

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// begin arms the context for a call made under parent.
func (c *callCtx) begin(parent context.Context) error {
	if parent != c.parent {
		if c.stop != nil {
			c.stop()
			c.stop = nil
		}
		c.parent = parent
		if parent.Done() != nil {
			c.stop = context.AfterFunc(parent, func() { c.cancel(parent) })
		}
	}
	if err := parent.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.inCall = true
	if c.timeout > 0 {
		c.deadline = time.Now().Add(c.timeout)
	}
	c.mu.Unlock()
	if c.timeout > 0 {
		if c.timer == nil {
			c.timer = time.AfterFunc(c.timeout, c.expire)
		} else {
			c.timer.Reset(c.timeout)
		}
	}
	return nil
}

// end disarms it after the call and reports whether it fired during it
// (then it is done for good).
func (c *callCtx) end() (fired bool) {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Lock()
	c.inCall = false
	fired = c.err != nil
	c.mu.Unlock()
	return fired
}

func (c *callCtx) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A timer that fired for an earlier call finds a later deadline.
	if c.inCall && c.err == nil && !time.Now().Before(c.deadline) {
		c.err = context.DeadlineExceeded
		close(c.done)
		if c.onFire != nil {
			c.onFire()
		}
	}
}

func (c *callCtx) cancel(parent context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inCall && c.err == nil {
		c.err = context.Cause(parent)
		if c.err == nil {
			c.err = context.Canceled
		}
		close(c.done)
		if c.onFire != nil {
			c.onFire()
		}
	}
}

// release stops the timer and the cancellation hook.
func (c *callCtx) release() {
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
}
