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

// floeFilterBatchV2 is floe_filter_batch with the host's index of the
// chunk's events (count entries at idxPtr, inside the floe_alloc buffer):
// the SDK then reads no MessagePack to find records, and returns unchanged
// records by reference.
//
//go:wasmexport floe_filter_batch_v2
func floeFilterBatchV2(tagPtr, tagLen, dataPtr, dataLen, idxPtr, count uint32) uint64 {
	tag, ok1 := inSlice(tagPtr, tagLen)
	data, ok2 := inSlice(dataPtr, dataLen)
	raw, ok3 := inSlice(idxPtr, count*uint32(unsafe.Sizeof(indexEntry{})))
	switch {
	case !ok1 || !ok2 || !ok3 || uint64(count)*uint64(unsafe.Sizeof(indexEntry{})) > 1<<32:
		out = errorFrame(out[:0], "wasmsdk: tag, data or index outside the floe_alloc buffer")
	case count > 0 && uintptr(unsafe.Pointer(&raw[0]))%8 != 0:
		out = errorFrame(out[:0], "wasmsdk: index not 8-aligned")
	default:
		var idx []indexEntry
		if count > 0 {
			idx = unsafe.Slice((*indexEntry)(unsafe.Pointer(&raw[0])), count)
		}
		out = processIndexed(handler, string(tag), data, idx)
	}
	if len(out) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

// floeConfigure receives plugin_config (JSON) in the floe_alloc buffer and
// returns 0, or an 'X' frame when the OnConfig hook refuses it.
//
//go:wasmexport floe_configure
func floeConfigure(ptr, n uint32) uint64 {
	b, ok := inSlice(ptr, n)
	if !ok {
		out = errorFrame(out[:0], "wasmsdk: plugin_config outside the floe_alloc buffer")
	} else if err := SetConfig(b); err != nil {
		out = errorFrame(out[:0], err.Error())
	} else {
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
