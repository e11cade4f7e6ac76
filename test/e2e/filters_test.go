package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// rewrite_tag re-routes records to a second output, keeps or drops the
// original by KEEP, and a rule matching its own output tag does not loop:
// the re-emitted records re-enter the filter stage under their new tag
// (record_modifier tags them there) and skip the filter that emitted them.
func TestRewriteTagReroutesToSecondOutput(t *testing.T) {
	dir := t.TempDir()
	app, alerts := filepath.Join(dir, "app"), filepath.Join(dir, "alerts")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush      0.2
    Log_Level  info

[INPUT]
    Name     dummy
    Tag      app.web
    Dummy    {"level":"error","msg":"boom"}
    Samples  5
    Rate     20

[INPUT]
    Name     dummy
    Tag      app.web
    Dummy    {"level":"info","msg":"ok"}
    Samples  5
    Rate     20

[INPUT]
    Name     dummy
    Tag      app.keep
    Dummy    {"level":"warn","msg":"careful"}
    Samples  5
    Rate     20

[FILTER]
    Name          rewrite_tag
    Match         app.*
    Rule          $level ^(error)$ alerts.$TAG[1].$1 false
    Rule          $level ^(warn)$  alerts.$TAG[1].$1 true
    Emitter_Name  re_emitted

[FILTER]
    Name   rewrite_tag
    Match  alerts.*
    Rule   $msg . alerts.$TAG[1].again false

[FILTER]
    Name    record_modifier
    Match   alerts.*
    Record  routed yes

[OUTPUT]
    Name    file
    Match   app.*
    Path    %s
    Format  plain
    Mkdir   on

[OUTPUT]
    Name    file
    Match   alerts.*
    Path    %s
    Format  plain
    Mkdir   on
`, app, alerts))
	p := startFloe(t, "floe", nil, "-c", cfg, "--storage-path", filepath.Join(dir, "storage"))
	want := map[string]string{
		"app/app.web":              strings.Repeat(`{"level":"info","msg":"ok"}`+"\n", 5),
		"app/app.keep":             strings.Repeat(`{"level":"warn","msg":"careful"}`+"\n", 5),
		"alerts/alerts.web.again":  strings.Repeat(`{"level":"error","msg":"boom","routed":"yes"}`+"\n", 5),
		"alerts/alerts.keep.again": strings.Repeat(`{"level":"warn","msg":"careful","routed":"yes"}`+"\n", 5),
	}
	files := func() map[string]string {
		got := map[string]string{}
		for _, d := range []string{app, alerts} {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(d, e.Name()))
				got[filepath.Base(d)+"/"+e.Name()] = string(b)
			}
		}
		return got
	}
	show := func(m map[string]string) string {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %d lines\n", k, strings.Count(m[k], "\n"))
		}
		return b.String()
	}
	eventually(t, 60*time.Second, "every record in its file", func() (bool, string) {
		got := files()
		for k, v := range want {
			if got[k] != v {
				return false, show(got)
			}
		}
		return true, ""
	})
	// A loop would keep adding records and files: wait, then compare again.
	time.Sleep(2 * time.Second)
	got := files()
	if len(got) != len(want) {
		t.Errorf("files:\n%swant only %d", show(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s:\n%s\nwant\n%s", k, got[k], v)
		}
	}
	if err := p.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}
