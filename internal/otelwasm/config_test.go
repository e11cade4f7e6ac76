package otelwasm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugin"
)

func props(lines ...string) *plugin.Props {
	spec := &plugin.Spec{Kind: plugin.KindFilter, Name: "otelwasm", Keys: Keys("5s"), AnyKey: true}
	s := &config.Section{Type: "filter", File: "t.conf"}
	for i, l := range lines {
		k, v, _ := strings.Cut(l, " ")
		s.Props = append(s.Props, config.Prop{Key: k, Value: v, File: "t.conf", Line: i + 1})
	}
	return plugin.NewProps(spec, s)
}

func TestConfigJSON(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{nil, "null"},
		{[]string{`plugin_config {"a":[1,"x"]}`}, `{"a":[1,"x"]}`},
		{[]string{"plugin_config.a.b 1.5", "plugin_config.a.c x y", "plugin_config.d false"}, `{"a":{"b":1.5,"c":"x y"},"d":false}`},
		{[]string{"plugin_config.l.0.k v", "plugin_config.l.1 null"}, `{"l":[{"k":"v"},null]}`},
		{[]string{"plugin_config.r x", "plugin_config.r 2"}, `{"r":["x",2]}`},
		{[]string{"plugin_config.n 0x10"}, `{"n":"0x10"}`},
	} {
		got, err := ConfigJSON(props(tc.lines...))
		if err != nil || string(got) != tc.want {
			t.Errorf("%v: got %s, %v; want %s", tc.lines, got, err, tc.want)
		}
	}
	for _, lines := range [][]string{
		{"plugin_config.a 1", "plugin_config.a.b 2"},
		{"plugin_config.a.b 2", "plugin_config.a 1"},
		{"plugin_config.a..b 1"},
		{"plugin_config.a.1 x"},
		{"plugin_config {"},
	} {
		if _, err := ConfigJSON(props(lines...)); err == nil {
			t.Errorf("%v: want an error", lines)
		} else if !strings.Contains(err.Error(), "t.conf:") {
			t.Errorf("%v: error %q does not name the file and line", lines, err)
		}
	}
}

// FuzzConfigJSON: any dotted keys and values give valid JSON or an error
// naming the line, never a panic.
func FuzzConfigJSON(f *testing.F) {
	f.Add("a.b", "1", "a.c", "x")
	f.Add("l.0", "x", "l.1.k", "true")
	f.Add("a", "1", "a.b", "2")
	f.Add("0", "1e999", "", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		if strings.ContainsAny(k1+k2, " \n") {
			return
		}
		got, err := ConfigJSON(props("plugin_config."+k1+" "+v1, "plugin_config."+k2+" "+v2))
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %q", got)
		}
	})
}
