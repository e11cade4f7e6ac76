package app

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugins/all"
)

// `floe validate` (config.Load, then Check) loads an SDK plugin named in a
// plugins_file and checks its [OUTPUT] sections against the keys the plugin
// declared: an unknown key, a value that is not of the declared type and
// one outside the declared values are each reported at their file and line.
func TestValidateReportsBadSDKPluginProperties(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a plugin process; run without -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sdkplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "../../pkg/pluginsdk/testdata/sdkplugin").CombinedOutput(); err != nil {
		t.Fatalf("building the SDK test plugin: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugins.conf"), []byte("[PLUGINS]\n    Path "+bin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "floe.conf")
	text := "" +
		"[SERVICE]\n" + // 1
		"    plugins_file plugins.conf\n" + // 2
		"[INPUT]\n" + // 3
		"    Name dummy\n" + // 4
		"[OUTPUT]\n" + // 5
		"    Name        sdktest\n" + // 6
		"    Match       *\n" + // 7
		"    Out         /dev/null\n" + // 8
		"    Panic_First maybe\n" + // 9: not a bool
		"    Colour      red\n" + // 10: not a key of the plugin
		"    Crash_How   explode\n" + // 11: not an allowed value
		"    Workers     2\n" + // 12: core key, fine
		"[OUTPUT]\n" + // 13
		"    Name            sdktest\n" + // 14
		"    Match           *\n" + // 15
		"    Out             /dev/null\n" + // 16
		"    Rendezvous      on\n" + // 17
		"    Rendezvous_Wait 0.5\n" + // 18
		"    Crash_How       KILL\n" // 19
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, loadErr := config.Load(conf)
	_, err := Check(cfg, loadErr, all.Registry())
	if err == nil {
		t.Fatal("floe validate accepted bad properties of an SDK plugin")
	}
	want := []string{
		fmt.Sprintf(`%s:9: key panic_first: "maybe" is not a boolean`, conf),
		fmt.Sprintf(`%s:10: key colour: unknown key for output plugin "sdktest"`, conf),
		fmt.Sprintf(`%s:11: key crash_how: "explode" is not one of exit, kill`, conf),
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(strings.ToLower(lines[i]), strings.ToLower(w)) {
			t.Errorf("problem %d:\n  %s\nwant it to start with\n  %s", i+1, lines[i], w)
		}
	}
}
