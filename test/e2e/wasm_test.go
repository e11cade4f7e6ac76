package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// Fluent Bit's -nostdlib C filter (env malloc/sprintf/printf) chained with
// a Go wasip1 filter, run by the floe binary: every record gets both
// modules' fields; validate names a missing function.
func TestWASMFiltersChainedInFloe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	cMod, goMod := filepath.Join(dir, "c_filter.wasm"), filepath.Join(dir, "go_filter.wasm")
	if err := os.WriteFile(cMod, wasmtest.Guest("c_filter_nostdlib"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goMod, wasmtest.Guest("go_filter"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	base := fmt.Sprintf(`[SERVICE]
    Flush         0.2
    storage.path  %s

[INPUT]
    Name     dummy
    Tag      dummy.local
    Rate     50
    Samples  40

[FILTER]
    Name           wasm
    Match          dummy.*
    WASM_Path      %s
    Function_Name  c_filter
    Accessible_Paths .

[FILTER]
    Name           wasm
    Match          dummy.*
    WASM_Path      %s
    Function_Name  %%s

[OUTPUT]
    Name    file
    Match   *
    Path    %s
    Format  plain
    Mkdir   on
`, filepath.Join(dir, "state"), cMod, goMod, out)
	writeFile(t, cfg, fmt.Sprintf(base, "go_nosuch"))
	v := startFloe(t, "validate", nil, "validate", "-c", cfg)
	if err := v.wait(60 * time.Second); err == nil || !strings.Contains(v.stderr.String(), "go_nosuch") {
		t.Fatalf("validate of a missing function: %v\n%s", err, v.stderr.String())
	}

	writeFile(t, cfg, fmt.Sprintf(base, "go_add_field"))
	p := startFloe(t, "floe", nil, "-c", cfg)
	file := filepath.Join(out, "dummy.local")
	eventually(t, 60*time.Second, "40 filtered records", func() (bool, string) {
		return countLines(file) >= 40, fmt.Sprint(countLines(file))
	})
	if err := p.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^\{"tag":"dummy\.local","time":"(\d+\.[ \d]{9})","message":"Hello, from C!","original":\{"message":"dummy"\},"go":"yes"\}$`)
	requireOnce(t, "filtered records", compareDistinct(40, fileIDs(t, file, want)))
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 40 {
		t.Fatalf("%d records, want 40", len(lines))
	}
	for _, l := range lines {
		if !want.MatchString(l) {
			t.Fatalf("record not as the two filters make it: %s", l)
		}
	}
}
