package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// One syntax mistake and two semantic ones: `floe validate` prints exactly
// three problem lines, in line order, then the count, and exits 1; start-up
// with the same file fails the same way before starting anything.
func TestValidateListsSyntaxAndSemanticMistakesInLineOrder(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "three.conf")
	writeFile(t, cfg, `[INPUT]
    Name   dummy
    Tag    app
    Colour blue

[FILTER]
    Name   grepp
    Match  *

[OUTPUT]
    Name   stdout
    Match
    Format json_lines
`)
	want := []string{
		"floe: " + cfg + `:4: key colour: unknown key for input plugin "dummy"`,
		"floe: " + cfg + `:7: key name: unknown filter plugin "grepp"`,
		"floe: " + cfg + `:12: key match: key has no value`,
		"floe: 3 configuration problem(s)",
	}
	for _, args := range [][]string{
		{"validate", "-c", cfg},
		{"run", "-c", cfg, "--storage-path", filepath.Join(dir, "store")},
	} {
		p := startFloe(t, args[0], nil, args...)
		err := p.wait(30 * time.Second)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("floe %s: exit %v, want status 1", args[0], err)
		}
		lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
		ok := len(lines) == len(want)
		for i := 0; ok && i < len(want); i++ {
			ok = strings.HasPrefix(lines[i], want[i])
		}
		if !ok {
			t.Errorf("floe %s stderr:\n%s\nwant:\n%s", args[0], p.stderr.String(), strings.Join(want, "\n"))
		}
	}
}
