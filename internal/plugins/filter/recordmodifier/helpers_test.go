package recordmodifier

import (
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

func kv(pairs ...any) event.Map { return plugintest.KV(pairs...) }

var groupStart, groupEnd = plugintest.GroupStart, plugintest.GroupEnd

func mkChunk(bodies ...any) *chunk.Chunk { return plugintest.Chunk(bodies...) }

func render(v any) string { return plugintest.Render(v) }

func records(t *testing.T, out []*chunk.Chunk) []string {
	t.Helper()
	return plugintest.Bodies(t, out)
}

func props(lines ...string) *plugin.Props { return plugintest.Props(Spec(), lines...) }

func newFilter(t *testing.T, lines ...string) plugin.Filter {
	t.Helper()
	return plugintest.NewFilter(t, Spec(), lines...)
}

func run(t *testing.T, f plugin.Filter, c *chunk.Chunk) []*chunk.Chunk {
	t.Helper()
	return plugintest.Run(t, f, c)
}
