package wasmhost

import "syscall"

const mapNoReserve = syscall.MAP_NORESERVE

// canDiscard says discard zeroes pages (MADV_DONTNEED on private anonymous
// memory), so mappings can be reused.
const canDiscard = true

// discard gives the pages of b back to the system; they read as zeros.
func discard(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return syscall.Madvise(b, syscall.MADV_DONTNEED)
}

// hugeFrom is where transparent huge pages start in a reservation: a guest
// that grows its memory past it takes one page fault per 2 MiB instead of
// one per 4 KiB, while small guests keep small pages.
const hugeFrom = 2 << 20

// adviseHuge asks for transparent huge pages above hugeFrom.
func adviseHuge(b []byte) {
	if len(b) > hugeFrom {
		_ = syscall.Madvise(b[hugeFrom:], 14 /* MADV_HUGEPAGE */)
	}
}
