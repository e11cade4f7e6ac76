//go:build wasip1

//lint:file-ignore U1000 the functions are exported to the host by //go:wasmexport, which staticcheck does not see

package wasmsdk

import "unsafe"

// in is the buffer floe_alloc hands the host; out what floe_filter_batch
// returns. Both stay referenced here, so the (non-moving) Go collector
// keeps them in place while the host reads or writes them.
var in, out []byte

// floeAlloc returns n bytes of guest memory for the host's chunk; the
// buffer is reused by the next call.
//
//go:wasmexport floe_alloc
func floeAlloc(n uint32) uint32 {
	if cap(in) < int(n) {
		in = make([]byte, n)
	}
	in = in[:max(n, 1)]
	return uint32(uintptr(unsafe.Pointer(&in[0])))
}

// floeFilterBatch runs the handler on the chunk and returns ptr<<32 | len of
// the output frames. The host passes tag and data inside the floe_alloc
// buffer, so they are taken as slices of it (no pointer forged from an
// integer); anything else is answered with an error frame.
//
//go:wasmexport floe_filter_batch
func floeFilterBatch(tagPtr, tagLen, dataPtr, dataLen uint32) uint64 {
	tag, ok1 := inSlice(tagPtr, tagLen)
	data, ok2 := inSlice(dataPtr, dataLen)
	if !ok1 || !ok2 {
		out = errorFrame(out[:0], "wasmsdk: tag or data outside the floe_alloc buffer")
	} else {
		// The tag is copied: handlers may keep it.
		out = Run(string(tag), data)
	}
	if len(out) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

func inSlice(ptr, n uint32) ([]byte, bool) {
	if len(in) == 0 {
		return nil, n == 0
	}
	base := uint32(uintptr(unsafe.Pointer(&in[0])))
	if ptr < base || uint64(ptr-base)+uint64(n) > uint64(len(in)) {
		return nil, false
	}
	off := ptr - base
	return in[off : off+n], true
}
