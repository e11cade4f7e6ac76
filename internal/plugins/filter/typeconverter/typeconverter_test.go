package typeconverter

import (
	"context"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var kv = plugintest.KV

func TestDocumentedExample(t *testing.T) {
	f := plugintest.NewFilter(t, Spec(), "uint_key Mem.total Mem.total_str string",
		"uint_key Mem.used  Mem.used_str  string", "uint_key Mem.free  Mem.free_str  string")
	in := kv("Mem.total", int64(8146052), "Mem.used", int64(4513564), "Mem.free", int64(3632488),
		"Swap.total", int64(1918356), "Swap.used", int64(0), "Swap.free", int64(1918356))
	got := plugintest.Bodies(t, plugintest.Run(t, f, plugintest.Chunk(in)))
	want := `{"Mem.total":8146052,"Mem.used":4513564,"Mem.free":3632488,"Swap.total":1918356,"Swap.used":0,"Swap.free":1918356,` +
		`"Mem.total_str":"8146052","Mem.used_str":"4513564","Mem.free_str":"3632488"}`
	if len(got) != 1 || got[0] != want {
		t.Errorf("got  %v\nwant %s", got, want)
	}
}

func TestConversions(t *testing.T) {
	cases := []struct {
		rule string
		in   any
		want string // rendered value of "out", or "" when no key is added
	}{
		{"int_key v out string", int64(-42), `"-42"`},
		{"int_key v out float", int64(3), `3`},
		{"int_key v out uint", int64(-1), `18446744073709551615`},
		{"int_key v out string", "42", ``},
		{"uint_key v out int", int64(7), `7`},
		{"float_key v out string", 2.0, `"2.0"`},
		{"float_key v out string", 3.14, `"3.14"`},
		{"float_key v out int", -2.7, `-2`},
		{"float_key v out uint", 2.7, `2`},
		{"float_key v out string", int64(2), ``},
		{"str_key v out int", " 12abc", `12`},
		{"str_key v out int", "abc", ``},
		{"str_key v out int", "99999999999999999999", `9223372036854775807`},
		{"str_key v out uint", "15", `15`},
		{"str_key v out hex", "0x1f", `31`},
		{"str_key v out hex", "ff", `255`},
		{"str_key v out hex", "zz", ``},
		{"str_key v out float", "1.5e3xyz", `1500`},
		{"str_key v out float", "abc", `0`},
		{"str_key v out bool", "TRUE", `true`},
		{"str_key v out bool", "falsey", `false`},
		{"str_key v out bool", "yes", ``},
		{"bool_key v out string", true, `"true"`},
		{"str_key $nested['v'] out int", "5", ``},
	}
	for _, tc := range cases {
		f := plugintest.NewFilter(t, Spec(), tc.rule)
		got := plugintest.Bodies(t, plugintest.Run(t, f, plugintest.Chunk(kv("v", tc.in))))
		wantBody := `{"v":` + plugintest.Render(tc.in) + `}`
		if tc.want != "" {
			wantBody = `{"v":` + plugintest.Render(tc.in) + `,"out":` + tc.want + `}`
		}
		if len(got) != 1 || got[0] != wantBody {
			t.Errorf("%s on %v: got %v, want %s", tc.rule, tc.in, got, wantBody)
		}
	}
	f := plugintest.NewFilter(t, Spec(), "str_key $nested['v'] out int")
	if got := plugintest.Bodies(t, plugintest.Run(t, f, plugintest.Chunk(kv("nested", kv("v", "5"))))); got[0] != `{"nested":{"v":"5"},"out":5}` {
		t.Errorf("record accessor source: %v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"", "at least one"},
		{"int_key a b", "want SRC_KEY DST_KEY TYPE"},
		{"int_key a b text", "unknown type"},
		{"str_key a b string", "cannot convert to string"},
		{"bool_key a b int", "cannot convert to int"},
	} {
		spec := Spec()
		var lines []string
		if tc.line != "" {
			lines = append(lines, tc.line)
		}
		err := spec.Check(context.Background(), plugin.Settings{}, plugintest.Props(spec, lines...))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.conf:") {
			t.Errorf("%q: err = %v, want %q", tc.line, err, tc.want)
		}
	}
}
