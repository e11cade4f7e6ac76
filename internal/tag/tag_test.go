package tag

import (
	"strings"
	"testing"
)

// refMatch is a literal port of router_match (src/flb_router.c) without the
// regex part: the end of a Go string plays the role of the C string's NUL.
// It backtracks over every occurrence of the byte after a star, exactly as
// Fluent Bit does, and serves as the oracle for Match.
func refMatch(pattern, tag string) bool {
	at := func(s string, i int) int {
		if i < len(s) {
			return int(s[i])
		}
		return -1
	}
	p, t := 0, 0
	for {
		switch {
		case at(pattern, p) == '*':
			for p++; at(pattern, p) == '*'; p++ {
			}
			if p == len(pattern) {
				return true // '*' at the end of the pattern
			}
			c := pattern[p]
			for {
				i := strings.IndexByte(tag[t:], c)
				if i < 0 {
					return false
				}
				if refMatch(pattern[p:], tag[t+i:]) {
					return true
				}
				t += i + 1
			}
		case at(tag, t) != at(pattern, p):
			return false
		case at(tag, t) == -1:
			return true
		}
		t++
		p++
	}
}

var matchCases = []struct {
	pattern, tag string
	want         bool
}{
	// Compatibility idea 27 and §5.3.
	{"a.*", "a.b.c", true},
	{"a.*", "a.", true},
	{"a.*", "a", false},
	{"a.*", "a.b", true},
	{"a.*", "b.a.x", false},
	{"*.log", "x.y.log", true},
	{"*.log", "x.log", true},
	{"*.log", ".log", true},
	{"*.log", "log", false},
	{"*.log", "x.log.gz", false},
	{"app", "app", true},
	{"app", "app.x", false},
	{"app", "ap", false},
	{"app", "xapp", false},
	{"app*", "app.x", true},
	{"app*", "app", true},
	{"app*", "application", true},
	{"app*", "ap", false},
	{"*", "", true},
	{"*", "anything.at.all", true},
	{"*", ".", true},
	{"", "", true},
	{"", "a", false},
	{"a", "", false},
	{"kube.*", "kube.var.log.containers.app_ns_c-123.log", true},
	// Case-sensitive bytes.
	{"App.*", "app.x", false},
	{"app.*", "APP.x", false},
	{"app.LOG", "app.log", false},
	{"app.LOG", "app.LOG", true},
	// Consecutive stars collapse; "**" is not special.
	{"a**b", "ab", true},
	{"a**b", "axxb", true},
	{"a**b", "a**b", true},
	{"a**b", "a*b.x", false},
	{"**", "", true},
	{"**", "x.y", true},
	{"a***", "a", true},
	{"***.log", "x.log", true},
	// Multiple stars.
	{"a.*.c*", "a.b.c", true},
	{"a.*.c*", "a.b.cd", true},
	{"a.*.c*", "a..c", true},
	{"a.*.c*", "a.c", false},
	{"a.*.c*", "a.x.y.c.z", true},
	{"*.*", "a", false},
	{"*.*", ".", true},
	{"*.*", "a.b.c", true},
	{"*a*", "bab", true},
	{"*a*", "bbb", false},
	{"*a*", "a", true},
	// Backtracking: the first occurrence of the next literal is not always
	// the right one.
	{"a*b*c", "abc", true},
	{"a*b*c", "ac", false},
	{"a*b*c", "abbbc", true},
	{"a*b*c", "acbc", true},
	{"a*b*c", "abcb", false},
	{"a*b*c", "abcbc", true},
	{"a*b*c", "aXbXcXc", true},
	{"a*b*c", "cba", false},
	{"a*b*c", "abcabcx", false},
	{"a*b*c", "ab", false},
	{"a*b*c", "bc", false},
	{"a*b*c", "abcc", true},
	{"*ab", "aab", true},
	{"*ab", "abab", true},
	{"*ab", "aba", false},
	{"a*ab", "aab", true},
	{"a*ab", "ab", false}, // prefix and suffix must not overlap
	{"a*a", "a", false},
	{"a*a", "aa", true},
	{"*aa*aa*", "aaa", false},
	{"*aa*aa*", "aaaa", true},
	{"*x*x*", "xx", true},
	{"*x*x*", "x", false},
	{"*.a.*.a", "x.a.a.a", true},
	{"*.a.*.a", "x.a.a", false},
	{"k.*.c.*.l", "k.n.c.x.c.y.l", true},
	{"k.*.c.*.l", "k.n.c.l", false},
	{"*aab", "aaab", true},
	{"*aab*aac", "aaabaaac", true},
	// No other wildcards.
	{"a?c", "abc", false},
	{"a?c", "a?c", true},
	{"{a,b}", "a", false},
	{"{a,b}", "{a,b}", true},
	{"a[bc]", "ab", false},
	{"a[bc]", "a[bc]", true},
	{"a.>", "a.b", false},
	{"a.>", "a.>", true},
	// Any bytes.
	{"a\x00*", "a\x00b", true},
	{"a\x00", "a", false},
	{"é.*", "é.x", true},
	{"*\xff", "x\xff", true},
	{"my app.*", "my app.x", true},
}

func TestMatch(t *testing.T) {
	for _, c := range matchCases {
		if got := Match(c.pattern, c.tag); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.tag, got, c.want)
		}
		if got := refMatch(c.pattern, c.tag); got != c.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v (test table disagrees with the Fluent Bit port)", c.pattern, c.tag, got, c.want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	for _, c := range matchCases {
		if n := testing.AllocsPerRun(20, func() { Match(c.pattern, c.tag) }); n != 0 {
			t.Errorf("Match(%q, %q) allocates %v times", c.pattern, c.tag, n)
		}
	}
}

func TestInstanceName(t *testing.T) {
	for _, c := range []struct {
		plugin string
		n      int
		want   string
	}{
		{"dummy", 0, "dummy.0"},
		{"cpu", 1, "cpu.1"},
		{"tail", 12, "tail.12"},
		{"stdout", 0, "stdout.0"},
	} {
		if got := InstanceName(c.plugin, c.n); got != c.want {
			t.Errorf("InstanceName(%q, %d) = %q, want %q", c.plugin, c.n, got, c.want)
		}
	}
}
