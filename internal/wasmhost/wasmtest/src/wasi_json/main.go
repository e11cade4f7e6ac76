//go:build wasip1

// Command wasi_json is a WASI command (GOOS=wasip1, exports _start) for the
// exec_wasi input, doing what Fluent Bit's examples/wasi_serde_json does: it
// prints one JSON line
//
//	{"age":43,"name":"John Doe","phones":["+44 1234567","+44 2345678"],"time":"<now>"}
//
// where <now> is the current UTC time as 2006-01-02T15:04:05.000000000 -0700
// (Fluent Bit's parser format %Y-%m-%dT%H:%M:%S.%L %z), and creates
// helloworld.txt in the current directory (the first preopened directory,
// "." by default), ignoring any failure to do so.
//
// Build (from internal/wasmhost/wasmtest, see build.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false \
//	  -ldflags='-s -w' -o guests/wasi_json.wasm ./src/wasi_json
package main

import (
	"os"
	"strconv"
	"time"
)

func main() {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000000 -0700")
	line := `{"age":43,"name":"John Doe","phones":["+44 1234567","+44 2345678"],"time":` +
		strconv.Quote(now) + "}\n"
	os.Stdout.WriteString(line)
	_ = os.WriteFile("helloworld.txt", []byte("Hello, world!\n"), 0o644)
}
