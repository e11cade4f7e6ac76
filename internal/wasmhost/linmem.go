package wasmhost

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory backs an instance's linear memory (wazero's experimental
// MemoryAllocator): it refuses to grow past limit — memory.grow then fails
// in the guest, as with wazero's WithMemoryLimitPages, but per instance —
// and records that it did. Where the platform allows, the whole limit is
// reserved as an anonymous mapping outside the Go heap, so growing never
// copies and a discarded instance's pages go back to the system; mappings
// are reused by later instances (see memPool). Elsewhere it is a Go slice
// grown geometrically.
//
// wazero calls Free when the module closes, possibly from the goroutine
// that ends a timed-out call; the mapping is only given back by release,
// which the Instance calls from Close, after which nothing reads it.
type linearMemory struct {
	pool  *memPool
	limit uint64 // bytes
	hit   bool   // a grow past limit was refused
	buf   []byte // reservation (mmap) or current backing slice
	mmap  bool
	hwm   uint64 // largest size handed out
}

var _ experimental.MemoryAllocator = (*linearMemory)(nil)

// Allocate implements experimental.MemoryAllocator.
func (m *linearMemory) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	reserve := (min(maxBytes, m.limit) + pageSize - 1) / pageSize * pageSize
	if reserve == 0 {
		reserve = pageSize
	}
	if b := m.pool.get(reserve); b != nil {
		m.buf, m.mmap = b, true
	} else if b, err := mmapReserve(reserve); err == nil {
		m.buf, m.mmap = b, true
	} else {
		m.buf = make([]byte, 0, min(capacity, reserve))
	}
	return m
}

// Reallocate implements experimental.LinearMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.hit = true
		return nil
	}
	m.hwm = max(m.hwm, size)
	if m.mmap {
		if size > uint64(cap(m.buf)) {
			m.hit = true
			return nil
		}
		return m.buf[:size]
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	nc := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	nb := make([]byte, size, nc)
	copy(nb, m.buf)
	m.buf = nb
	return nb
}

// Free implements experimental.LinearMemory: see the type's doc.
func (m *linearMemory) Free() {}

// release gives the mapping back (to the pool, zeroed, or to the system);
// the memory must not be used afterwards.
func (m *linearMemory) release() {
	if m.mmap && m.buf != nil {
		m.pool.put(m.buf[:0:cap(m.buf)], m.hwm)
	}
	m.buf = nil
}

// memPool keeps a few released mappings for the next instances: a recycled
// instance then costs neither mmap/munmap nor page faults on the pages it
// touches first. A returned mapping is zeroed: its first keepResident bytes
// with memclr (they stay resident), the rest with madvise(MADV_DONTNEED)
// (the pages go back to the system and read as zeros).
type memPool struct {
	mu   sync.Mutex
	free map[uint64][][]byte // by reservation size
	n    int
}

const (
	memPoolMax   = 8
	keepResident = 1 << 20
)

func (p *memPool) get(size uint64) []byte {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.free[size]
	if len(l) == 0 {
		return nil
	}
	b := l[len(l)-1]
	p.free[size] = l[:len(l)-1]
	p.n--
	return b
}

func (p *memPool) put(b []byte, used uint64) {
	full := b[:cap(b)]
	used = min(used, uint64(len(full)))
	if p == nil || !canDiscard {
		_ = munmap(full)
		return
	}
	p.mu.Lock()
	room := p.n < memPoolMax
	if room {
		p.n++ // reserve the slot
	}
	p.mu.Unlock()
	if !room {
		_ = munmap(full)
		return
	}
	keep := min(used, keepResident)
	clear(full[:keep])
	if used > keep {
		if discard(full[keep:used]) != nil {
			p.mu.Lock()
			p.n--
			p.mu.Unlock()
			_ = munmap(full)
			return
		}
	}
	p.mu.Lock()
	if p.free == nil {
		p.free = map[uint64][][]byte{}
	}
	p.free[uint64(len(full))] = append(p.free[uint64(len(full))], b)
	p.mu.Unlock()
}

// drain unmaps every pooled mapping.
func (p *memPool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.free {
		for _, b := range l {
			_ = munmap(b[:cap(b)])
		}
	}
	p.free, p.n = nil, 0
}
