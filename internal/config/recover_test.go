package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// problem is one expected Error: Msg need only contain msg.
type problem struct {
	file string
	line int
	key  string
	msg  string
}

// checkProblems checks that err lists exactly the problems want, in order.
func checkProblems(t *testing.T, err error, want ...problem) {
	t.Helper()
	l := errList(t, err)
	ok := len(l) == len(want)
	for i := 0; ok && i < len(l); i++ {
		w, e := want[i], l[i]
		ok = e.File == w.file && e.Line == w.line && e.Key == w.key && strings.Contains(e.Msg, w.msg)
	}
	if !ok {
		var b strings.Builder
		for _, w := range want {
			fmt.Fprintf(&b, "\n  %s:%d key %q: ...%s...", w.file, w.line, w.key, w.msg)
		}
		t.Fatalf("problems:\n%v\nwant:%s", err, b.String())
	}
}

// Each kind of line-level syntax error is reported and parsing resumes:
// the section after the mistake is read in full, and a second mistake
// further down is reported too.
func TestClassicRecoversFromEachSyntaxError(t *testing.T) {
	const tail = "[OUTPUT]\n    Name stdout\n    Match *\n    Format\n"
	tests := []struct {
		name, head string
		line       int
		key, msg   string
		inputOK    bool // the [INPUT] of head still has its name and tag
	}{
		{"key without value", "[INPUT]\n    Name dummy\n    Tag app\n    Rate\n", 4, "rate", "key has no value", true},
		{"key with empty value", "[INPUT]\n    Name dummy\n    Tag app\n    Rate \n", 4, "rate", "key has an empty value", true},
		{"indentation too low", "[INPUT]\n    Name dummy\n    Tag app\n  Rate 5\n", 4, "rate", "indentation level is too low", true},
		{"first key not indented", "[INPUT]\nName dummy\n    Tag app\n", 2, "name", "indentation level is too low", false},
		{"tab and space", "[INPUT]\n    Name dummy\n    Tag app\n\tRate 5\n", 4, "rate", "inconsistent use of tab and space", true},
		{"extra indentation", "[INPUT]\n    Name dummy\n    Tag app\n      Rate 5\n", 4, "rate", "extra indentation level found", true},
		{"unknown section", "[INPUT]\n    Name dummy\n    Tag app\n[INPTU]\n    Name tail\n    Path /x\n", 4, "", "unknown section [INPTU]", true},
		{"header without ]", "[INPUT]\n    Name dummy\n    Tag app\n[FILTER\n    Name grep\n", 4, "", "missing ']'", true},
		{"key outside any section", "    Name dummy\n[INPUT]\n    Name dummy\n    Tag app\n", 1, "name", "outside of any section", true},
		{"@INCLUDE of a missing file", "[INPUT]\n    Name dummy\n    Tag app\n@INCLUDE nowhere.conf\n", 4, "", "cannot open file", true},
		{"@INCLUDE glob matching nothing", "[INPUT]\n    Name dummy\n    Tag app\n@INCLUDE none/*.conf\n", 4, "", "no files match", true},
		{"@INCLUDE bad glob", "[INPUT]\n    Name dummy\n    Tag app\n@INCLUDE [*.conf\n", 4, "", "invalid include pattern", true},
		{"@SET without =", "[INPUT]\n    Name dummy\n    Tag app\n@SET novalue\n", 4, "", "@SET: invalid parameter", true},
		{"meta without parameters", "[INPUT]\n    Name dummy\n    Tag app\n@SET\n", 4, "", "invalid meta command", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.head + tail
			fsys := memFS{}
			cfg, err := parseClassic(fsys, "r.conf", []byte(data), nil, false)
			formatLine := strings.Count(tt.head, "\n") + 4
			checkProblems(t, err,
				problem{"r.conf", tt.line, tt.key, tt.msg},
				problem{"r.conf", formatLine, "format", "key has no value"})
			if len(cfg.Outputs) != 1 || propsString(cfg.Outputs[0].Props) != "name=stdout;match=*" {
				t.Errorf("section after the mistake not read in full: %+v", cfg.Outputs)
			}
			if tt.inputOK && (len(cfg.Inputs) != 1 || !strings.HasPrefix(propsString(cfg.Inputs[0].Props), "name=dummy;tag=app")) {
				t.Errorf("section before the mistake not kept: %+v", cfg.Inputs)
			}
		})
	}
}

// The example: every syntax mistake comes out with its file, line
// and key, in line order, however many there are.
func TestClassicReportsEverySyntaxErrorInLineOrder(t *testing.T) {
	data := "" +
		"[SERVICE]\n" + // 1
		"    Flush 1\n" + // 2
		"  Log_Level debug\n" + // 3: indentation
		"[INPUT]\n" + // 4
		"    Name dummy\n" + // 5
		"    Tag\n" + // 6: no value
		"@SET broken\n" + // 7: @SET without '='
		"[OUTPUT\n" + // 8: bad header
		"    Name stdout\n" + // 9: skipped with its section
		"[OUTPTU]\n" + // 10: unknown section
		"    Name null\n" + // 11: skipped with its section
		"[OUTPUT]\n" + // 12
		"    Name stdout\n" + // 13
		"    Match\n" // 14: no value
	_, err := parseClassic(memFS{}, "o.conf", []byte(data), nil, false)
	checkProblems(t, err,
		problem{"o.conf", 3, "log_level", "indentation level is too low"},
		problem{"o.conf", 6, "tag", "key has no value"},
		problem{"o.conf", 7, "", "@SET"},
		problem{"o.conf", 8, "", "missing ']'"},
		problem{"o.conf", 10, "", "unknown section [OUTPTU]"},
		problem{"o.conf", 14, "match", "key has no value"})
}

// An included file's problems come where its @INCLUDE appears, between the
// includer's problems before and after it, nested includes likewise.
func TestClassicIncludedProblemsSortWhereIncluded(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.conf": "" +
			"[INPUT]\n" + // 1
			"    Name dummy\n" + // 2
			"    Tag\n" + // 3: error
			"@INCLUDE a.conf\n" + // 4
			"@INCLUDE missing.conf\n" + // 5: error
			"[OUTPUT]\n" + // 6
			"    Name stdout\n" + // 7
			"    Match\n", // 8: error
		"a.conf": "" +
			"[FILTER]\n" + // 1
			"    Name grep\n" + // 2
			"    Regex\n" + // 3: error
			"@INCLUDE b.conf\n" + // 4
			"[FILTER\n", // 5: error
		"b.conf": "" +
			"[FILTER]\n" + // 1
			"    Name\n", // 2: error
	})
	main := filepath.Join(dir, "main.conf")
	a, b := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	_, err := Load(main)
	checkProblems(t, err,
		problem{main, 3, "tag", "key has no value"},
		problem{a, 3, "regex", "key has no value"},
		problem{b, 2, "name", "key has no value"},
		problem{a, 5, "", "missing ']'"},
		problem{main, 5, "", "@INCLUDE"},
		problem{main, 8, "match", "key has no value"})
}

func TestSortErrorsOrder(t *testing.T) {
	cfg := newConfig("classic")
	cfg.Files = []string{"main.conf", "inc.conf"}
	cfg.includedAt["inc.conf"] = filePos{"main.conf", 5}
	l := []*Error{
		{Msg: "no file"},
		{File: "parsers.conf", Line: 1, Msg: "other file"},
		{File: CommandLine, Line: 2, Msg: "command line"},
		{File: "main.conf", Line: 9, Msg: "after include"},
		{File: "inc.conf", Line: 2, Msg: "inside include"},
		{File: "main.conf", Line: 5, Msg: "on the include line"},
		{File: "main.conf", Line: 3, Column: 7, Msg: "col 7"},
		{File: "main.conf", Line: 3, Column: 2, Msg: "col 2"},
	}
	cfg.SortErrors(l)
	var got []string
	for _, e := range l {
		got = append(got, e.Msg)
	}
	want := "col 2|col 7|on the include line|inside include|after include|other file|command line|no file"
	if strings.Join(got, "|") != want {
		t.Errorf("order = %s\nwant    %s", strings.Join(got, "|"), want)
	}
}

func TestErrorWithColumn(t *testing.T) {
	e := &Error{File: "a.yaml", Line: 3, Column: 7, Key: "k", Msg: "m"}
	if got := e.Error(); got != "a.yaml:3:7: key k: m" {
		t.Errorf("got %q", got)
	}
	e = &Error{File: "a.yaml", Line: 3, Msg: "m"}
	if got := e.Error(); got != "a.yaml:3: m" {
		t.Errorf("got %q", got)
	}
}

// YAML syntax errors say where the offending character is (line and
// column), not where libyaml's enclosing block started.
func TestYAMLSyntaxErrorLineAndColumn(t *testing.T) {
	tests := []struct {
		name, data string
		line, col  int
		msg        string
	}{
		{"dedented key in a list entry", "pipeline:\n  inputs:\n    - name: dummy\n      tag: x\n     bad: 1\n", 5, 6, "did not find expected '-' indicator"},
		{"tab indentation", "pipeline:\n  inputs:\n    - name: dummy\n\ttag: x\n", 4, 1, "tab character"},
		{"key without colon", "pipeline:\n  inputs:\n    - name: dummy\n      tag x\n    - name: y\n", 4, 7, "could not find expected ':'"},
		{"unclosed flow list", "pipeline:\n  outputs:\n    - name: stdout\n      match: [a, b\n", 4, 14, "did not find expected ',' or ']'"},
		{"colon in a plain value", "pipeline:\n  inputs:\n    - name: dummy\n      tag: a: b\n", 4, 12, "mapping values are not allowed"},
		{"unnamed alias", "pipeline:\n  outputs:\n    - name: stdout\n      match: *\n", 4, 14, "alphabetic or numeric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseYAML(memFS{}, "s.yaml", []byte(tt.data), nil)
			l := errList(t, err)
			if len(l) != 1 || l[0].Line != tt.line || l[0].Column != tt.col || !strings.Contains(l[0].Msg, tt.msg) {
				t.Fatalf("errors = %v (line %d col %d), want %d:%d %q", err, l[0].Line, l[0].Column, tt.line, tt.col, tt.msg)
			}
			want := fmt.Sprintf("s.yaml:%d:%d: invalid YAML: ", tt.line, tt.col)
			if !strings.HasPrefix(l[0].Error(), want) {
				t.Errorf("message %q does not start with %q", l[0].Error(), want)
			}
		})
	}
}

// What parses before a YAML syntax error is still read, so its semantic
// problems are found in the same run; the section cut short by the error
// is not blamed for what it lacks.
func TestYAMLChecksWhatParsesBeforeSyntaxError(t *testing.T) {
	data := "" +
		"service:\n" + // 1
		"  flush: 1\n" + // 2
		"pipeline:\n" + // 3
		"  inputs:\n" + // 4
		"    - name: dummy\n" + // 5
		"      tag: app\n" + // 6
		"    - tag: nameless\n" + // 7: missing name
		"  outputs:\n" + // 8
		"    - match: '*'\n" + // 9: cut short by the error: its name may follow
		"      format: [json\n" // 10: unclosed
	cfg, err := parseYAML(memFS{}, "p.yaml", []byte(data), nil)
	l := errList(t, err)
	if len(l) != 2 || !hasError(l, 7, "missing the 'name' property") || l[1].Line != 10 || !strings.Contains(l[1].Msg, "invalid YAML") {
		t.Fatalf("errors = %v", err)
	}
	if len(cfg.Inputs) != 2 || cfg.Inputs[0].Plugin() != "dummy" || len(cfg.Outputs) != 1 {
		t.Fatalf("inputs %+v outputs %+v", cfg.Inputs, cfg.Outputs)
	}
	if !cfg.Outputs[0].Incomplete() || cfg.Inputs[0].Incomplete() {
		t.Errorf("incomplete: output %v, first input %v", cfg.Outputs[0].Incomplete(), cfg.Inputs[0].Incomplete())
	}
	if v, _ := cfg.Service.Get("flush"); v != "1" {
		t.Errorf("service flush = %q", v)
	}

	// Documents before the broken one are read once, not twice.
	data = "pipeline:\n  inputs:\n    - tag: first\n---\npipeline:\n  inputs:\n    - tag: second\n      x: [\n"
	cfg, err = parseYAML(memFS{}, "d.yaml", []byte(data), nil)
	l = errList(t, err)
	if len(l) != 2 || !hasError(l, 3, "missing the 'name'") || !hasError(l, 8, "invalid YAML") || len(cfg.Inputs) != 2 {
		t.Fatalf("errors = %v, inputs = %d", err, len(cfg.Inputs))
	}
}

// A broken line excuses the section's missing name only when it may have
// been the name line.
func TestClassicMissingNameBesideBrokenLine(t *testing.T) {
	data := "" +
		"[INPUT]\n" + // 1
		"    Tag\n" + // 2: not the name: the missing name is a second mistake
		"[INPUT]\n" + // 3
		"    Name\n" + // 4: the name line itself
		"[OUTPUT]\n" + // 5
		"    Name\tstdout\n" + // 6: a tab does not separate: probably the name line
		"[OUTPUT]\n" + // 7
		"    Match *\n" + // 8
		"  Name null\n" // 9: badly indented name
	_, err := parseClassic(memFS{}, "n.conf", []byte(data), nil, false)
	checkProblems(t, err,
		problem{"n.conf", 1, "", "missing the 'name' property"},
		problem{"n.conf", 2, "tag", "key has no value"},
		problem{"n.conf", 4, "name", "key has no value"},
		problem{"n.conf", 6, "name\tstdout", "key has no value"},
		problem{"n.conf", 9, "name", "indentation level is too low"})
}
