// Package wasmtest holds committed WebAssembly test guests for the WASM host,
// the wasm filter and the exec_wasi input, embedded in the test binaries.
//
// The .wasm files in guests/ are built from the sources in src/ by build.sh
// (clang 14 with wasi-libc for C, Go's GOOS=wasip1 port for Go); CI does not
// rebuild them. Each source file states its exact build command.
//
// Filter guests (Fluent Bit ABI: char *fn(char *tag, int tag_len, uint32 sec,
// uint32 nsec, char *record, int record_len), wasm type (i32 x6) -> i32):
//
//   - c_filter_nostdlib: upstream examples/filter_wasm_c c_filter, no libc:
//     imports env.malloc, env.printf, env.sprintf; exports c_filter,
//     __heap_base, __data_end. JSON mode.
//   - c_wasi_filter: wasi-libc reactor exporting malloc and free, with
//     c_add_fields, c_drop, c_invalid_json, c_trap, c_loop, c_memory_bomb,
//     c_leak, c_echo, c_printf (JSON mode) and c_msgpack_passthrough (msgpack).
//   - go_filter: Go wasip1 reactor exporting malloc and free, with
//     go_add_field, go_passthrough, go_print (JSON) and go_msgpack_add
//     (msgpack).
//
// WASI commands (exec_wasi): wasi_hello, wasi_json, wasi_exit_nonzero,
// wasi_trap. And not_wasm, a text file.
package wasmtest

import (
	"embed"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

//go:embed guests/*.wasm
var guests embed.FS

// Guest returns the bytes of guests/<name>.wasm. It panics when there is no
// such guest.
func Guest(name string) []byte {
	b, err := guests.ReadFile("guests/" + name + ".wasm")
	if err != nil {
		panic("wasmtest: unknown guest " + name)
	}
	return b
}

// Path writes Guest(name) to t.TempDir()/<name>.wasm and returns the path.
func Path(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".wasm")
	if err := os.WriteFile(p, Guest(name), 0o644); err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	return p
}

// Names returns the names of all the guests, sorted.
func Names() []string {
	entries, err := guests.ReadDir("guests")
	if err != nil {
		panic("wasmtest: " + err.Error())
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".wasm"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
