package wasmhost

import "sort"

// heap is the host-managed heap inside guest memory that Fluent Bit's WAMR
// gives modules that export no malloc/free ("app heap"): a region of linear
// memory the host allocates from for the call arguments and for the env
// malloc family. Its bookkeeping lives on the Go side, so a guest writing
// out of bounds cannot corrupt it. First fit, 8-byte aligned, coalescing.
type heap struct {
	base, size uint32
	inUse      uint32
	free       []span            // sorted by offset, coalesced
	used       map[uint32]uint32 // pointer -> block size
}

type span struct{ off, size uint32 }

const heapAlign = 8

func newHeap(base, size uint32) *heap {
	base2 := (base + heapAlign - 1) &^ (heapAlign - 1)
	size -= base2 - base
	size &^= heapAlign - 1
	return &heap{base: base2, size: size, free: []span{{base2, size}}, used: map[uint32]uint32{}}
}

// alloc returns a block of at least n bytes, or 0.
func (h *heap) alloc(n uint32) uint32 {
	if n > h.size {
		return 0
	}
	if n == 0 {
		n = 1
	}
	sz := (n + heapAlign - 1) &^ (heapAlign - 1)
	for i := range h.free {
		s := &h.free[i]
		if s.size < sz {
			continue
		}
		p := s.off
		if s.size == sz {
			h.free = append(h.free[:i], h.free[i+1:]...)
		} else {
			s.off += sz
			s.size -= sz
		}
		h.used[p] = sz
		h.inUse += sz
		return p
	}
	return 0
}

// blockSize is the size of the block at p (0, false if p is not allocated).
func (h *heap) blockSize(p uint32) (uint32, bool) {
	sz, ok := h.used[p]
	return sz, ok
}

// release frees the block at p; unknown pointers are ignored.
func (h *heap) release(p uint32) bool {
	sz, ok := h.used[p]
	if !ok {
		return false
	}
	delete(h.used, p)
	h.inUse -= sz
	i := sort.Search(len(h.free), func(i int) bool { return h.free[i].off > p })
	// Merge with the previous and/or next free span.
	prev := i > 0 && h.free[i-1].off+h.free[i-1].size == p
	next := i < len(h.free) && p+sz == h.free[i].off
	switch {
	case prev && next:
		h.free[i-1].size += sz + h.free[i].size
		h.free = append(h.free[:i], h.free[i+1:]...)
	case prev:
		h.free[i-1].size += sz
	case next:
		h.free[i].off = p
		h.free[i].size += sz
	default:
		h.free = append(h.free, span{})
		copy(h.free[i+1:], h.free[i:])
		h.free[i] = span{p, sz}
	}
	return true
}
