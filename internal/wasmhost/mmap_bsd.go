//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package wasmhost

const mapNoReserve = 0

// canDiscard is false: MADV_DONTNEED does not zero pages everywhere, so
// mappings are not reused.
const canDiscard = false

func discard([]byte) error { return nil }

func adviseHuge([]byte) {}
