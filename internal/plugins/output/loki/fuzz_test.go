package loki

import "testing"

// FuzzLabels checks the labels syntax parser: an error or labels with
// valid names, never a panic.
func FuzzLabels(f *testing.F) {
	for _, s := range []string{"job=fluentbit, $sub['stream']", "a=$b[\"c\"]['d']", "$", "x=", "=y", "$a[", "$a['b']x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := parseLabels(s, true)
		if err != nil {
			return
		}
		for _, l := range ls {
			if l.name == "" || sanitize(l.name) != l.name {
				t.Fatalf("%q gave invalid label name %q", s, l.name)
			}
			if l.path != nil && len(l.path) == 0 {
				t.Fatalf("%q gave an empty path", s)
			}
		}
	})
}
