package tag

import (
	"errors"
	"strings"
	"testing"
)

func mustMatcher(t testing.TB, match, re string) *Matcher {
	t.Helper()
	m, err := NewMatcher(match, re)
	if err != nil {
		t.Fatalf("NewMatcher(%q, %q): %v", match, re, err)
	}
	return m
}

func TestMatcher(t *testing.T) {
	type probe struct {
		tag  string
		want bool
	}
	cases := []struct {
		match, regex string
		probes       []probe
	}{
		// Match only.
		{"a.*", "", []probe{{"a.b.c", true}, {"a.", true}, {"a", false}}},
		{"*.log", "", []probe{{"x.y.log", true}, {"x.log.1", false}}},
		{"app", "", []probe{{"app", true}, {"app.x", false}}},
		{"app*", "", []probe{{"app.x", true}}},
		{"*", "", []probe{{"", true}, {"x", true}}},
		// Match_Regex is anchored at the start only.
		{"", "^app", []probe{{"application", true}, {"app", true}, {"xapp", false}, {"ap", false}, {"", false}}},
		{"", "app", []probe{{"application", true}, {"app.x", true}, {"my.app", false}}},
		{"", "log$", []probe{{"app.log", false}, {"log", true}, {"logs", false}}},
		{"", ".*log$", []probe{{"app.log", true}, {"app.logs", false}}},
		{"", `kube\.var\.log\.containers\.(.+)_(.+)_(.+)\.log`, []probe{
			{"kube.var.log.containers.app_ns_c.log", true},
			{"x.kube.var.log.containers.app_ns_c.log", false},
			{"kube.var.log.containers.app.log", false},
		}},
		{"", "^App", []probe{{"app", false}, {"App", true}}},
		// A zero-length match is no match.
		{"", "x*", []probe{{"app", false}, {"xapp", true}, {"", false}}},
		{"", "a*?", []probe{{"app", false}, {"", false}}},
		{"", "|app", []probe{{"app", false}}},
		{"", "app|", []probe{{"app", true}, {"xyz", false}}},
		{"", "^", []probe{{"app", false}, {"", false}}},
		{"", `\b`, []probe{{"app", false}}},
		{"", "(?:)", []probe{{"app", false}}},
		{"", "a*", []probe{{"", false}, {"b", false}, {"ab", true}}},
		{"", "(a|)b", []probe{{"b", true}, {"ab", true}, {"c", false}}},
		// Ruby: ^ and $ are line anchors.
		{"", "a\n^b", []probe{{"a\nb", true}, {"a\nc", false}}},
		{"", "a$", []probe{{"a\nb", true}, {"ab", false}}},
		{"", "a.b", []probe{{"a\nb", false}, {"a.b", true}, {"axb", true}}},
		// "/re/opts" as in flb_regex.c.
		{"", "/^APP/i", []probe{{"app.x", true}, {"APP", true}, {"xapp", false}}},
		{"", "/app/", []probe{{"app", true}, {"/app/", false}}},
		{"", "/a.b/m", []probe{{"a\nb", true}}},
		{"", "/a.b/mi", []probe{{"A\nB", true}}},
		{"", "/a b # comment\n c/x", []probe{{"abc", true}, {"a b c", false}}},
		{"", `/a\ b[ ]c/x`, []probe{{"a b c", true}, {"abc", false}}},
		{"", "/app/o", []probe{{"/app/o", true}, {"app", false}}}, // 'o' alone: no options, taken as written
		{"", "/app/q", []probe{{"/app/q", true}, {"app", false}}}, // unknown option: taken as written
		{"", "/a/b/i", []probe{{"A/B", true}}},
		{"", "/", []probe{{"/", false}, {"", false}}},
		{"", "//", []probe{{"//", false}, {"x", false}}},
		// An unterminated \Q cannot be wrapped in a group; still start-anchored.
		{"", `\Qa.b`, []probe{{"a.bc", true}, {"a.b", true}, {"xa.b", false}, {"axb", false}}},
		// Match OR Match_Regex.
		{"x.*", "^app", []probe{{"x.y", true}, {"app", true}, {"application.x", true}, {"z", false}, {"x", false}}},
		{"app", "x*", []probe{{"app", true}, {"xy", true}, {"y", false}}},
	}
	for _, c := range cases {
		m := mustMatcher(t, c.match, c.regex)
		if m.Empty() {
			t.Errorf("%v: Empty() = true", m)
		}
		for _, p := range c.probes {
			if got := m.Match(p.tag); got != p.want {
				t.Errorf("NewMatcher(%q, %q).Match(%q) = %v, want %v", c.match, c.regex, p.tag, got, p.want)
			}
		}
	}
}

func TestMatcherEmpty(t *testing.T) {
	m := mustMatcher(t, "", "")
	if !m.Empty() {
		t.Fatal("Empty() = false for a matcher with neither Match nor Match_Regex")
	}
	for _, tag := range []string{"", "a", "app.x", "*"} {
		if m.Match(tag) {
			t.Errorf("empty matcher matched %q", tag)
		}
	}
	if m.SubjectFilters() != nil {
		t.Errorf("SubjectFilters() = %q, want nil", m.SubjectFilters())
	}
	var nilM *Matcher
	if !nilM.Empty() || nilM.Match("x") || nilM.String() == "" || nilM.Pattern() != "" || nilM.Regex() != "" {
		t.Error("nil Matcher must be an empty matcher")
	}
	if mustMatcher(t, "a", "").Empty() || mustMatcher(t, "", "a").Empty() {
		t.Error("Empty() = true with Match or Match_Regex set")
	}
}

// Ruby escapes RE2 lacks are translated, as in grep and the parsers.
func TestMatcherRubyEscapes(t *testing.T) {
	m := mustMatcher(t, "", `\h+\.log\Z`)
	if !m.Match("c0ffee.log") || m.Match("zz.log") {
		t.Errorf("%v: \\h and \\Z not honoured", m)
	}
}

func TestMatcherInvalidRegex(t *testing.T) {
	for _, re := range []string{"(", "a)", "[a", `x\`, `(?<=a)b`, `(a)\1`, `a++`, "/(/i"} {
		m, err := NewMatcher("a.*", re)
		if err == nil {
			t.Errorf("NewMatcher(_, %q) = %v, want an error", re, m)
			continue
		}
		if !strings.Contains(err.Error(), "Match_Regex") || !strings.Contains(err.Error(), "\""+strings.ReplaceAll(re, `\`, `\\`)+"\"") {
			t.Errorf("error %q does not name the regex %q", err, re)
		}
		if errors.Unwrap(err) == nil {
			t.Errorf("error %q does not wrap the compile error", err)
		}
	}
}

func TestMatcherString(t *testing.T) {
	for _, c := range []struct{ match, regex, want string }{
		{"", "", "no Match or Match_Regex"},
		{"app.*", "", `Match "app.*"`},
		{"", "^kube", `Match_Regex "^kube"`},
		{"app.*", "^kube", `Match "app.*" or Match_Regex "^kube"`},
	} {
		m := mustMatcher(t, c.match, c.regex)
		if got := m.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		if m.Pattern() != c.match || m.Regex() != c.regex {
			t.Errorf("Pattern(), Regex() = %q, %q, want %q, %q", m.Pattern(), m.Regex(), c.match, c.regex)
		}
	}
}

func TestMatcherSubjectFilters(t *testing.T) {
	if got := mustMatcher(t, "app.*", "").SubjectFilters(); len(got) != 1 || got[0] != "app.>" {
		t.Errorf("SubjectFilters() = %q, want [app.>]", got)
	}
	if got := mustMatcher(t, "app.*", "^x").SubjectFilters(); len(got) != 1 || got[0] != ">" {
		t.Errorf("SubjectFilters() = %q, want [>]", got)
	}
}

func TestMatcherModes(t *testing.T) {
	for _, c := range []struct {
		regex string
		want  regexMode
	}{
		{"^app", regexAnchoredNonEmpty},
		{"app", regexAnchoredNonEmpty},
		{"a+", regexAnchoredNonEmpty},
		{"a{2,}", regexAnchoredNonEmpty},
		{"(a|bc)d*", regexAnchoredNonEmpty},
		{"x*", regexAnchored},
		{"app|", regexAnchored},
		{"^", regexAnchored},
		{"a{0,3}", regexAnchored},
		{`\Qab`, regexUnanchored},
	} {
		m := mustMatcher(t, "", c.regex)
		if m.reMode != c.want {
			t.Errorf("regex %q: mode %d, want %d", c.regex, m.reMode, c.want)
		}
	}
}

func TestMatcherNoAllocs(t *testing.T) {
	m := mustMatcher(t, "kube.*", `^app\.[a-z]+\.log`)
	for _, tag := range []string{"app.x.log", "kube.var.log", "other"} {
		if n := testing.AllocsPerRun(50, func() { m.Match(tag) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times", tag, n)
		}
	}
}
