package kubernetes

import (
	"context"
	"errors"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1700000000, 0)} }
func fetchValue(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

// Failures back off 1s, 2s, 4s, then stay at the cap; a success resets.
func TestCacheBackoff(t *testing.T) {
	clk := newFakeClock()
	c := newMetaCache[string](0, 10, time.Second, 5*time.Second)
	c.now = clk.now
	calls := 0
	failing := func(context.Context) (string, error) { calls++; return "fallback", errors.New("down") }
	ctx := context.Background()
	var retries []time.Duration
	start := clk.t
	for range 60 {
		v, res, err := c.get(ctx, "k", failing)
		if err == nil || v != "fallback" {
			t.Fatalf("get = %q, %v", v, err)
		}
		if res == resultFetched {
			retries = append(retries, clk.t.Sub(start))
		}
		clk.add(250 * time.Millisecond)
	}
	// Fetches at 0, then after 1s, 2s, 4s, 5s, 5s backoffs.
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 12 * time.Second}
	if len(retries) < len(want) {
		t.Fatalf("retries at %v", retries)
	}
	for i, w := range want {
		if retries[i] != w {
			t.Fatalf("retries at %v, want %v...", retries, want)
		}
	}
	if calls != len(retries) {
		t.Errorf("calls %d, fetched results %d", calls, len(retries))
	}
	clk.add(5 * time.Second)
	if v, _, err := c.get(ctx, "k", fetchValue("ok")); err != nil || v != "ok" {
		t.Fatalf("after recovery: %q %v", v, err)
	}
}

// An expired answer whose refresh fails is served until the next try.
func TestCacheStaleOnError(t *testing.T) {
	clk := newFakeClock()
	c := newMetaCache[string](10*time.Second, 10, time.Second, time.Minute)
	c.now = clk.now
	ctx := context.Background()
	if v, _, _ := c.get(ctx, "k", fetchValue("v1")); v != "v1" {
		t.Fatal(v)
	}
	clk.add(11 * time.Second)
	calls := 0
	down := func(context.Context) (string, error) { calls++; return "", errors.New("down") }
	v, res, err := c.get(ctx, "k", down)
	if v != "v1" || err != nil || res != resultFetched || calls != 1 {
		t.Fatalf("refresh failed: %q %v %v calls=%d", v, res, err, calls)
	}
	// Within the backoff: served without a request.
	clk.add(500 * time.Millisecond)
	if v, res, err := c.get(ctx, "k", down); v != "v1" || err != nil || res != resultHit || calls != 1 {
		t.Fatalf("in backoff: %q %v %v calls=%d", v, res, err, calls)
	}
	clk.add(time.Second)
	if v, _, err := c.get(ctx, "k", fetchValue("v2")); v != "v2" || err != nil {
		t.Fatalf("after recovery: %q %v", v, err)
	}
}

// Past maxSize an entry is evicted; the cache never grows beyond it.
func TestCacheBounded(t *testing.T) {
	c := newMetaCache[string](0, 3, time.Second, time.Minute)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		c.get(context.Background(), k, fetchValue(k))
	}
	c.mu.Lock()
	n := len(c.entries)
	_, hasE := c.entries["e"]
	c.mu.Unlock()
	if n != 3 || !hasE {
		t.Errorf("entries = %d, newest kept = %v", n, hasE)
	}
}
