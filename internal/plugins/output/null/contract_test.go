package null

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// null throws records away, so the contract's record-identity checks have
// nothing to read: what a user sees of it is only that every flush is
// answered OK (the output stage's own metrics count the records; they are
// not this plugin's). The closest honest contract: open and close through
// the spec in every format, the contract's chunks and a metrics chunk all
// answered OK and never permanently refused, re-flushes included.
func TestContractAcceptsEverything(t *testing.T) {
	for _, format := range []string{"msgpack", "json", "json_lines", "json_stream"} {
		out, err := Spec().NewOutput(context.Background(), plugin.Settings{Name: "null.0"}, plugintest.Props(Spec(), "format "+format))
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for i := range 20 {
			if err := out.Flush(context.Background(), outputtest.Chunk(int64(i*50), 50)); err != nil {
				t.Fatalf("%s: flush %d: %v", format, i, err)
			}
		}
		if err := out.Flush(context.Background(), outputtest.Chunk(0, 50)); err != nil {
			t.Fatalf("%s: re-flush: %v", format, err)
		}
		if err := out.Flush(context.Background(), outputtest.MetricsChunk(t, 0, 10)); err != nil {
			t.Fatalf("%s: metrics chunk: %v", format, err)
		}
		if err := plugin.Close(context.Background(), out); err != nil {
			t.Fatalf("%s: close: %v", format, err)
		}
	}
}
