//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package wasmhost

import "errors"

const canDiscard = false

func mmapReserve(uint64) ([]byte, error) { return nil, errors.New("no mmap") }

func munmap([]byte) error { return nil }

func discard([]byte) error { return nil }

func adviseHuge([]byte) {}
