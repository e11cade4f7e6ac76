package multiline

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
)

// feedFile runs every line of a testdata file through a stream of the named
// parsers and returns the records, flushing what is pending at the end.
func feedFile(t *testing.T, file string, parsers ...*Parser) []Record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return feed(data, parsers...)
}

func feed(data []byte, parsers ...*Parser) []Record {
	s := NewStream(parsers, Options{})
	var out []Record
	emit := func(r Record) { out = append(out, r) }
	var off int64
	now := time.Unix(1700000000, 0)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line, n := data, len(data)
		if i >= 0 {
			line, n = data[:i], i+1
		}
		s.Feed(line, event.Time{Sec: 1}, off, off+int64(n), now, emit)
		off += int64(n)
		data = data[n:]
	}
	s.FlushAll(emit)
	if _, ok := s.Pending(); ok {
		panic("lines pending after FlushAll")
	}
	return out
}

func builtin(t *testing.T, name string) *Parser {
	t.Helper()
	p, ok := Builtin(name)
	if !ok {
		t.Fatalf("no built-in %q", name)
	}
	return p
}

func texts(rs []Record) []string {
	var out []string
	for _, r := range rs {
		if r.Body != nil {
			v, _ := r.Body.Get("log")
			out = append(out, v.(string))
			continue
		}
		out = append(out, string(r.Text))
	}
	return out
}

func expectTexts(t *testing.T, got []Record, want ...string) {
	t.Helper()
	g := texts(got)
	if len(g) != len(want) {
		t.Fatalf("got %d records, want %d:\n%q", len(g), len(want), g)
	}
	for i := range want {
		if g[i] != want[i] {
			t.Errorf("record %d:\n got %q\nwant %q", i, g[i], want[i])
		}
	}
}

// Records must tile the input: each byte range follows the previous one.
func expectContiguous(t *testing.T, rs []Record, size int64) {
	t.Helper()
	var off int64
	for i, r := range rs {
		if r.Start != off {
			t.Fatalf("record %d starts at %d, previous ended at %d", i, r.Start, off)
		}
		off = r.End
	}
	if off != size {
		t.Fatalf("records end at %d, input is %d bytes", off, size)
	}
}

func TestJavaStackTraces(t *testing.T) {
	rs := feedFile(t, "java.log", builtin(t, "java"))
	expectTexts(t, rs,
		"2024-03-01 10:00:00 INFO starting server\n",
		"Exception in thread \"main\" java.lang.IllegalStateException: boom\n"+
			"\tat com.example.App.run(App.java:42)\n"+
			"\tat com.example.App.main(App.java:10)\n"+
			"Caused by: java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"s\" is null\n"+
			"\tat com.example.Util.len(Util.java:7)\n"+
			"\tat com.example.App.run(App.java:40)\n"+
			"\t... 1 more\n",
		"2024-03-01 10:00:01 INFO next line\n",
		"java.lang.RuntimeException: second\n\tat com.example.B.b(B.java:1)\n",
		"javax.servlet.ServletException: third\n\tat com.example.C.c(C.java:2)\n\t... 23 common frames omitted\n",
		"2024-03-01 10:00:02 INFO done\n",
	)
	fi, _ := os.Stat("testdata/java.log")
	expectContiguous(t, rs, fi.Size())
	if rs[1].Lines != 7 {
		t.Errorf("first trace has %d lines, want 7", rs[1].Lines)
	}
}

func TestPythonTraceback(t *testing.T) {
	rs := feedFile(t, "python.log", builtin(t, "python"))
	expectTexts(t, rs,
		"INFO:root:before\n",
		"Traceback (most recent call last):\n"+
			"  File \"/app/main.py\", line 12, in <module>\n"+
			"    main()\n"+
			"  File \"/app/main.py\", line 8, in main\n"+
			"    raise ValueError(\"bad value\")\n"+
			"ValueError: bad value\n",
		"INFO:root:after\n",
	)
}

func TestGoPanic(t *testing.T) {
	rs := feedFile(t, "go.log", builtin(t, "go"))
	expectTexts(t, rs,
		"2024/03/01 10:00:00 serving\n",
		"panic: runtime error: index out of range [5] with length 3\n\n"+
			"goroutine 1 [running]:\n"+
			"main.lookup(...)\n"+
			"\t/app/main.go:12\n"+
			"main.main()\n"+
			"\t/app/main.go:20 +0x1d\n",
		"exit status 2\n",
		"2024/03/01 10:00:01 restarted\n",
	)
}

func TestDockerPartialLines(t *testing.T) {
	rs := feedFile(t, "docker.log", builtin(t, "docker"))
	expectTexts(t, rs,
		"single stderr line\n",
		"part one of a long line and part two\n",
		"whole line\n",
	)
	r := rs[1]
	if s, _ := r.Body.Get("stream"); s != "stdout" {
		t.Errorf("stream = %v", s)
	}
	want := time.Date(2024, 3, 1, 10, 0, 0, 123456789, time.UTC)
	if !r.Time.Std().Equal(want) {
		t.Errorf("time = %v, want the first part's %v", r.Time.Std().UTC(), want)
	}
	if r.Start != 0 || r.Lines != 2 {
		t.Errorf("joined record covers start %d, %d lines", r.Start, r.Lines)
	}
}

func TestCRIPartialLines(t *testing.T) {
	rs := feedFile(t, "cri.log", builtin(t, "cri"))
	expectTexts(t, rs,
		"an error line",
		"first part second part last part",
		"plain",
	)
	if s, _ := rs[1].Body.Get("stream"); s != "stdout" {
		t.Errorf("stream = %v", s)
	}
	if p, _ := rs[1].Body.Get("_p"); p != "P" {
		// The first line's fields are kept (flb_ml_flush_stream_group), with log replaced.
		t.Errorf("_p = %v, want the first line's P", p)
	}
}

// A list of parsers: docker lines are joined by docker, the rest go through java.
func TestParserListTriesEachInOrder(t *testing.T) {
	in := `{"log":"a ","stream":"stdout","time":"2024-03-01T10:00:00.1Z"}
{"log":"b\n","stream":"stdout","time":"2024-03-01T10:00:00.2Z"}
java.lang.IllegalStateException: x
	at A.a(A.java:1)
plain
`
	rs := feed([]byte(in), builtin(t, "docker"), builtin(t, "java"))
	expectTexts(t, rs, "a b\n", "java.lang.IllegalStateException: x\n\tat A.a(A.java:1)\n", "plain\n")
	expectContiguous(t, rs, int64(len(in)))
}

func TestUserSectionFromParsersFile(t *testing.T) {
	_, mls, err := config.ParseParsersFile("testdata/parsers.conf", os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := Load(mls, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := reg.Resolve([]string{"multiline-regex-test"})
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].FlushTimeout != time.Second {
		t.Errorf("flush_timeout = %v", ps[0].FlushTimeout)
	}
	rs := feedFile(t, "regex.log", ps...)
	expectTexts(t, rs,
		"single line...\n",
		"Dec 14 06:41:08 Exception in thread \"main\" java.lang.RuntimeException: Something has gone wrong, aborting!\n"+
			"    at com.myproject.module.MyProject.badMethod(MyProject.java:22)\n"+
			"    at com.myproject.module.MyProject.oneMoreMethod(MyProject.java:18)\n"+
			"    at com.myproject.module.MyProject.main(MyProject.java:6)\n",
		"another line...\n",
	)
}

func TestFlushTimeoutEmitsPending(t *testing.T) {
	s := NewStream([]*Parser{builtin(t, "java")}, Options{})
	var out []Record
	emit := func(r Record) { out = append(out, r) }
	t0 := time.Unix(1700000000, 0)
	s.Feed([]byte("java.lang.IllegalStateException: x"), event.Time{}, 0, 36, t0, emit)
	s.Feed([]byte("\tat A.a(A.java:1)"), event.Time{}, 36, 54, t0, emit)
	if len(out) != 0 {
		t.Fatalf("emitted %d records before the trace ended", len(out))
	}
	if start, ok := s.Pending(); !ok || start != 0 {
		t.Fatalf("pending = %d, %v; want 0, true", start, ok)
	}
	if d := s.NextDeadline(); !d.Equal(t0.Add(DefaultFlushTimeout)) {
		t.Fatalf("deadline = %v", d)
	}
	s.FlushExpired(t0.Add(DefaultFlushTimeout-time.Millisecond), emit)
	if len(out) != 0 {
		t.Fatal("flushed before the timeout")
	}
	s.FlushExpired(t0.Add(DefaultFlushTimeout), emit)
	expectTexts(t, out, "java.lang.IllegalStateException: x\n\tat A.a(A.java:1)\n")
	if _, ok := s.Pending(); ok {
		t.Fatal("still pending after the flush")
	}
}

func TestMaxBytesBoundsARecord(t *testing.T) {
	s := NewStream([]*Parser{builtin(t, "java")}, Options{MaxBytes: 64})
	var out []Record
	emit := func(r Record) { out = append(out, r) }
	s.Feed([]byte("java.lang.IllegalStateException: x"), event.Time{}, 0, 36, time.Now(), emit)
	for i := 0; i < 10; i++ {
		s.Feed([]byte("\tat A.a(A.java:1)"), event.Time{}, int64(36+18*i), int64(54+18*i), time.Now(), emit)
	}
	s.FlushAll(emit)
	for _, r := range out {
		if len(r.Text) > 64+32 {
			t.Fatalf("record of %d bytes exceeds the bound", len(r.Text))
		}
	}
	if len(out) < 2 {
		t.Fatalf("got %d records", len(out))
	}
}

func TestBadSectionsNameTheKey(t *testing.T) {
	cases := []struct{ conf, key, msg string }{
		{"[MULTILINE_PARSER]\n    name a\n    type regex\n", "rule", "no rules"},
		{"[MULTILINE_PARSER]\n    name a\n    type foo\n", "type", "unknown type"},
		{"[MULTILINE_PARSER]\n    name a\n    type regex\n    rule \"cont\" \"/x/\" \"cont\"\n", "rule", "start_state"},
		{"[MULTILINE_PARSER]\n    name a\n    type regex\n    rule \"start_state\" \"/(?<=x)/\" \"cont\"\n", "rule", "regex"},
		{"[MULTILINE_PARSER]\n    name a\n    type regex\n    rule \"start_state\" \"/x/\n", "rule", "unterminated"},
		{"[MULTILINE_PARSER]\n    name a\n    type endswith\n", "match_string", "match_string"},
		{"[MULTILINE_PARSER]\n    name a\n    type regex\n    flush_timeout soon\n    rule \"start_state\" \"/x/\" \"c\"\n", "flush_timeout", "milliseconds"},
		{"[MULTILINE_PARSER]\n    name a\n    type regex\n    parser nope\n    rule \"start_state\" \"/x/\" \"c\"\n", "parser", "undefined parser"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "p.conf")
		if err := os.WriteFile(path, []byte(c.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		_, mls, err := config.ParseParsersFile(path, os.LookupEnv)
		if err != nil {
			t.Fatalf("%q: %v", c.conf, err)
		}
		_, err = Load(mls, nil)
		if err == nil {
			t.Fatalf("%q: no error", c.conf)
		}
		list, ok := err.(config.ErrorList)
		if !ok || len(list) != 1 {
			t.Fatalf("%q: error %T %v", c.conf, err, err)
		}
		e := list[0]
		if e.Key != c.key || e.File != path || e.Line == 0 || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%q: error %+v, want key %s mentioning %q", c.conf, e, c.key, c.msg)
		}
	}
}

func TestResolveUnknownNameListsKnown(t *testing.T) {
	var r *Registry
	_, err := r.Resolve([]string{"java, nope"})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "python") {
		t.Fatalf("err = %v", err)
	}
	ps, err := r.Resolve([]string{"docker, cri", "go"})
	if err != nil || len(ps) != 3 || ps[2].Name != "go" {
		t.Fatalf("ps = %v, err = %v", ps, err)
	}
}
