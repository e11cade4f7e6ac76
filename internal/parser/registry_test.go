package parser

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
)

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		def  []string
		want string // the whole error
	}{
		{"no format", []string{"name p"}, "parsers.conf:9: key format: parser \"p\" has no 'format' (json, regex, ltsv or logfmt)"},
		{"bad format", []string{"name p", "format xml"}, `parsers.conf:11: key format: parser "p": invalid format "xml" (expected json, regex, ltsv or logfmt)`},
		{"regex without regex", []string{"name p", "format regex"}, `parsers.conf:11: key format: parser "p": format regex needs a 'regex'`},
		{"look-behind", []string{"name p", "format regex", `regex (?<=a)(?<b>b)`}, "parsers.conf:12: key regex: parser \"p\": invalid regex:"},
		{"back-reference", []string{"name p", "format regex", `regex (?<a>x)\k<a>`}, "parsers.conf:12: key regex:"},
		{"bad bool", []string{"name p", "format json", "time_keep maybe"}, `parsers.conf:12: key time_keep: invalid boolean "maybe"`},
		{"bad offset", []string{"name p", "format json", "time_format %H", "time_offset +2"}, `parsers.conf:13: key time_offset: parser "p": invalid time_offset "+2"`},
		{"bad decoder", []string{"name p", "format json", "decode_field_as yaml log"}, `parsers.conf:12: key decode_field_as: parser "p": unknown decoder "yaml"`},
		{"short decoder", []string{"name p", "format json", "decode_field json"}, `parsers.conf:12: key decode_field: parser "p": expected 'DECODER FIELD [ACTION]', got "json"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(section(c.def...))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *config.Error", err, err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("err =\n  %v\nwant prefix\n  %s", err, c.want)
			}
		})
	}
	if _, err := New(&config.Section{File: "x.yaml", Line: 3}); err == nil || err.Error() != "x.yaml:3: parser section has no 'name'" {
		t.Errorf("no name: %v", err)
	}
}

func TestNewWarnings(t *testing.T) {
	p, err := New(section("name p", "format json", "regex x", "time_format %Q%Y", "types a:int b", "Tyme_Key t",
		"decode_field_as escaped log maybe", "time_offset +0100", "time_system_timezone on"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range p.Warnings() {
		got = append(got, w.Error())
	}
	want := []string{
		`parsers.conf:12: key regex: parser "p": regex is only used by the regex format`,
		`parsers.conf:13: key time_format: parser "p": %Q not supported by strptime: the time never matches`,
		`parsers.conf:17: key time_offset: parser "p": time_offset is ignored when time_system_timezone is on`,
		`parsers.conf:14: key types: parser "p": types is not applied by the json format`,
		`parsers.conf:14: key types: parser "p": unknown type "int" for "a" (integer, bool, float, hex, string): kept as a string`,
		`parsers.conf:14: key types: parser "p": types entry "b" is not KEY:TYPE; ignored`,
		`parsers.conf:16: key decode_field_as: parser "p": unknown decoder action "maybe" (try_next or do_next); ignored`,
		`parsers.conf:15: key Tyme_Key: parser "p": unknown key; ignored`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	a := mustNew(t, "name a", "format json")
	if err := r.Add(a); err != nil {
		t.Fatal(err)
	}
	dup, _ := New(&config.Section{File: "more.conf", Props: []config.Prop{
		{Key: "name", Value: "a", File: "more.conf", Line: 7}, {Key: "format", Value: "logfmt", File: "more.conf", Line: 8}}})
	err := r.Add(dup)
	if err == nil || err.Error() != `more.conf:7: key name: parser "a" is already defined (at parsers.conf:10)` {
		t.Errorf("duplicate: %v", err)
	}
	if p, ok := r.Lookup("a"); !ok || p.(*Parser) != a {
		t.Error("Lookup a")
	}
	if p, ok := r.Lookup("A"); ok || p != nil {
		t.Error("Lookup is case-sensitive, as flb_parser_get")
	}
	var nilReg *Registry
	if _, ok := nilReg.Get("a"); ok {
		t.Error("nil registry")
	}
}

func TestBuiltin(t *testing.T) {
	r, err := Load(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings()) != 0 {
		t.Errorf("warnings: %v", r.Warnings())
	}
	cases := []struct{ parser, in, time, record string }{
		{"apache", `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08"`,
			"2000-10-10T20:55:36Z", `{"host":"127.0.0.1","user":"frank","method":"GET","path":"/apache_pb.gif","code":"200","size":"2326","referer":"http://www.example.com/start.html","agent":"Mozilla/4.08"}`},
		{"apache2", `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 404 0 "-" "curl/8.0 (x)"`,
			"2000-10-10T13:55:36Z", `{"host":"127.0.0.1","user":"-","method":"GET","path":"/","code":"404","size":"0","referer":"-","agent":"curl/8.0 (x)"}`},
		{"apache_error", `[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration`,
			"-", `{"time":"Oct 11 14:32:52 2000","level":"error","client":"127.0.0.1","message":"client denied by server configuration"}`},
		{"nginx", `192.168.1.5 - - [15/Mar/2024:12:00:00 +0100] "POST /api HTTP/1.1" 201 17 "-" "Go-http-client/1.1"`,
			"2024-03-15T11:00:00Z", `{"remote":"192.168.1.5","host":"-","user":"-","method":"POST","path":"/api","code":"201","size":"17","referer":"-","agent":"Go-http-client/1.1"}`},
		{"json", `{"time":"15/Mar/2024:12:00:00 +0000","msg":"hi"}`, "2024-03-15T12:00:00Z", `{"msg":"hi"}`},
		{"logfmt", `level=info msg="started server" port=80`, "-", `{"level":"info","msg":"started server","port":"80"}`},
		{"docker", `{"log":"hello\n","stream":"stderr","time":"2024-03-15T12:00:00.123456789Z"}`,
			"2024-03-15T12:00:00.123456789Z", `{"log":"hello\n","stream":"stderr","time":"2024-03-15T12:00:00.123456789Z"}`},
		{"syslog-rfc5424", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event`,
			"2003-10-11T22:14:15.003Z", `{"pri":"165","time":"2003-10-11T22:14:15.003Z","host":"mymachine.example.com","ident":"evntslog","pid":"-","msgid":"ID47","extradata":"[exampleSDID@32473 iut=\"3\"]","message":"An application event"}`},
		{"syslog-rfc3164", `<34>Oct 11 22:14:15 mymachine su[99]: 'su root' failed`,
			"2024-10-11T22:14:15Z", `{"pri":"34","time":"Oct 11 22:14:15","host":"mymachine","ident":"su","pid":"99","message":"'su root' failed"}`},
		{"syslog-rfc3164-local", `<34>Oct  1 22:14:15 su: 'su root' failed`,
			"2024-10-01T22:14:15Z", `{"pri":"34","time":"Oct  1 22:14:15","ident":"su","message":"'su root' failed"}`},
		{"cri", `2024-03-15T12:00:00.5+01:00 stdout F hello world`,
			"2024-03-15T11:00:00.5Z", `{"time":"2024-03-15T12:00:00.5+01:00","stream":"stdout","logtag":"F","message":"hello world"}`},
		{"docker-daemon", `time="2024-03-15T12:00:00.000000001Z" level=info msg="Loading containers: start."`,
			"2024-03-15T12:00:00.000000001Z", `{"time":"2024-03-15T12:00:00.000000001Z","level":"info","msg":"Loading containers: start."}`},
	}
	for _, c := range cases {
		t.Run(c.parser, func(t *testing.T) {
			p, ok := r.Get(c.parser)
			if !ok {
				t.Fatal("missing")
			}
			p2 := *p // do not touch the shared built-in
			if p.time != nil {
				tf := *p.time
				p2.time = &tf
			}
			p2.setNow(func() time.Time { return fixedNow })
			tm, m, err := p2.Parse([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := utc(tm); got != c.time {
				t.Errorf("time = %s, want %s", got, c.time)
			}
			if got := render(m); got != c.record {
				t.Errorf("record =\n  %s\nwant\n  %s", got, c.record)
			}
		})
	}
	names := map[string]bool{}
	for _, p := range Builtin() {
		names[p.Name()] = true
	}
	for _, n := range []string{"apache", "apache2", "apache_error", "nginx", "k8s-nginx-ingress", "json", "logfmt", "docker",
		"docker-daemon", "syslog-rfc5424", "syslog-rfc3164-local", "syslog-rfc3164", "mongodb", "envoy", "cri", "kube-custom"} {
		if !names[n] {
			t.Errorf("built-in %s missing", n)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.conf", `[PARSER]
    Name   json
    Format regex
    Regex  ^(?<all>.*)$

[PARSER]
    Name   kv
    Format logfmt
    Time_Format %H:%M ${TZ_OFFSET}
`)
	yml := writeFile(t, dir, "more.yaml", `parsers:
  - name: ltsv
    format: ltsv
    timeKeep: yes
`)
	bad := writeFile(t, dir, "bad.conf", `[PARSER]
    Name   broken
    Format regex
    Regex  (?<a>x)(?!y)

[PARSER]
    Name   kv
    Format json
`)
	inline := []*config.Section{section("name inline", "format json", "time_keep sometimes")}
	env := func(k string) (string, bool) {
		if k == "TZ_OFFSET" {
			return "%z", true
		}
		return "", false
	}
	r, err := Load(inline, []string{good, yml, bad, filepath.Join(dir, "missing.conf")}, env)
	var list config.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v (%T), want config.ErrorList", err, err)
	}
	got := sortedErrs(list)
	want := []string{
		bad + `:4: key regex: parser "broken": invalid regex:`,
		bad + `:7: key name: parser "kv" is already defined (at ` + good + `:7)`,
		filepath.Join(dir, "missing.conf") + ": cannot open file: no such file or directory",
		`parsers.conf:12: key time_keep: invalid boolean "sometimes": expected true/on/yes or false/off/no`,
	}
	if len(got) != len(want) {
		t.Fatalf("errors =\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d =\n  %s\nwant prefix\n  %s", i, got[i], want[i])
		}
	}
	// What did build is there; the file's "json" replaces the built-in one.
	for _, n := range []string{"json", "kv", "ltsv", "apache"} {
		if _, ok := r.Get(n); !ok {
			t.Errorf("parser %s missing", n)
		}
	}
	p, _ := r.Get("json")
	if p.Format() != FormatRegex {
		t.Errorf("json is %v, want the file's regex parser", p.Format())
	}
	if p, _ := r.Get("kv"); p.time == nil || p.time.full != "%H:%M %z" {
		t.Errorf("kv time format not expanded: %+v", p.time)
	}
	if p, _ := r.Get("ltsv"); !p.timeKeep {
		t.Error("yaml timeKeep not applied")
	}
	names := r.Names()
	if len(names) < 4 || names[0] != "json" || names[1] != "kv" || names[2] != "ltsv" {
		t.Errorf("names = %v", names)
	}
}

func TestResolvePath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.conf", "")
	if got := ResolvePath("p.conf", dir); got != filepath.Join(dir, "p.conf") {
		t.Errorf("relative, missing here: %s", got)
	}
	abs := filepath.Join(dir, "p.conf")
	if got := ResolvePath(abs, "/elsewhere"); got != abs {
		t.Errorf("absolute: %s", got)
	}
	if got := ResolvePath("/no/such.conf", dir); got != "/no/such.conf" {
		t.Errorf("absolute missing: %s", got)
	}
	if got := ResolvePath("registry_test.go", dir); got != "registry_test.go" {
		t.Errorf("existing relative: %s", got)
	}
	if got := ResolvePath("q.conf", ""); got != "q.conf" {
		t.Errorf("no conf dir: %s", got)
	}
}

func TestAnchoredRegexSingleLine(t *testing.T) {
	for _, b := range Builtin() {
		if b.re == nil {
			continue
		}
		anchored := strings.Contains(b.re.multi.String(), "^") || strings.Contains(b.re.multi.String(), "$")
		if anchored && b.re.single == b.re.multi {
			t.Errorf("%s: no single-line form", b.Name())
		}
	}
}

func BenchmarkParseApache(b *testing.B) {
	r, _ := Load(nil, nil, nil)
	p, _ := r.Get("apache")
	line := []byte(`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08"`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
