package lua

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// FuzzRoundTrip: any chunk bytes give an error or records, never a panic,
// and a record that went through Lua unchanged (code 2) still decodes.
func FuzzRoundTrip(f *testing.F) {
	f.Add(plugintest.Chunk(kv("a", int64(1), "b", []any{"x", 2.5, nil}, "c", kv("d", true))).Data)
	f.Add(plugintest.Chunk(kv("big", uint64(1<<63)), plugintest.GroupStart, kv("e", []byte{0, 1})).Data)
	fl := newFilter(f, "enable_flb_null on", "type_array_key b", "call cb", code(`function cb(tag, ts, r) return 2, ts, r end`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := plugintest.Chunk()
		c.Data = data
		out, err := fl.FilterChunk(context.Background(), c)
		if err != nil {
			return
		}
		if len(out) == 1 && out[0] != c {
			plugintest.Bodies(t, out) // re-encoded records decode, with the right count
		}
	})
}
