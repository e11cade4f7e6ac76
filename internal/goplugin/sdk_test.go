package goplugin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

var (
	sdkOnce sync.Once
	sdkBin  string
	sdkErr  error
	sdkDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sdkDir != "" {
		os.RemoveAll(sdkDir)
	}
	os.Exit(code)
}

// sdkTestPlugin builds pkg/pluginsdk/testdata/sdkplugin once per test binary.
func sdkTestPlugin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a plugin process; run without -short")
	}
	sdkOnce.Do(func() {
		if sdkDir, sdkErr = os.MkdirTemp("", "floe-goplugin-test-"); sdkErr != nil {
			return
		}
		sdkBin = filepath.Join(sdkDir, "sdkplugin")
		cmd := exec.Command("go", "build", "-o", sdkBin, "../../pkg/pluginsdk/testdata/sdkplugin")
		if out, err := cmd.CombinedOutput(); err != nil {
			sdkErr = fmt.Errorf("building the SDK test plugin: %v\n%s", err, out)
		}
	})
	if sdkErr != nil {
		t.Fatal(sdkErr)
	}
	return sdkBin
}

// sdkRecords reads the plugin's output file: how often each seq arrived,
// and the exit lines.
func sdkRecords(t *testing.T, path string) (seqs map[int]int, exits []map[string]any) {
	t.Helper()
	seqs = map[int]int{}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		if _, ok := l["exit"]; ok {
			exits = append(exits, l)
			continue
		}
		rec, _ := l["record"].(map[string]any)
		seq, _ := rec["seq"].(float64)
		seqs[int(seq)]++
	}
	return seqs, exits
}

// The SDK plugin process dies in the middle of a stream — os.Exit or a
// SIGKILL, in its third flush, before writing anything: Floe restarts it,
// initialises the instance again and flushes the chunk in flight again, so
// every Flush answers OK, every record arrives once, and the restart is
// counted in the plugin's metrics.
func TestSDKPluginProcessCrashRestartedAndChunkRetried(t *testing.T) {
	bin := sdkTestPlugin(t)
	for _, how := range []string{"exit", "kill"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir := t.TempDir()
			out, marker := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "crashed")
			spec, err := Load(ctx, bin)
			if err != nil {
				t.Fatal(err)
			}
			reg := telemetry.NewRegistry("test")
			set := plugin.Settings{Name: spec.Name + ".0", Telemetry: reg}
			o, err := spec.NewOutput(ctx, set, plugintest.Props(spec, "out "+out, "crash_once "+marker, "crash_how "+how))
			if err != nil {
				t.Fatal(err)
			}
			const chunks, per = 6, 10
			for i := 0; i < chunks; i++ {
				if err := o.Flush(ctx, outputtest.Chunk(int64(i*per), per)); err != nil {
					t.Fatalf("flush %d: %v", i, err)
				}
			}
			if _, err := os.Stat(marker); err != nil {
				t.Fatalf("the plugin never crashed: %v", err)
			}
			if got := reg.GoPlugin(spec.Name).Restarts.Load(); got != 1 {
				t.Errorf("restarts metric %d, want 1", got)
			}
			if err := plugin.Close(ctx, o); err != nil {
				t.Fatal(err)
			}
			seqs, exits := sdkRecords(t, out)
			for s := 0; s < chunks*per; s++ {
				if seqs[s] != 1 {
					t.Errorf("record %d arrived %d times", s, seqs[s])
				}
			}
			if len(seqs) != chunks*per {
				t.Errorf("%d distinct records, want %d", len(seqs), chunks*per)
			}
			if len(exits) != 1 {
				t.Errorf("exit ran %d times, want once", len(exits))
			}
		})
	}
}

// A plugin's declared key types and allowed values become Floe's key
// checks; a key of a type Floe does not know, or a default its own type
// rejects, makes Floe refuse the plugin with a message naming the key.
func TestSDKPluginDeclaredKeyTypes(t *testing.T) {
	bin := sdkTestPlugin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec, err := Load(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]plugin.Key{}
	for _, k := range spec.Keys {
		got[k.Name] = k
	}
	if k := got["panic_first"]; k.Type != plugin.Bool || k.Default != "off" {
		t.Errorf("panic_first: %+v, want a bool defaulting to off", k)
	}
	if k := got["rendezvous_wait"]; k.Type != plugin.Seconds {
		t.Errorf("rendezvous_wait: %+v, want a time", k)
	}
	if k := got["crash_how"]; k.Type != plugin.String || strings.Join(k.Enum, ",") != "exit,kill" {
		t.Errorf("crash_how: %+v, want a string of exit or kill", k)
	}
	for _, c := range []struct{ env, want string }{
		{"FLOE_TEST_BAD_KEY_TYPE", `key "colour" has type "colour"; the types are string, int, bool, float, size and duration`},
		{"FLOE_TEST_BAD_DEFAULT", `default of key "batch": "lots" is not an integer`},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, "1")
			_, err := Load(ctx, bin)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, c.want)
			}
		})
	}
}
