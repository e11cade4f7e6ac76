package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParsePluginsFileClassicAndYAML(t *testing.T) {
	dir := t.TempDir()
	classic := filepath.Join(dir, "plugins.conf")
	if err := os.WriteFile(classic, []byte(`[PLUGINS]
    Path /opt/a.so
    path ${PLUGDIR}/b.so
    Other ignored

[plugins]
    PATH /opt/c.so
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		if k == "PLUGDIR" {
			return "/srv", true
		}
		return "", false
	}
	got, err := ParsePluginsFile(classic, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		v    string
		line int
	}{{"/opt/a.so", 2}, {"/srv/b.so", 3}, {"/opt/c.so", 7}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, w := range want {
		if got[i].Value != w.v || got[i].Line != w.line || got[i].File != classic {
			t.Errorf("path %d = %+v, want %s at line %d", i, got[i], w.v, w.line)
		}
	}

	yml := filepath.Join(dir, "plugins.yaml")
	if err := os.WriteFile(yml, []byte("plugins:\n  - /opt/a.so\n  - /opt/sdk-plugin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ParsePluginsFile(yml, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Value != "/opt/sdk-plugin" || got[1].Line != 3 {
		t.Fatalf("yaml paths %+v", got)
	}

	if _, err := ParsePluginsFile(filepath.Join(dir, "missing.conf"), env); err == nil {
		t.Fatal("missing plugins file accepted")
	}
}
