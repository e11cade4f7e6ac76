package tag

import (
	"errors"
	"strings"
	"testing"
)

var subjectCases = []struct{ tag, subject string }{
	{"kube.var.log.app", "kube.var.log.app"},
	{"app", "app"},
	{"dummy.0", "dummy.0"},
	{"$SYS.x", "$SYS.x"},
	{"a-b_c:d/e@f~g!h#i", "a-b_c:d/e@f~g!h#i"},
	{"kube.var.log.containers.app_ns_c-0123456789abcdef.log", "kube.var.log.containers.app_ns_c-0123456789abcdef.log"},
	// Empty tokens.
	{"", "%"},
	{".", "%.%"},
	{"..", "%.%.%"},
	{"a..b", "a.%.b"},
	{".a", "%.a"},
	{"a.", "a.%"},
	// Bytes NATS cannot carry or that would be ambiguous.
	{"my app", "my%20app"},
	{"a\tb", "a%09b"},
	{"a\r\nb", "a%0D%0Ab"},
	{"a.b\x00", "a.b%00"},
	{"a*", "a%2A"},
	{"*", "%2A"},
	{"a.*.b", "a.%2A.b"},
	{">", "%3E"},
	{"a.>", "a.%3E"},
	{"%", "%25"},
	{"100%.x", "100%25.x"},
	{"%20", "%2520"},
	{"\x7f", "%7F"},
	{"é", "%C3%A9"},
	{"日本.log", "%E6%97%A5%E6%9C%AC.log"},
	{"\xff\xfe", "%FF%FE"}, // invalid UTF-8
	{" . ", "%20.%20"},
}

func TestToSubject(t *testing.T) {
	for _, c := range subjectCases {
		got := ToSubject(c.tag)
		if got != c.subject {
			t.Errorf("ToSubject(%q) = %q, want %q", c.tag, got, c.subject)
		}
		if err := validSubject(got); err != nil {
			t.Errorf("ToSubject(%q) = %q: %v", c.tag, got, err)
		}
		back, err := FromSubject(c.subject)
		if err != nil || back != c.tag {
			t.Errorf("FromSubject(%q) = %q, %v, want %q", c.subject, back, err, c.tag)
		}
	}
}

func TestToSubjectPlainDoesNotAllocate(t *testing.T) {
	tag := "kube.var.log.containers.app"
	if n := testing.AllocsPerRun(100, func() { ToSubject(tag) }); n != 0 {
		t.Errorf("ToSubject(plain) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = FromSubject(tag) }); n != 0 {
		t.Errorf("FromSubject(plain) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { ToSubject("my app.log") }); n != 1 {
		t.Errorf("ToSubject(escaped) allocates %v times, want 1", n)
	}
}

func TestFromSubjectErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"a..b",
		".a",
		"a.",
		".",
		"a b",
		"a\tb",
		"a*",
		"*",
		">",
		"a.>",
		"é",
		"\x7f",
		"%2",
		"a%",
		"%%",
		"%.%%",
		"%2a", // lower-case hex
		"%41", // 'A' needs no escape
		"%2E", // '.' is always a separator
		"%G0",
		"a.%2",
		"%25%",
	} {
		tag, err := FromSubject(s)
		if err == nil {
			t.Errorf("FromSubject(%q) = %q, want an error", s, tag)
			continue
		}
		if !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("FromSubject(%q) error %v does not wrap ErrInvalidSubject", s, err)
		}
	}
}

func TestSubjectFilter(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{"app.*", "app.>"},
		{"*", ">"},
		{"**", ">"},
		{"a.b", "a.b"},
		{"kube.var.log.app", "kube.var.log.app"},
		{"*.log", ">"},
		{"app*", ">"},
		{"kube.var.*.x", "kube.var.>"},
		{"kube.var.log.app*", "kube.var.log.>"},
		{"a.b*c.d", "a.>"},
		{"a.*.c*", "a.>"},
		{"a.b.*", "a.b.>"},
		{"my app.*", "my%20app.>"},
		{"100%.x", "100%25.x"},
		{"", "%"},
		{"a..*", "a.%.>"},
		{".*", "%.>"},
		{"a.", "a.%"},
		{"a?c", "a?c"},
		{"é.*", "%C3%A9.>"},
	} {
		got := SubjectFilter(c.pattern)
		if got != c.want {
			t.Errorf("SubjectFilter(%q) = %q, want %q", c.pattern, got, c.want)
		}
		if err := validFilter(got); err != nil {
			t.Errorf("SubjectFilter(%q) = %q: %v", c.pattern, got, err)
		}
	}
}

// TestSubjectFilterCases checks the superset property on the Match table.
func TestSubjectFilterCases(t *testing.T) {
	for _, c := range matchCases {
		if !c.want {
			continue
		}
		f, s := SubjectFilter(c.pattern), ToSubject(c.tag)
		if !natsMatch(f, s) {
			t.Errorf("Match(%q, %q) but filter %q rejects subject %q", c.pattern, c.tag, f, s)
		}
	}
}

func TestNATSHelpers(t *testing.T) {
	for _, c := range []struct {
		filter, subject string
		want            bool
	}{
		{">", "a", true},
		{">", "a.b.c", true},
		{"a.>", "a", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"*.b", "a.b", true},
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
	} {
		if got := natsMatch(c.filter, c.subject); got != c.want {
			t.Errorf("natsMatch(%q, %q) = %v, want %v", c.filter, c.subject, got, c.want)
		}
	}
	for _, bad := range []string{"", "a..b", ".a", "a.", "a b", "a.*", "a.>", "a*", "é", "a\x00"} {
		if validSubject(bad) == nil {
			t.Errorf("validSubject(%q) = nil, want an error", bad)
		}
	}
	for _, bad := range []string{"", "a..b", ">.a", "a*.b", "a.b>", "a b.>"} {
		if validFilter(bad) == nil {
			t.Errorf("validFilter(%q) = nil, want an error", bad)
		}
	}
}

// natsMatch is a tiny model of NATS subject filtering: tokens split on '.',
// "*" matches exactly one token, ">" (last) matches one or more tokens.
func natsMatch(filter, subject string) bool {
	ft := strings.Split(filter, ".")
	st := strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return i == len(ft)-1 && len(st) > i
		}
		if i >= len(st) {
			return false
		}
		if f != "*" && f != st[i] {
			return false
		}
	}
	return len(st) == len(ft)
}

// validSubject checks that s is a literal NATS subject (tail) as Floe wants
// it: non-empty tokens of printable ASCII, no white space, no wildcards.
func validSubject(s string) error {
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return errors.New("empty token")
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c <= ' ' || c >= 0x7f {
				return errors.New("byte outside printable ASCII")
			}
			if c == '*' || c == '>' {
				return errors.New("wildcard character")
			}
		}
	}
	return nil
}

// validFilter checks that s is a NATS filter: like a subject, except that a
// token may be exactly "*", and the last token exactly ">".
func validFilter(s string) error {
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		if tok == "*" || (tok == ">" && i == len(toks)-1) {
			continue
		}
		if err := validSubject(tok); err != nil {
			return err
		}
	}
	return nil
}
