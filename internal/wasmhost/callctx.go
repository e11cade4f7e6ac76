package wasmhost

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context of one instance's calls. wazero (with
// WithCloseOnContextDone) stops a call when its context's Done channel
// closes; callCtx closes it when a call overruns the instance's timeout or
// when the caller's context ends during a call. A call costs a clock read
// and a lock, not a timer: the timer stays armed across calls and, when it
// fires before the current call's deadline (set by a later call than the
// one that armed it), re-arms itself for the rest; between calls it lapses
// and the next call arms it again. Resetting and stopping a timer per call
// made begin and end cost twice as much (153 against 76 ns, BenchmarkCallCtx).
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
	armed    bool // the timer is pending
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
		if !c.armed {
			c.armed = true
			if c.timer == nil {
				c.timer = time.AfterFunc(c.timeout, c.expire)
			} else {
				c.timer.Reset(c.timeout)
			}
		}
	}
	c.mu.Unlock()
	return nil
}

// end marks the call over and reports whether the context fired during it
// (then it is done for good). The timer is left to lapse.
func (c *callCtx) end() (fired bool) {
	c.mu.Lock()
	c.inCall = false
	fired = c.err != nil
	c.mu.Unlock()
	return fired
}

func (c *callCtx) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	if !c.inCall || c.err != nil {
		return
	}
	// Armed by an earlier call, the timer may come before this call's
	// deadline: wait for the rest of it.
	if left := time.Until(c.deadline); left > 0 {
		c.armed = true
		c.timer.Reset(left)
		return
	}
	c.err = context.DeadlineExceeded
	close(c.done)
	if c.onFire != nil {
		c.onFire()
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
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.armed = false
	c.mu.Unlock()
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
}
