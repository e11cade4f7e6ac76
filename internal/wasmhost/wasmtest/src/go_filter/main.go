//go:build wasip1

// Command go_filter is a Fluent Bit WASM filter written in standard Go
// (GOOS=wasip1), built as a WASI reactor with -buildmode=c-shared: the
// module exports _initialize, which the host runs once, and the functions
// marked //go:wasmexport below.
//
// Every filter function has the Fluent Bit signature
// (tag, tag_len, sec, nsec, record, record_len uint32) uint32, i.e. wasm type
// (i32, i32, i32, i32, i32, i32) -> i32. The returned pointer stays valid until
// the next filter call (the last result is kept referenced, then released).
//
// The module exports malloc(size) and free(ptr) so that the host allocates the
// tag and record buffers in Go memory: each block is a Go byte slice kept in a
// map until free (Go's collector does not move objects).
//
// Build (from internal/wasmhost/wasmtest, see build.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false \
//	  -ldflags='-s -w' -o guests/go_filter.wasm ./src/go_filter
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unsafe"
)

func main() {}

// blocks holds the live malloc blocks by their address.
var blocks = map[uint32][]byte{}

// last is the result of the previous filter call, referenced until the next.
var last []byte

func addr(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

//go:wasmexport malloc
func malloc(size uint32) uint32 {
	n := size
	if n == 0 {
		n = 1
	}
	b := make([]byte, n)
	p := addr(b)
	blocks[p] = b
	return p
}

//go:wasmexport free
func free(ptr uint32) {
	delete(blocks, ptr)
}

// guestBytes returns the n bytes at guest address ptr: a slice of the malloc
// block holding them when there is one, else a view of linear memory.
func guestBytes(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	if b, ok := blocks[ptr]; ok && uint64(n) <= uint64(len(b)) {
		return b[:n]
	}
	for base, b := range blocks {
		if ptr > base && uint64(ptr-base)+uint64(n) <= uint64(len(b)) {
			return b[ptr-base : ptr-base+n]
		}
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(ptr))), n)
}

// result keeps out referenced until the next call and returns its address;
// an empty out returns 0 (record dropped).
func result(out []byte) uint32 {
	if len(out) == 0 {
		last = nil
		return 0
	}
	last = out
	return addr(out)
}

// cstring returns a copy of b followed by a NUL byte.
func cstring(b []byte) []byte {
	out := make([]byte, len(b)+1)
	copy(out, b)
	return out
}

// go_add_field (JSON mode) adds "go":"yes" as the last key of the record
// object, keeping the other keys in their order with their values byte for
// byte (an existing "go" key is removed first). A record that is not a JSON
// object is dropped.
//
//go:wasmexport go_add_field
func goAddField(tag, tagLen, sec, nsec, record, recordLen uint32) uint32 {
	out, ok := addField(guestBytes(record, recordLen), "go", `"yes"`)
	if !ok {
		return result(nil)
	}
	return result(cstring(out))
}

func addField(in []byte, key, value string) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	n := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, ok := t.(string)
		if !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if k == key {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		writeKey(&buf, k)
		buf.WriteByte(':')
		buf.Write(v)
		n++
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data after the object
	}
	if n > 0 {
		buf.WriteByte(',')
	}
	writeKey(&buf, key)
	buf.WriteByte(':')
	buf.WriteString(value)
	buf.WriteByte('}')
	return buf.Bytes(), true
}

func writeKey(buf *bytes.Buffer, k string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(k)
	buf.Truncate(buf.Len() - 1) // Encode's newline
}

// go_passthrough (JSON mode) returns a NUL-terminated copy of the record.
//
//go:wasmexport go_passthrough
func goPassthrough(tag, tagLen, sec, nsec, record, recordLen uint32) uint32 {
	return result(cstring(guestBytes(record, recordLen)))
}

// go_msgpack_add (msgpack mode) appends the pair "platform":"wasm" to the
// record map: the map header count is raised (fixmap, map16 or map32, moving
// to the next size when needed) and the encoded pair is appended. Binary
// safe. A record that does not start with a map header is dropped. The result
// is followed by one NUL byte (not part of the map).
//
//go:wasmexport go_msgpack_add
func goMsgpackAdd(tag, tagLen, sec, nsec, record, recordLen uint32) uint32 {
	out, ok := msgpackAdd(guestBytes(record, recordLen))
	if !ok {
		return result(nil)
	}
	return result(append(out, 0))
}

func msgpackAdd(in []byte) ([]byte, bool) {
	if len(in) == 0 {
		return nil, false
	}
	var count uint64
	var hdr int
	switch c := in[0]; {
	case c >= 0x80 && c <= 0x8f:
		count, hdr = uint64(c&0x0f), 1
	case c == 0xde && len(in) >= 3:
		count, hdr = uint64(in[1])<<8|uint64(in[2]), 3
	case c == 0xdf && len(in) >= 5:
		count = uint64(in[1])<<24 | uint64(in[2])<<16 | uint64(in[3])<<8 | uint64(in[4])
		hdr = 5
	default:
		return nil, false
	}
	count++
	if count > 0xffffffff {
		return nil, false
	}
	const pair = "\xa8platform\xa4wasm"
	out := make([]byte, 0, 5+len(in)-hdr+len(pair)+1)
	switch {
	case count <= 15:
		out = append(out, 0x80|byte(count))
	case count <= 0xffff:
		out = append(out, 0xde, byte(count>>8), byte(count))
	default:
		out = append(out, 0xdf, byte(count>>24), byte(count>>16), byte(count>>8), byte(count))
	}
	out = append(out, in[hdr:]...)
	out = append(out, pair...)
	return out, true
}

// go_print writes "hello from go" to stdout, then returns a NUL-terminated
// copy of the record.
//
//go:wasmexport go_print
func goPrint(tag, tagLen, sec, nsec, record, recordLen uint32) uint32 {
	fmt.Println("hello from go")
	return result(cstring(guestBytes(record, recordLen)))
}
