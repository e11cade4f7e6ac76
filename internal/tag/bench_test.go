package tag

import (
	"strings"
	"testing"
)

var sinkBool bool
var sinkString string

func BenchmarkMatch(b *testing.B) {
	long := "kube.var.log.containers.app-7d9f8b6c5d-x2x4z_default_app-0123456789abcdef.log"
	tricky := strings.Repeat("ab", 20) + strings.Repeat("c", 20) + "abcabd" // late success for a*b*c*d
	for _, c := range []struct{ name, pattern, tag string }{
		{"literal", long, long},
		{"literal_miss", long, long[:len(long)-1] + "x"},
		{"single_star", "kube.*", long},
		{"single_star_suffix", "*.log", long},
		{"multi_star", "kube.*.containers.*_default_*.log", long},
		{"multi_star_backtrack", "a*b*c*d", tricky},
		{"multi_star_backtrack_miss", "a*b*c*e", tricky},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.name != "literal_miss" && c.name != "multi_star_backtrack_miss" && !Match(c.pattern, c.tag) {
				b.Fatalf("Match(%q, %q) = false", c.pattern, c.tag)
			}
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = Match(c.pattern, c.tag)
			}
		})
	}
}

func BenchmarkMatcherRegex(b *testing.B) {
	tag := "kube.var.log.containers.app-7d9f8b6c5d-x2x4z_default_app-0123456789abcdef.log"
	for _, c := range []struct{ name, regex, tag string }{
		{"prefix", "^kube", tag},
		{"prefix_miss", "^app", tag},
		{"captures", `kube\.var\.log\.containers\.(.+)_(.+)_(.+)\.log`, tag},
		{"may_match_empty", `(kube\.)?var`, tag},
	} {
		m, err := NewMatcher("", c.regex)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = m.Match(c.tag)
			}
		})
	}
}

func BenchmarkToSubject(b *testing.B) {
	for _, c := range []struct{ name, tag string }{
		{"plain", "kube.var.log.containers.app-7d9f8b6c5d-x2x4z_default_app.log"},
		{"escaped", "C:\\Program Files\\app.log..日本 *>%"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString = ToSubject(c.tag)
			}
		})
		sub := ToSubject(c.tag)
		b.Run("from_"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString, _ = FromSubject(sub)
			}
		})
	}
}
