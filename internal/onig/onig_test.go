package onig

import "testing"

func TestCompile(t *testing.T) {
	type probe struct {
		s     string
		match bool
	}
	cases := []struct {
		pattern string
		err     bool
		probes  []probe
	}{
		{`abc`, false, []probe{{"xabcx", true}, {"ab", false}}},
		{`^b`, false, []probe{{"a\nb", true}, {"ab", false}, {"b", true}}},
		{`a$`, false, []probe{{"a\nb", true}, {"ab", false}, {"ba", true}}},
		{`/^A.$/im`, false, []probe{{"x\na\n", true}, {"a\n", true}, {"ab", true}, {"abc", false}}},
		{`\Aa`, false, []probe{{"b\na", false}, {"ab", true}}},
		{`a.b`, false, []probe{{"a\nb", false}, {"axb", true}}},
		{`/a.b/m`, false, []probe{{"a\nb", true}}},
		{`/ABC/i`, false, []probe{{"xabc", true}}},
		{`/A B # comment` + "\n" + `C/x`, false, []probe{{"ABC", true}, {"A B C", false}}},
		{`/[ ]x/x`, false, []probe{{" x", true}}},
		{`/a/io`, false, []probe{{"A", true}}},
		{`/a/`, false, []probe{{"a", true}, {"/a/", true}}},
		{`//`, false, []probe{{"", true}}},
		{`/a/o`, false, []probe{{"a", false}, {"/a/o", true}}},
		{`/a/q`, false, []probe{{"a", false}, {"x/a/q", true}}},
		{`a/i`, false, []probe{{"a/i", true}, {"A", false}}},
		{`/a/b/i`, false, []probe{{"A/B", true}}},
		{`\h+\H`, false, []probe{{"0fz", true}, {"zz", false}}},
		{`[\h-]+$`, false, []probe{{"ab-12", true}}},
		{`ab\Z`, false, []probe{{"ab\n", true}, {"ab", true}, {"abc", false}}},
		{`\e`, false, []probe{{"\x1b", true}}},
		{`(?m)a.b`, false, []probe{{"a\nb", true}}},
		{`(?i-m:A.B)`, false, []probe{{"a\nb", false}, {"axb", true}}},
		{`(?<year>\d{4})-\d\d`, false, []probe{{"2024-05", true}}},
		{`[]a]`, false, []probe{{"]", true}}},
		{`[^]a]`, false, []probe{{"]", false}, {"b", true}}},
		{`\Q(?m)\E`, false, []probe{{"(?m)", true}}},
		{`(a`, true, nil},
		{`a(?=b)`, true, nil},
		{`(a)\1`, true, nil},
		{`a++`, true, nil},
		{`***REDACTED***`, true, nil},
		{`/`, true, nil},
		{`(?x)a b`, true, nil},
		{`[\H]`, true, nil},
	}
	for _, tc := range cases {
		re, err := Compile(tc.pattern)
		if tc.err {
			if err == nil {
				t.Errorf("%q: want an error, compiled to %v", tc.pattern, re)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.pattern, err)
			continue
		}
		for _, p := range tc.probes {
			if re.MatchString(p.s) != p.match {
				t.Errorf("%q on %q: match = %v (compiled %v)", tc.pattern, p.s, !p.match, re)
			}
		}
	}
}
