package rewritetag

import (
	"testing"

	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// FuzzRule: any rule text is either rejected or yields a filter whose new
// tags expand without panicking on any record.
func FuzzRule(f *testing.F) {
	for _, s := range []string{
		`$tool ^(fluent)$ from.$TAG.new.$tool.$sub['s1']['s2'].out false`,
		`$log ^(\w+)\s(\w+)$ $TAG[4].$2.$1.$0 true`,
		`$a . $TAG[ false`, `$a . $ true`, `$a . $a[' true`, `$a . $a[1][x] true`, `$a . $9$TAG[99999999999] true`,
	} {
		f.Add(s, "a.b.c", "fluent")
	}
	f.Fuzz(func(t *testing.T, ruleText, tag, value string) {
		r, err := parseRule(ruleText)
		if err != nil {
			return
		}
		body := plugintest.KV("tool", value, "log", value, "a", value, "sub", plugintest.KV("s1", plugintest.KV("s2", value))).AppendMsgpack(nil)
		groups := r.re.FindSubmatch([]byte(value))
		_ = newTag(&r, tag, body, groups)
	})
}
