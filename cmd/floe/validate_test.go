package main

import (
	"bytes"
	"strings"
	"testing"
)

// The example: an unknown key (line 4), an unknown filter (line 7)
// and Match without a value (line 12, a syntax error) all come out, in line
// order, from `floe validate` and from start-up alike.
func TestValidateReportsSyntaxAndSemanticProblemsTogether(t *testing.T) {
	want := []string{
		"floe: testdata/three_mistakes.conf:4: key colour: unknown key for input plugin \"dummy\"",
		"floe: testdata/three_mistakes.conf:7: key name: unknown filter plugin \"grepp\"",
		"floe: testdata/three_mistakes.conf:12: key match: key has no value",
		"floe: 3 configuration problem(s)",
	}
	for _, args := range [][]string{
		{"validate", "-c", "testdata/three_mistakes.conf"},
		{"--dry-run", "-c", "testdata/three_mistakes.conf"},
		// start-up fails before anything starts: no NATS server, no storage
		{"run", "-c", "testdata/three_mistakes.conf", "--storage-path", t.TempDir()},
		{"-c", "testdata/three_mistakes.conf", "--storage-path", t.TempDir()},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
		ok := code == 1 && len(lines) == len(want) && out.Len() == 0
		for i := 0; ok && i < len(want); i++ {
			ok = strings.HasPrefix(lines[i], want[i])
		}
		if !ok {
			t.Errorf("floe %s: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and:\n%s",
				strings.Join(args, " "), code, out.String(), errb.String(), strings.Join(want, "\n"))
		}
	}
}

// The same in YAML, where the syntax error (a dedented key) is placed at
// its line and column, and the part of the file before it is still checked.
func TestValidateYAMLReportsSyntaxErrorWithColumnBesideSemanticProblems(t *testing.T) {
	want := []string{
		"floe: testdata/three_mistakes.yaml:5: key colour: unknown key for input plugin \"dummy\"",
		"floe: testdata/three_mistakes.yaml:7: key name: unknown filter plugin \"grepp\"",
		"floe: testdata/three_mistakes.yaml:12:6: invalid YAML: ",
		"floe: 3 configuration problem(s)",
	}
	var out, errb bytes.Buffer
	code := run([]string{"validate", "-c", "testdata/three_mistakes.yaml"}, &out, &errb)
	lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
	ok := code == 1 && len(lines) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(lines[i], want[i])
	}
	if !ok {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and:\n%s", code, errb.String(), strings.Join(want, "\n"))
	}
}

// With shorthand plugins beside a broken file, the file's problems and the
// shorthand's come out together.
func TestValidateMergesFileAndShorthandProblems(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"validate", "-c", "testdata/three_mistakes.conf", "-o", "stdout", "-p", "colour=red", "-m", "*"}, &out, &errb)
	s := errb.String()
	if code != 1 || !strings.Contains(s, "three_mistakes.conf:12: key match") || !strings.Contains(s, "key colour: unknown key for output plugin") ||
		!strings.Contains(s, "floe: 4 configuration problem(s)") {
		t.Errorf("exit %d, stderr:\n%s", code, s)
	}
	if i, j := strings.Index(s, "three_mistakes.conf:12"), strings.Index(s, "<command line>"); i < 0 || j < i {
		t.Errorf("file problems should come before the command line's:\n%s", s)
	}
}
