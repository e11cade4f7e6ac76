//lint:file-ignore U1000 the functions are exported to the host by //go:wasmexport, which staticcheck does not see

// raw_passthrough speaks the batch ABI without the SDK: it returns the
// chunk it was given as one 'E' frame with the same tag. It shows the wire
// format (docs/wasm-abi.md) and measures the ABI's own cost: host
// allocation, copy in, call, copy out and the host's check of the output.
package main

import (
	"encoding/binary"
	"unsafe"
)

// in and out stay referenced so the Go collector keeps them in place.
var in, out []byte

// floeAlloc hands the host a reusable buffer of n bytes.

//go:wasmexport floe_alloc
func floeAlloc(n uint32) uint32 {
	if cap(in) < int(n) {
		in = make([]byte, n)
	}
	in = in[:max(n, 1)]
	return uint32(uintptr(unsafe.Pointer(&in[0])))
}

// floeFilterBatch returns 'E' tag_len tag data_len data as ptr<<32 | len.
//
//go:wasmexport floe_filter_batch
func floeFilterBatch(tagPtr, tagLen, dataPtr, dataLen uint32) uint64 {
	// The host put the tag and the data back to back in the floe_alloc
	// buffer; slicing it avoids forging pointers from integers.
	if uint64(tagLen)+uint64(dataLen) > uint64(len(in)) {
		msg := "raw_passthrough: arguments outside the floe_alloc buffer"
		out = append(out[:0], 'X')
		out = binary.LittleEndian.AppendUint32(out, uint32(len(msg)))
		out = append(out, msg...)
		return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
	}
	out = append(out[:0], 'E')
	out = binary.LittleEndian.AppendUint32(out, tagLen)
	out = append(out, in[:tagLen]...)
	out = binary.LittleEndian.AppendUint32(out, dataLen)
	out = append(out, in[tagLen:tagLen+dataLen]...)
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

func main() {}
