package expect

import (
	"context"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var kv = plugintest.KV

func TestResultKey(t *testing.T) {
	rules := []string{"action result_key", "key_exists $kubernetes['pod_name']", "key_not_exists secret",
		"key_val_is_null $nil", "key_val_is_not_null level", "key_val_eq $status 200"}
	cases := []struct {
		in   any
		want bool
	}{
		{kv("kubernetes", kv("pod_name", "p"), "nil", nil, "level", "info", "status", int64(200)), true},
		{kv("kubernetes", kv("pod_name", "p"), "nil", nil, "level", "info", "status", "200"), true},
		{kv("kubernetes", kv("other", "p"), "nil", nil, "level", "info", "status", int64(200)), false},
		{kv("kubernetes", kv("pod_name", "p"), "nil", nil, "level", "info", "status", int64(200), "secret", 1), false},
		{kv("kubernetes", kv("pod_name", "p"), "level", "info", "status", int64(200)), false},
		{kv("kubernetes", kv("pod_name", "p"), "nil", "x", "level", "info", "status", int64(200)), false},
		{kv("kubernetes", kv("pod_name", "p"), "nil", nil, "level", nil, "status", int64(200)), false},
		{kv("kubernetes", kv("pod_name", "p"), "nil", nil, "level", "info", "status", int64(500)), false},
	}
	f := plugintest.NewFilter(t, Spec(), rules...)
	for i, tc := range cases {
		got := plugintest.Bodies(t, plugintest.Run(t, f, plugintest.Chunk(tc.in)))
		wantSuffix := `"matched":false}`
		if tc.want {
			wantSuffix = `"matched":true}`
		}
		if len(got) != 1 || !strings.HasSuffix(got[0], wantSuffix) {
			t.Errorf("case %d: got %v, want %s", i, got, wantSuffix)
		}
	}
	g := plugintest.NewFilter(t, Spec(), "action result_key", "result_key ok", "key_val_eq flag true")
	if got := plugintest.Bodies(t, plugintest.Run(t, g, plugintest.Chunk(kv("flag", true)))); got[0] != `{"flag":true,"ok":true}` {
		t.Errorf("got %v", got)
	}
}

func TestWarnPassesAndExitExits(t *testing.T) {
	f := plugintest.NewFilter(t, Spec(), "key_exists must")
	c := plugintest.Chunk(kv("a", 1), kv("must", 1))
	if out := plugintest.Run(t, f, c); len(out) != 1 || out[0] != c {
		t.Error("warn should pass the chunk on unchanged")
	}
	e := plugintest.NewFilter(t, Spec(), "action exit", "key_exists must").(*Filter)
	code := -1
	e.exit = func(c int) { code = c }
	if _, err := e.FilterChunk(context.Background(), plugintest.Chunk(kv("must", 1))); err != nil || code != -1 {
		t.Fatalf("passing record: err %v, exit %d", err, code)
	}
	if _, err := e.FilterChunk(context.Background(), c); err == nil || code != 255 {
		t.Fatalf("failing record: err %v, exit %d; want exit 255", err, code)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"action warn"}, "at least one rule"},
		{[]string{"key_val_eq onlykey"}, "want KEY VALUE"},
		{[]string{"key_exists $a["}, "bad record accessor"},
	} {
		spec := Spec()
		err := spec.Check(context.Background(), plugin.Settings{}, plugintest.Props(spec, tc.lines...))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.conf:") {
			t.Errorf("%v: err = %v, want %q", tc.lines, err, tc.want)
		}
	}
}
