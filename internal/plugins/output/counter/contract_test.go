package counter

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// The counter prints how many events each flush carried, not the events,
// so the contract's record-identity checks (which seq arrived, once) cannot
// apply: a user can only see counts. This is the closest honest contract:
// the output opens and closes through its spec, every flush of the
// contract's chunks prints one line whose count is the chunk's and whose
// total runs over all flushes, and a chunk the mesh flushes again (after a
// RETRY elsewhere in the pipeline, or a restart) is counted again, as
// out_counter counts it. It never fails (upstream answers OK always), so
// there is no fault to inject.
func TestContractCounts(t *testing.T) {
	out, err := Spec().NewOutput(context.Background(), plugin.Settings{Name: "counter.0"}, plugintest.Props(Spec()))
	if err != nil {
		t.Fatal(err)
	}
	var w strings.Builder
	out.(*Output).w = &w
	var sizes []int
	for i := range 20 {
		n := 1 + i*7%50
		if err := out.Flush(context.Background(), outputtest.Chunk(int64(i*100), n)); err != nil {
			t.Fatalf("flush %d: %v", i, err)
		}
		sizes = append(sizes, n)
	}
	// A re-flush of the same chunk (same id) is counted again.
	if err := out.Flush(context.Background(), outputtest.Chunk(0, sizes[0])); err != nil {
		t.Fatal(err)
	}
	sizes = append(sizes, sizes[0])
	if err := plugin.Close(context.Background(), out); err != nil {
		t.Fatalf("close: %v", err)
	}

	line := regexp.MustCompile(`^\d+\.\d{6},(\d+) \(total = (\d+)\)$`)
	got := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(got) != len(sizes) {
		t.Fatalf("%d lines printed for %d flushes:\n%s", len(got), len(sizes), w.String())
	}
	total := 0
	for i, l := range got {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d %q is not out_counter's format", i, l)
		}
		total += sizes[i]
		if want := fmt.Sprintf("%d %d", sizes[i], total); m[1]+" "+m[2] != want {
			t.Errorf("line %d %q: want count %d, total %d", i, l, sizes[i], total)
		}
	}
}
