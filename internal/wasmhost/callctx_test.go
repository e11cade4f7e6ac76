package wasmhost

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The timer is armed once and kept across calls, so each call must still
// get its whole timeout counted from its own start, and an overrun must
// still fire.
func TestCallCtxDeadlinePerCall(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx := context.Background()

	t.Run("a later call is not cut by a timer an earlier call armed", func(t *testing.T) {
		c := newCallCtx(timeout)
		defer c.release()
		if err := c.begin(ctx); err != nil {
			t.Fatal(err)
		}
		c.end() // the timer stays armed for t0+timeout
		time.Sleep(timeout * 2 / 3)
		if err := c.begin(ctx); err != nil {
			t.Fatal(err)
		}
		// Past the first call's deadline, within this call's.
		select {
		case <-c.Done():
			t.Fatalf("fired %v into a call of %v timeout", timeout*2/3, timeout)
		case <-time.After(timeout * 2 / 3):
		}
		if c.end() {
			t.Fatal("end reports the call fired")
		}
	})

	t.Run("an overrun fires at its own deadline", func(t *testing.T) {
		c := newCallCtx(timeout)
		defer c.release()
		for range 100 { // short calls first: the timer stays armed
			if err := c.begin(ctx); err != nil {
				t.Fatal(err)
			}
			c.end()
		}
		time.Sleep(timeout / 2)
		start := time.Now()
		if err := c.begin(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(10 * timeout):
			t.Fatal("an overrunning call was never stopped")
		}
		if took := time.Since(start); took < timeout {
			t.Fatalf("fired after %v, before the call's %v deadline", took, timeout)
		}
		if !c.end() || !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("end after firing: err %v", c.Err())
		}
		if err := c.begin(ctx); err == nil {
			t.Fatal("a fired context accepted another call")
		}
	})

	t.Run("idle between calls: nothing fires, the next call re-arms", func(t *testing.T) {
		c := newCallCtx(timeout / 3)
		defer c.release()
		if err := c.begin(ctx); err != nil {
			t.Fatal(err)
		}
		c.end()
		time.Sleep(timeout) // the timer lapses with no call in progress
		if c.Err() != nil {
			t.Fatalf("fired between calls: %v", c.Err())
		}
		if err := c.begin(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(10 * timeout):
			t.Fatal("the call after an idle spell was never stopped")
		}
	})
}

// BenchmarkCallCtx is what a deadline costs a call, apart from the guest's
// own checks: begin and end around an empty call.
func BenchmarkCallCtx(b *testing.B) {
	c := newCallCtx(DefaultTimeout)
	defer c.release()
	ctx := context.Background()
	for b.Loop() {
		if err := c.begin(ctx); err != nil {
			b.Fatal(err)
		}
		c.end()
	}
}
