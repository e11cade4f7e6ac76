package config

import (
	"strings"
	"testing"
)

func TestYAMLPluginConfigFlattened(t *testing.T) {
	doc := `pipeline:
  filters:
    - name: otelwasm
      plugin_config:
        a:
          b: 1
          c: "2"
        l:
          - x
          - k: v
`
	cfg, err := ParseYAML("t.yaml", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range cfg.Filters[0].Props {
		got = append(got, p.Key+"="+p.Value)
	}
	want := `name=otelwasm plugin_config.a.b=1 plugin_config.a.c="2" plugin_config.l.0=x plugin_config.l.1.k=v`
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	// Other keys keep refusing maps.
	if _, err := ParseYAML("t.yaml", []byte("pipeline:\n  outputs:\n    - name: x\n      header:\n        a: b\n"), nil); err == nil {
		t.Fatal("a map value for another key must stay an error")
	}
}
