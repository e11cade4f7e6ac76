package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugins/all"
)

// Check reports the parser's problems and the registry's together, sorted
// by line, and says nothing more about a section whose name line was
// broken (its missing name is a consequence, not a second mistake).
func TestCheckMergesParseAndSemanticProblemsInLineOrder(t *testing.T) {
	text := "" +
		"[SERVICE]\n" + // 1
		"    Flush 1\n" + // 2
		"    Colour red\n" + // 3: unknown service key
		"[INPUT]\n" + // 4
		"    Name\n" + // 5: no value (syntax)
		"    Tag a\n" + // 6
		"[INPUT]\n" + // 7
		"    Name dummy\n" + // 8
		"    Rate fast\n" + // 9: not an integer
		"[OUTPUT]\n" + // 10
		"    Name stdout\n" + // 11
		"  Match *\n" + // 12: indentation (syntax)
		"    Format yaml\n" // 13: bad value
	cfg, loadErr := config.ParseClassic("c.conf", []byte(text), func(string) (string, bool) { return "", false })
	if loadErr == nil {
		t.Fatal("the syntax errors were not reported")
	}
	_, err := Check(cfg, loadErr, all.Registry())
	var l config.ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	var lines []int
	for _, e := range l {
		lines = append(lines, e.Line)
	}
	if len(l) != 5 || lines[0] != 3 || lines[1] != 5 || lines[2] != 9 || lines[3] != 12 || lines[4] != 13 {
		t.Fatalf("problems (lines %v):\n%v", lines, err)
	}
	if l[1].Key != "name" || !strings.Contains(l[1].Msg, "key has no value") || l[3].Key != "match" {
		t.Errorf("problems:\n%v", err)
	}
}

// A file that could not be read at all has nothing to check beyond that.
func TestCheckWithoutConfig(t *testing.T) {
	_, loadErr := config.Load(t.TempDir() + "/missing.conf")
	if _, err := Check(nil, loadErr, all.Registry()); err == nil || err.Error() != loadErr.Error() {
		t.Fatalf("err = %v, want %v", err, loadErr)
	}
}
