package e2e

import (
	"encoding/json"
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

// A Java stack trace appended to a tailed file in three pieces, seconds
// apart (three chunks), comes out of the multiline filter as one record; a
// trace nobody continues is released after flush_ms; a Lua filter after it
// sees the joined record.
func TestMultilineFilterJoinsTraceAcrossChunks(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "app.log")
	out := filepath.Join(dir, "out")
	writeFile(t, logf, "")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush      0.2
    Log_Level  info

[INPUT]
    Name              tail
    Path              %s
    Tag               app
    Read_From_Head    on
    Refresh_Interval  1

[FILTER]
    Name                   multiline
    Match                  app
    multiline.key_content  log
    multiline.parser       java,python
    flush_ms               1500

[FILTER]
    Name   lua
    Match  app
    call   lines
    code   function lines(tag, ts, r) local _, n = string.gsub(r["log"], "\n", "") r["lines"] = n return 1, ts, r end

[OUTPUT]
    Name    file
    Match   app
    Path    %s
    Format  plain
    Mkdir   on
`, logf, out))
	p := startFloe(t, "floe", nil, "-c", cfg, "--storage-path", filepath.Join(dir, "storage"))
	trace := []string{
		`Dec 14 06:41:08 Exception in thread "main" java.lang.RuntimeException: Something has gone wrong, aborting!`,
		`    at com.myproject.module.MyProject.badMethod(MyProject.java:22)`,
		`    at com.myproject.module.MyProject.oneMoreMethod(MyProject.java:18)`,
		`    at com.myproject.module.MyProject.anotherMethod(MyProject.java:14)`,
		`    at com.myproject.module.MyProject.someMethod(MyProject.java:10)`,
		`    at com.myproject.module.MyProject.main(MyProject.java:6)`,
	}
	appendLines := func(lines ...string) {
		f, err := os.OpenFile(logf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		b, _ := os.ReadFile(filepath.Join(out, "app"))
		return string(b)
	}
	appendLines("single line...", trace[0], trace[1])
	time.Sleep(700 * time.Millisecond)
	appendLines(trace[2], trace[3])
	time.Sleep(700 * time.Millisecond)
	appendLines(trace[4], trace[5], "another line...")
	joined, _ := json.Marshal(strings.Join(trace, "\n") + "\n")
	want := `{"log":"single line...","lines":0}` + "\n" +
		`{"log":` + string(joined) + `,"lines":6}` + "\n" +
		`{"log":"another line...","lines":0}` + "\n"
	eventually(t, 40*time.Second, "the joined trace", func() (bool, string) {
		return read() == want, read()
	})
	// An open trace with no next line is released after flush_ms.
	appendLines(trace[0], trace[1])
	eventually(t, 40*time.Second, "the released trace", func() (bool, string) {
		return strings.Count(read(), "\n") == 4, read()
	})
	if err := p.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}
