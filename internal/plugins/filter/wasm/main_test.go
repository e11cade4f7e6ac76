package wasm

import (
	"os"
	"testing"
)

// TestMain keeps Check's process-wide runtime from writing its compilation
// cache into the user's cache directory.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "floe-wasm-test-cache")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
