// Package bufpool keeps a few large byte buffers for reuse: chunk buffers in
// ingest, decompression buffers in the output stage.
//
// It is bounded on purpose. A sync.Pool keeps every buffer put back between
// two collections, and as they count as live they raise the heap goal, and
// the RSS, by more than the allocations they save (tail → null: +10-20 MiB).
package bufpool

// Pool holds up to its capacity of buffers; New makes one.
type Pool chan []byte

// New returns a pool that keeps at most n buffers.
func New(n int) Pool { return make(Pool, n) }

// Get returns an empty buffer of at least n bytes' capacity, if the pool has
// one at hand; a smaller one it finds is dropped.
func (p Pool) Get(n int) ([]byte, bool) {
	select {
	case b := <-p:
		if cap(b) >= n {
			return b[:0], true
		}
	default:
	}
	return nil, false
}

// Put keeps b for a later Get, or drops it when the pool is full.
func (p Pool) Put(b []byte) {
	if cap(b) == 0 {
		return
	}
	select {
	case p <- b[:0]:
	default:
	}
}
