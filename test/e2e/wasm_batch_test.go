package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A batch-ABI module (examples/wasm/route_by_level) re-tags records by
// level in a real floe; each new tag reaches only the output matching it,
// every record exactly once, and nothing is left under the old tag.
func TestWASMBatchRetagRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	mod := filepath.Join(repoRoot(), "examples", "wasm", "route_by_level", "route_by_level.wasm")
	if _, err := os.Stat(mod); err != nil {
		t.Fatalf("example module: %v", err)
	}
	errOut, infoOut, restOut := filepath.Join(dir, "errors"), filepath.Join(dir, "infos"), filepath.Join(dir, "rest")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush         0.2
    storage.path  %s

[INPUT]
    Name     dummy
    Tag      app
    Dummy    {"level":"ERROR","msg":"boom"}
    Rate     50
    Samples  30

[INPUT]
    Name     dummy
    Tag      app
    Dummy    {"level":"info","msg":"ok"}
    Rate     50
    Samples  20

[FILTER]
    Name       wasm
    Match      app
    WASM_Path  %s

[OUTPUT]
    Name    file
    Match   app.error
    Path    %s
    Mkdir   on

[OUTPUT]
    Name    file
    Match   app.info
    Path    %s
    Mkdir   on

[OUTPUT]
    Name    file
    Match   app
    Path    %s
    Mkdir   on
`, filepath.Join(dir, "state"), mod, errOut, infoOut, restOut))
	p := startFloe(t, "floe", nil, "-c", cfg)
	errFile, infoFile := filepath.Join(errOut, "app.error"), filepath.Join(infoOut, "app.info")
	eventually(t, 90*time.Second, "30 error and 20 info records", func() (bool, string) {
		e, i := countLines(errFile), countLines(infoFile)
		return e >= 30 && i >= 20, fmt.Sprintf("error %d info %d", e, i)
	})
	time.Sleep(time.Second) // let anything extra arrive before counting
	if err := p.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	errRe := regexp.MustCompile(`^app\.error: \[(\d+\.\d+), \{"level":"ERROR","msg":"boom"\}\]$`)
	infoRe := regexp.MustCompile(`^app\.info: \[(\d+\.\d+), \{"level":"info","msg":"ok"\}\]$`)
	requireOnce(t, "app.error records", compareDistinct(30, strictIDs(t, errFile, errRe)))
	requireOnce(t, "app.info records", compareDistinct(20, strictIDs(t, infoFile, infoRe)))
	if entries, _ := os.ReadDir(restOut); len(entries) > 0 {
		t.Fatalf("records left under the old tag app: %v", entries)
	}
}

// strictIDs is fileIDs that fails on a line the pattern does not match.
func strictIDs(t *testing.T, path string, re *regexp.Regexp) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("%s: unexpected record %s", filepath.Base(path), l)
		}
		ids = append(ids, m[1])
	}
	return ids
}
