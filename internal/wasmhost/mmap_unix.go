//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package wasmhost

import "syscall"

// mmapReserve maps n bytes of zeroed, private, lazily committed memory.
func mmapReserve(n uint64) ([]byte, error) {
	n = (n + pageSize - 1) / pageSize * pageSize
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return nil, err
	}
	adviseHuge(b)
	return b[:0], nil
}

func munmap(b []byte) error { return syscall.Munmap(b) }
