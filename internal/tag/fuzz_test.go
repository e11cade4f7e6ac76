package tag

import (
	"strings"
	"testing"
)

func FuzzSubjectRoundTrip(f *testing.F) {
	for _, c := range subjectCases {
		f.Add(c.tag)
		f.Add(c.subject)
	}
	for _, s := range []string{"%2a", "%41", "a..b", "%.%", "%25%", "a.%", "\x00", "a. .b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// s as a tag.
		sub := ToSubject(s)
		if err := validSubject(sub); err != nil {
			t.Fatalf("ToSubject(%q) = %q: %v", s, sub, err)
		}
		back, err := FromSubject(sub)
		if err != nil {
			t.Fatalf("FromSubject(ToSubject(%q) = %q): %v", s, sub, err)
		}
		if back != s {
			t.Fatalf("FromSubject(ToSubject(%q) = %q) = %q", s, sub, back)
		}
		if n, m := strings.Count(s, ".")+1, strings.Count(sub, ".")+1; n != m {
			t.Fatalf("ToSubject(%q) = %q has %d tokens, the tag %d", s, sub, m, n)
		}
		if isPlain(s) && sub != s {
			t.Fatalf("ToSubject(%q) = %q, want it unchanged", s, sub)
		}
		// s as a subject: FromSubject accepts only what ToSubject produces.
		if tag, err := FromSubject(s); err == nil {
			if again := ToSubject(tag); again != s {
				t.Fatalf("FromSubject(%q) = %q, but ToSubject of that = %q", s, tag, again)
			}
		}
	})
}

// fillStars replaces every run of '*' in pattern with the next '|'-separated
// piece of fill (cycling), giving a tag that Match(pattern, tag) must accept.
func fillStars(pattern, fill string) string {
	pieces := strings.Split(fill, "|")
	var b strings.Builder
	n := 0
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '*' {
			b.WriteByte(pattern[i])
			continue
		}
		for i+1 < len(pattern) && pattern[i+1] == '*' {
			i++
		}
		b.WriteString(pieces[n%len(pieces)])
		n++
	}
	return b.String()
}

func FuzzSubjectFilter(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.pattern, c.tag, "x.y|")
	}
	f.Add("app.*", "app.", "")
	f.Add("*", "", "")
	f.Add(".*", ".", "a..b|%")
	f.Add("a.b*c.d", "a.bc.d", "* >| |.")
	f.Fuzz(func(t *testing.T, pattern, tag, fill string) {
		filter := SubjectFilter(pattern)
		if err := validFilter(filter); err != nil {
			t.Fatalf("SubjectFilter(%q) = %q: %v", pattern, filter, err)
		}
		if !strings.Contains(pattern, "*") && filter != ToSubject(pattern) {
			t.Fatalf("SubjectFilter(%q) = %q, want the exact subject %q", pattern, filter, ToSubject(pattern))
		}
		if Match(pattern, tag) && !natsMatch(filter, ToSubject(tag)) {
			t.Fatalf("Match(%q, %q) but filter %q rejects %q", pattern, tag, filter, ToSubject(tag))
		}
		built := fillStars(pattern, fill)
		if !Match(pattern, built) {
			t.Fatalf("Match(%q, %q) = false for a tag built from the pattern", pattern, built)
		}
		if !natsMatch(filter, ToSubject(built)) {
			t.Fatalf("Match(%q, %q) but filter %q rejects %q", pattern, built, filter, ToSubject(built))
		}
	})
}

// FuzzMatch compares Match with the port of Fluent Bit's backtracking
// router_match.
func FuzzMatch(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.pattern, c.tag)
	}
	f.Fuzz(func(t *testing.T, pattern, tag string) {
		if len(pattern) > 64 || len(tag) > 256 || strings.Count(pattern, "*") > 8 {
			return // keep the exponential oracle affordable
		}
		if got, want := Match(pattern, tag), refMatch(pattern, tag); got != want {
			t.Fatalf("Match(%q, %q) = %v, router_match says %v", pattern, tag, got, want)
		}
	})
}
