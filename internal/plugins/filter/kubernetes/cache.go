package kubernetes

import (
	"context"
	"sync"
	"time"
)

// metaCache is the metadata cache one filter instance shares between the
// filter stage's workers. It coalesces concurrent lookups of one key into
// a single request, keeps answers for ttl (0: until evicted), and remembers
// failures so that, while the API server is down, each key is retried after
// a backoff instead of once per chunk.
type metaCache[V any] struct {
	now     func() time.Time
	ttl     time.Duration // 0: entries never expire
	maxSize int           // entries kept; past it one is evicted at random, as Fluent Bit's hash table
	// Backoff after a failed lookup: first retry after minBackoff, doubling
	// up to maxBackoff (Fluent Bit's kube_meta_negative_cache_ttl). A zero
	// maxBackoff disables it: every lookup retries, as Fluent Bit before 4.x.
	minBackoff, maxBackoff time.Duration

	mu      sync.Mutex
	entries map[string]*cacheEntry[V]
	flights map[string]*flight[V]
}

type cacheEntry[V any] struct {
	v       V
	err     error     // non-nil: the last lookup failed and v is its fallback
	expires time.Time // zero: never (successes) ; for failures: the time of the next retry
	backoff time.Duration
	stale   bool // a success kept past its ttl because refreshing it failed
}

type flight[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func newMetaCache[V any](ttl time.Duration, maxSize int, minBackoff, maxBackoff time.Duration) *metaCache[V] {
	return &metaCache[V]{
		now:        time.Now,
		ttl:        ttl,
		maxSize:    maxSize,
		minBackoff: min(minBackoff, maxBackoff),
		maxBackoff: maxBackoff,
		entries:    map[string]*cacheEntry[V]{},
		flights:    map[string]*flight[V]{},
	}
}

// lookupResult says where an answer came from, for the filter's statistics.
type lookupResult int

const (
	resultHit     lookupResult = iota // from the cache
	resultFetched                     // this call or a concurrent one asked the server
	resultBackoff                     // a recent failure, not retried yet
)

// get returns the value for key, fetching it when it is missing or stale.
// A non-nil error means the value is the fallback fetch returned along
// with its error (the zero V when it had none). fetch runs in its own
// goroutine with a context detached from ctx, so a caller that gives up
// does not fail the others waiting for the same key; its own deadline
// (the HTTP client's timeout) bounds it.
func (c *metaCache[V]) get(ctx context.Context, key string, fetch func(context.Context) (V, error)) (V, lookupResult, error) {
	c.mu.Lock()
	now := c.now()
	if e, ok := c.entries[key]; ok {
		switch {
		case e.err == nil && (e.expires.IsZero() || now.Before(e.expires)):
			c.mu.Unlock()
			return e.v, resultHit, nil
		case e.err != nil && now.Before(e.expires):
			c.mu.Unlock()
			return e.v, resultBackoff, e.err
		}
	}
	f, ok := c.flights[key]
	if !ok {
		f = &flight[V]{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(context.WithoutCancel(ctx), key, f, fetch)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.v, resultFetched, f.err
	case <-ctx.Done():
		var zero V
		return zero, resultFetched, ctx.Err()
	}
}

func (c *metaCache[V]) run(ctx context.Context, key string, f *flight[V], fetch func(context.Context) (V, error)) {
	v, err := fetch(ctx)
	c.mu.Lock()
	now := c.now()
	prev := c.entries[key]
	switch {
	case err == nil:
		e := &cacheEntry[V]{v: v}
		if c.ttl > 0 {
			e.expires = now.Add(c.ttl)
		}
		c.store(key, e)
	case c.maxBackoff > 0:
		backoff := c.minBackoff
		if prev != nil && (prev.err != nil || prev.stale) {
			backoff = min(prev.backoff*2, c.maxBackoff)
		}
		if prev != nil && prev.err == nil {
			// Refreshing an expired answer failed: keep serving it until
			// the next try, rather than take known metadata away while
			// the server is unreachable.
			v, err = prev.v, nil
			c.store(key, &cacheEntry[V]{v: v, expires: now.Add(backoff), backoff: backoff, stale: true})
			break
		}
		c.store(key, &cacheEntry[V]{v: v, err: err, expires: now.Add(backoff), backoff: backoff})
	default:
		delete(c.entries, key)
	}
	delete(c.flights, key)
	f.v, f.err = v, err
	c.mu.Unlock()
	close(f.done)
}

// store adds e, evicting an arbitrary other entry when the cache is full
// (expired ones first when one is met on the way).
func (c *metaCache[V]) store(key string, e *cacheEntry[V]) {
	if _, ok := c.entries[key]; !ok && c.maxSize > 0 && len(c.entries) >= c.maxSize {
		now := c.now()
		victim := ""
		for k, old := range c.entries { // map order is random: a random victim
			victim = k
			if !old.expires.IsZero() && !now.Before(old.expires) {
				break
			}
		}
		delete(c.entries, victim)
	}
	c.entries[key] = e
}
