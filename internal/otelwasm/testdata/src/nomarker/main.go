//go:build wasip1

// Command nomarker exports the v1 processor functions but not the
// abi_version_v1 marker: the host must refuse it, naming the marker.
//
//	Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath \
//	  -buildvcs=false -ldflags='-s -w' -o testdata/nomarker.wasm ./testdata/src/nomarker
package main

func main() {}

//go:wasmexport alloc
func alloc(size uint32) uint32 { return 0 }

//go:wasmexport start
func start() uint32 { return 0 }

//go:wasmexport shutdown
func shutdown() uint32 { return 0 }

//go:wasmexport consume_logs
func consumeLogs(ptr, n uint32) uint32 { return 0 }
