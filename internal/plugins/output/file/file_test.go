package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

func props(t *testing.T, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeOutput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "file"})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i})
	}
	reg := plugin.NewRegistry().MustAdd(Spec())
	if errs := reg.ValidateSection(plugin.KindOutput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

func newTest(t *testing.T, kv ...string) *Output {
	t.Helper()
	o, err := New(context.Background(), plugin.Settings{Name: "file.0", Service: plugin.Service{JSON: event.DefaultJSON}}, props(t, kv...))
	if err != nil {
		t.Fatal(err)
	}
	return o.(*Output)
}

func mp(kv ...any) event.Map {
	m := event.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, event.KV{Key: kv[i].(string), Value: kv[i+1]})
	}
	return m
}

func testChunk(tag string) *chunk.Chunk {
	var data []byte
	for _, e := range []event.Event{
		{Time: event.Time{Sec: 1700000000, Nsec: 123456789}, Body: mp("message", "hello", "n", int64(1))},
		{Time: event.Time{Sec: event.GroupStartSec}, Body: mp("res", "x")},
		{Time: event.Time{Sec: 1700000001, Nsec: 5}, Meta: mp("m", true), Body: mp("message", "in group", "f", 0.5, "b", false)},
		{Time: event.Time{Sec: event.GroupEndSec}},
		{Time: event.Time{Sec: 1700000002}, Body: mp()},
	} {
		data = e.AppendMsgpack(data)
	}
	return &chunk.Chunk{Tag: tag, Records: 3, Data: data}
}

func flushRead(t *testing.T, o *Output, c *chunk.Chunk) string {
	t.Helper()
	if err := o.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.Target(c.Tag))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFormats(t *testing.T) {
	cases := []struct {
		kv   []string
		want string
	}{
		{nil, `app.log: [1700000000.123456789, {"message":"hello","n":1}]
app.log: [1700000001.000000005, {"message":"in group","f":0.5,"b":false}]
app.log: [1700000002.000000000, {}]
`},
		{[]string{"format", "plain"}, `{"message":"hello","n":1}
{"message":"in group","f":0.5,"b":false}
{}
`},
		{[]string{"format", "csv"}, `1700000000.123456789,"hello",1
1700000001.000000005,"in group",0.500000,false
`},
		{[]string{"format", "csv", "delimiter", "tab"}, "1700000000.123456789\t\"hello\"\t1\n" +
			"1700000001.000000005\t\"in group\"\t0.500000\tfalse\n"},
		{[]string{"format", "csv", "delimiter", "bogus"}, `1700000000.123456789,"hello",1
1700000001.000000005,"in group",0.500000,false
`},
		{[]string{"format", "ltsv"}, "\"time\":1700000000.123457\t\"message\":\"hello\"\t\"n\":1\n" +
			"\"time\":1700000001.000000\t\"message\":\"in group\"\t\"f\":0.500000\t\"b\":false\n"},
		{[]string{"format", "ltsv", "delimiter", "space", "label_delimiter", "comma"},
			"\"time\",1700000000.123457 \"message\",\"hello\" \"n\",1\n" +
				"\"time\",1700000001.000000 \"message\",\"in group\" \"f\",0.500000 \"b\",false\n"},
		{[]string{"format", "template"}, "1700000000.123457 hello\n1700000001.000000 in group\n1700000002.000000 {message}\n"},
		{[]string{"format", "template", "template", "[{t}] {n}/{f} {{message} } {missing} {unclosed"},
			"[1700000000.123457] 1/{f} {hello } {missing} {unclosed\n" +
				"[1700000001.000000] {n}/0.500000 {in group } {missing} {unclosed\n" +
				"[1700000002.000000] {n}/{f} {{message} } {missing} {unclosed\n"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		o := newTest(t, append([]string{"path", dir}, c.kv...)...)
		if got := flushRead(t, o, testChunk("app.log")); got != c.want {
			t.Errorf("%v:\ngot\n%s\nwant\n%s", c.kv, got, c.want)
		}
	}
}

func TestMsgpackFormatIsVerbatim(t *testing.T) {
	dir := t.TempDir()
	o := newTest(t, "path", dir, "format", "msgpack")
	c := testChunk("t")
	if got := flushRead(t, o, c); got != string(c.Data) {
		t.Error("msgpack format is not the chunk's bytes")
	}
}

func TestAppendsAndCSVHeader(t *testing.T) {
	dir := t.TempDir()
	o := newTest(t, "path", dir, "file", "out.csv", "format", "csv", "csv_column_names", "on")
	flushRead(t, o, testChunk("a"))
	got := flushRead(t, o, testChunk("b"))
	row1 := "1700000000.123456789,\"hello\",1\n1700000001.000000005,\"in group\",0.500000,false\n"
	want := "timestamp,\"message\",\"n\"\n" + row1 + row1
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if o.Target("anything") != filepath.Join(dir, "out.csv") {
		t.Errorf("target %s", o.Target("anything"))
	}
}

func TestTargetAndSanitize(t *testing.T) {
	for tag, want := range map[string]string{
		"app.log":          "app.log",
		"a/b":              "a/b",
		"../../etc/passwd": "_/_/etc/passwd",
		"/abs//x\\y":       "abs/x/y",
		"sp ace:*?":        "sp_ace___",
		"":                 "_",
		"///":              "_",
		"./x":              "_/x",
		"ünï":              "__n__",
	} {
		if got := SanitizeTag(tag); got != filepath.FromSlash(want) {
			t.Errorf("SanitizeTag(%q) = %q, want %q", tag, got, want)
		}
	}
	o := newTest(t)
	if got := o.Target("x.y"); got != "x.y" {
		t.Errorf("no path: %q", got)
	}
}

func TestMkdir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	o := newTest(t, "path", dir)
	err := o.Flush(context.Background(), testChunk("t"))
	if !plugin.IsPermanent(err) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("missing directory: err = %v, want permanent naming %s", err, dir)
	}
	o = newTest(t, "path", dir, "mkdir", "true")
	if got := flushRead(t, o, testChunk("t")); !strings.HasPrefix(got, "t: [1700000000.123456789, ") {
		t.Errorf("got %q", got)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o755&^umask() {
		t.Errorf("directory %v %v", st, err)
	}
	// A tag with a subdirectory is created under path too.
	if got := flushRead(t, o, testChunk("sub/t")); got == "" {
		t.Error("nothing written")
	}
}

func umask() os.FileMode {
	dir := filepath.Join(os.TempDir(), "umask-probe")
	os.Remove(dir)
	if err := os.Mkdir(dir, 0o777); err != nil {
		return 0
	}
	defer os.Remove(dir)
	st, _ := os.Stat(dir)
	return 0o777 &^ st.Mode().Perm()
}

func TestPathIsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o := newTest(t, "path", f, "mkdir", "on")
	err := o.Flush(context.Background(), testChunk("t"))
	if !plugin.IsPermanent(err) || !strings.Contains(err.Error(), f) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeError(t *testing.T) {
	dir := t.TempDir()
	o := newTest(t, "path", dir, "format", "plain")
	c := testChunk("t")
	c.Data = append(c.Data, 0x92, 0xc1)
	err := o.Flush(context.Background(), c)
	if !plugin.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	b, _ := os.ReadFile(o.Target("t"))
	if bytes.Count(b, []byte("\n")) != 3 {
		t.Errorf("records before the bad event not written: %q", b)
	}
}

func TestDelimiter(t *testing.T) {
	for in, want := range map[string]string{`\t`: "\t", "TAB": "\t", "space": " ", "Comma": ","} {
		if got, ok := Delimiter(in); !ok || got != want {
			t.Errorf("%q: %q %v", in, got, ok)
		}
	}
	if _, ok := Delimiter(";"); ok {
		t.Error("; accepted")
	}
}

// A process killed in the middle of a write leaves a fragment of a record at
// the end of the file; the next process to write there cuts it before
// appending, so the redelivered chunk does not follow a torn line.
func TestCutsTornLastLineOnce(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 150<<10) // a fragment longer than one search block
	for _, tc := range []struct {
		name, before, kept string
	}{
		{"fragment after whole lines", "{\"a\":1}\n{\"a\":2}\n{\"message\":\"hal", "{\"a\":1}\n{\"a\":2}\n"},
		{"long fragment", "{\"a\":1}\n" + long, "{\"a\":1}\n"},
		{"only a fragment", "{\"mess", ""},
		{"whole lines are left alone", "{\"a\":1}\n", "{\"a\":1}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := t.TempDir()
			o := newTest(t, "path", sub, "format", "plain")
			c := testChunk("app")
			if err := os.WriteFile(o.Target("app"), []byte(tc.before), 0o644); err != nil {
				t.Fatal(err)
			}
			fresh := newTest(t, "path", filepath.Join(dir, "fresh-"+strings.ReplaceAll(tc.name, " ", "-")), "format", "plain", "mkdir", "on")
			want := tc.kept + flushRead(t, fresh, c)
			if got := flushRead(t, o, c); got != want {
				t.Fatalf("after the first flush:\n%q\nwant\n%q", trunc(got), trunc(want))
			}
			// Only the first write of a process checks: a later fragment
			// (not Floe's) is not cut again.
			f, err := os.OpenFile(o.Target("app"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("tail")
			f.Close()
			want2 := want + "tail" + flushRead(t, fresh, c)[len(want)-len(tc.kept):]
			if got := flushRead(t, o, c); got != want2 {
				t.Fatalf("after the second flush:\n%q\nwant\n%q", trunc(got), trunc(want2))
			}
		})
	}
}

// The csv header is written again when the cut leaves the file empty, and a
// msgpack file is never cut.
func TestTornTailCSVHeaderAndMsgpack(t *testing.T) {
	dir := t.TempDir()
	o := newTest(t, "path", dir, "format", "csv", "csv_column_names", "on")
	os.WriteFile(o.Target("app"), []byte("1700000000.1,\"hal"), 0o644)
	got := flushRead(t, o, testChunk("app"))
	want := "timestamp,\"message\",\"n\"\n1700000000.123456789,\"hello\",1\n1700000001.000000005,\"in group\",0.500000,false\n"
	if got != want {
		t.Fatalf("after cutting the only (partial) line, got\n%s\nwant the header and the rows\n%s", got, want)
	}

	m := newTest(t, "path", dir, "format", "msgpack")
	os.WriteFile(m.Target("bin"), []byte{0x92, 0x01}, 0o644)
	got = flushRead(t, m, testChunk("bin"))
	if !strings.HasPrefix(got, "\x92\x01") {
		t.Fatalf("msgpack file was cut: % x", got[:8])
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:100] + "…" + s[len(s)-100:]
	}
	return s
}
