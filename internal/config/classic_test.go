package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLoadDummyStdoutClassic(t *testing.T) {
	cfg, err := Load("testdata/dummy_stdout.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Inputs) != 1 || len(cfg.Outputs) != 1 {
		t.Fatalf("got %d inputs, %d outputs", len(cfg.Inputs), len(cfg.Outputs))
	}
	in, out := cfg.Inputs[0], cfg.Outputs[0]
	if in.Plugin() != "dummy" || in.Header != "INPUT" || in.Line != 1 {
		t.Errorf("input = %+v", in)
	}
	if tag, _ := in.Get("Tag"); tag != "dummy.log" {
		t.Errorf("tag = %q", tag)
	}
	if out.Plugin() != "stdout" || out.Line != 5 {
		t.Errorf("output = %+v", out)
	}
	if m, _ := out.Get("match"); m != "*" {
		t.Errorf("match = %q", m)
	}
	if f, l := out.Pos("match"); f != "testdata/dummy_stdout.conf" || l != 7 {
		t.Errorf("Pos(match) = %s:%d", f, l)
	}
	if cfg.Service == nil || cfg.Service.Type != TypeService || len(cfg.Service.Props) != 0 {
		t.Errorf("service = %+v", cfg.Service)
	}
	if len(cfg.Files) != 1 || cfg.Files[0] != "testdata/dummy_stdout.conf" {
		t.Errorf("files = %v", cfg.Files)
	}
	if cfg.Format != "classic" {
		t.Errorf("format = %q", cfg.Format)
	}
}

// Compatibility test idea 30.
func TestClassicCompat30(t *testing.T) {
	t.Run("SET after use still expands", func(t *testing.T) {
		cfg := mustClassic(t, "[INPUT]\n    Name dummy\n    Tag ${X}.log\n@SET X=1\n", nil)
		if tag, _ := cfg.Inputs[0].Get("tag"); tag != "1.log" {
			t.Errorf("tag = %q, want 1.log", tag)
		}
		if cfg.Env["X"] != "1" {
			t.Errorf("Env = %v", cfg.Env)
		}
	})
	t.Run("default for unset variable", func(t *testing.T) {
		cfg := mustClassic(t, "[INPUT]\n    Name dummy\n    Tag ${UNSET:-dflt}\n", envOf(nil))
		if tag, _ := cfg.Inputs[0].Get("tag"); tag != "dflt" {
			t.Errorf("tag = %q, want dflt", tag)
		}
	})
	t.Run("inline comment is part of the value", func(t *testing.T) {
		cfg := mustClassic(t, "[OUTPUT]\n    Name stdout\n    Match * # everything\n", nil)
		if m, _ := cfg.Outputs[0].Get("match"); m != "* # everything" {
			t.Errorf("match = %q", m)
		}
	})
	t.Run("mixed tab and space rejected", func(t *testing.T) {
		_, err := ParseClassic("m.conf", []byte("[INPUT]\n    Name dummy\n\tTag x\n"), nil)
		l := errList(t, err)
		if len(l) != 1 || l[0].Line != 3 || l[0].Msg != "inconsistent use of tab and space" {
			t.Fatalf("errors = %v", err)
		}
		if got := l[0].Error(); got != "m.conf:3: key tag: inconsistent use of tab and space" {
			t.Errorf("message = %q", got)
		}
	})
	t.Run("PARSER in main file rejected", func(t *testing.T) {
		for _, h := range []string{"PARSER", "parser", "MULTILINE_PARSER"} {
			cfg, err := ParseClassic("m.conf", []byte("["+h+"]\n    Name json\n    Format json\n"), nil)
			l := errList(t, err)
			if len(l) != 1 || l[0].Line != 1 || !strings.Contains(l[0].Msg, "parsers_file") {
				t.Errorf("[%s]: errors = %v", h, err)
			}
			if len(cfg.Parsers)+len(cfg.MultilineParsers) != 0 {
				t.Errorf("[%s]: parser section kept", h)
			}
		}
	})
	t.Run("1K is 1000 bytes", func(t *testing.T) {
		cfg := mustClassic(t, "[INPUT]\n    Name tail\n    Mem_Buf_Limit 1K\n", nil)
		v, _ := cfg.Inputs[0].Get("mem_buf_limit")
		if n, err := ParseSize(v); err != nil || n != 1000 {
			t.Errorf("ParseSize(%q) = %d, %v", v, n, err)
		}
	})
}

func TestClassicKeysAndValues(t *testing.T) {
	data := "[SERVICE]\n" +
		"    Flush        5\n" +
		"    Log_Level    DEBUG\n" +
		"[INPUT]\n" +
		"    Name   tail\n" +
		"    Path   /var/log/a.log\n" +
		"    PATH   /var/log/b.log\n" +
		"    Key\twith tab\n" + // tabs are not separators: key is "key\twith"
		"    Tag    ${UNSET}\n" + // empty after expansion: not set
		"    Parser   \n" + // value of blanks only: trimmed to nothing, not set
		"    DB  x.db   \n"
	cfg := mustClassic(t, data, envOf(nil))
	if got := propsString(cfg.Service.Props); got != "flush=5;log_level=DEBUG" {
		t.Errorf("service props = %s", got)
	}
	in := cfg.Inputs[0]
	if got := propsString(in.Props); got != "name=tail;path=/var/log/a.log;path=/var/log/b.log;key\twith=tab;db=x.db" {
		t.Errorf("input props = %q", got)
	}
	if v, _ := in.Get("PATH"); v != "/var/log/a.log" {
		t.Errorf("Get returns first occurrence, got %q", v)
	}
	if all := in.GetAll("path"); len(all) != 2 || all[1] != "/var/log/b.log" {
		t.Errorf("GetAll = %v", all)
	}
	if _, ok := in.Get("tag"); ok {
		t.Error("empty expanded value must not be set")
	}
	if f, l := in.Pos("tag"); f != "test.conf" || l != 4 {
		t.Errorf("Pos of unset key = %s:%d, want section position", f, l)
	}
	if f, l := in.Pos("db"); l != 11 || f != "test.conf" {
		t.Errorf("Pos(db) = %s:%d", f, l)
	}
}

func TestClassicSectionTypes(t *testing.T) {
	tests := []struct{ header, typ string }{
		{"SERVICE", TypeService},
		{"service", TypeService},
		{"S", TypeService}, // prefix quirk
		{"IN", TypeInput},
		{"INPUT", TypeInput},
		{"Inputs", TypeInput},
		{"INPUTX", TypeOther},
		{"FILTER", TypeFilter},
		{"F", TypeFilter},
		{"OUT", TypeOutput},
		{"OUTPUTS", TypeOutput},
		{"CUSTOM", TypeCustom},
		{"C", TypeCustom},
		{"PLUGINS", TypePlugins},
		{"UPSTREAM_SERVERS", TypeUpstreamServers},
		{"STREAM_PROCESSOR", TypeStreamProcessor},
		{"PARSER", TypeParser},
		{"P", TypeParser},
		{"MULTILINE_PARSER", TypeMultilineParser},
		{"UPSTREAM", TypeUpstreamServers},
		{"NODE", TypeOther},
		{"", TypeOther},
		{"ſERVICE", TypeOther}, // no Unicode folding
	}
	for _, tt := range tests {
		if got := classicSectionType(tt.header); got != tt.typ {
			t.Errorf("classicSectionType(%q) = %q, want %q", tt.header, got, tt.typ)
		}
	}

	// In a parsers file, unknown sections are kept and ignored, as Fluent
	// Bit does.
	fsys := memFS{"p.conf": "[IN]\n    Name dummy\n[NODE] trailing text ignored\n    host 1.2.3.4\n[OUT]\n    name stdout\n"}
	cfg, err := parseClassic(fsys, "p.conf", []byte(fsys["p.conf"]), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Inputs) != 1 || cfg.Inputs[0].Header != "IN" || cfg.Inputs[0].Type != TypeInput {
		t.Errorf("inputs = %+v", cfg.Inputs)
	}
	if len(cfg.Other) != 1 || cfg.Other[0].Header != "NODE" || cfg.Other[0].Type != TypeOther {
		t.Errorf("other = %+v", cfg.Other)
	}
	if len(cfg.Outputs) != 1 {
		t.Errorf("outputs = %+v", cfg.Outputs)
	}

	// In the main file an unknown section is most likely a typo that would
	// silently lose a plugin: it is reported, its keys are skipped, and the
	// next section is read as usual.
	cfg, err = ParseClassic("m.conf", []byte("[IN]\n    Name dummy\n[OUTPT]\n    Name stdout\n    Match *\n[OUT]\n    name null\n"), nil)
	l := errList(t, err)
	if len(l) != 1 || l[0].Line != 3 || !strings.Contains(l[0].Msg, "unknown section [OUTPT]") {
		t.Errorf("errors = %v", err)
	}
	if len(cfg.Other) != 0 || len(cfg.Outputs) != 1 || cfg.Outputs[0].Plugin() != "null" {
		t.Errorf("other = %+v, outputs = %+v", cfg.Other, cfg.Outputs)
	}
}

func TestClassicServiceMerged(t *testing.T) {
	cfg := mustClassic(t, "[SERVICE]\n    flush 1\n[INPUT]\n    name dummy\n[SERVICE]\n    log_level debug\n", nil)
	if got := propsString(cfg.Service.Props); got != "flush=1;log_level=debug" {
		t.Errorf("service = %s", got)
	}
	if cfg.Service.Line != 1 {
		t.Errorf("service line = %d", cfg.Service.Line)
	}
}

func TestClassicLayout(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		props string // input props, when no error
		line  int    // error line, 0 when none
		msg   string
	}{
		{"crlf", "[INPUT]\r\n    Name dummy\r\n    Tag a\r\n", "name=dummy;tag=a", 0, ""},
		{"tab unit", "[INPUT]\n\tName dummy\n\tTag a\n", "name=dummy;tag=a", 0, ""},
		{"two-space unit", "[INPUT]\n  Name dummy\n  Tag a\n", "name=dummy;tag=a", 0, ""},
		{"comments", "# top\n[INPUT]\n    # indented\n    Name dummy\n  # oddly indented\n#col0\n    Tag a\n", "name=dummy;tag=a", 0, ""},
		{"blank lines", "\n[INPUT]\n\n    Name dummy\n   \n\t\n    Tag a\n\n", "name=dummy;tag=a", 0, ""},
		{"double indent allowed", "[INPUT]\n    Name dummy\n        Tag a\n", "name=dummy;tag=a", 0, ""},
		{"no newline at end", "[INPUT]\n    Name dummy\n    Tag a", "name=dummy;tag=a", 0, ""},
		{"too low", "[INPUT]\n    Name dummy\n  Tag a\n", "", 3, "indentation level is too low"},
		{"extra", "[INPUT]\n    Name dummy\n      Tag a\n", "", 3, "extra indentation level found"},
		{"space after tab unit", "[INPUT]\n\tName dummy\n    Tag a\n", "", 3, "inconsistent use of tab and space"},
		{"unindented key", "[INPUT]\nName dummy\n", "", 2, "indentation level is too low"},
		{"unindented later", "[INPUT]\n    Name dummy\nTag a\n", "", 3, "indentation level is too low"},
		{"empty value", "[INPUT]\n    Name dummy\n    Tag \n", "", 3, "key has an empty value"},
		{"no value", "[INPUT]\n    Name dummy\n    Tag\n", "", 3, "key has no value"},
		{"tab is not a separator", "[INPUT]\n    Name\tdummy\n", "", 2, "key has no value"},
		{"bad header", "[INPUT\n    Name dummy\n", "", 1, "bad header definition"},
		{"outside section", "    Name dummy\n[INPUT]\n    Name x\n", "", 1, "outside of any section"},
		{"bad meta", "@SETX\n[INPUT]\n    Name x\n", "", 1, "invalid meta command"},
		{"missing name", "[INPUT]\n    Tag a\n", "", 1, "missing the 'name' property"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseClassic("t.conf", []byte(tt.data), nil)
			if tt.line == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got := propsString(cfg.Inputs[0].Props); got != tt.props {
					t.Errorf("props = %q, want %q", got, tt.props)
				}
				return
			}
			l := errList(t, err)
			if len(l) != 1 || l[0].Line != tt.line || !strings.Contains(l[0].Msg, tt.msg) || l[0].File != "t.conf" {
				t.Errorf("errors = %v; want one at line %d containing %q", err, tt.line, tt.msg)
			}
		})
	}
}

func TestClassicErrorKey(t *testing.T) {
	_, err := ParseClassic("k.conf", []byte("[INPUT]\n    Name dummy\n    Tag \n"), nil)
	l := errList(t, err)
	if len(l) != 1 || l[0].Key != "tag" || l[0].Error() != "k.conf:3: key tag: key has an empty value" {
		t.Errorf("errors = %q", err)
	}
}

func TestClassicThreeMistakes(t *testing.T) {
	data := "[SERVICE]\n" + // 1
		"    Flush 1\n" + // 2
		"\tLog_Level info\n" + // 3: tab vs spaces
		"[INPUT]\n" + // 4
		"    Name dummy\n" + // 5
		"    Tag \n" + // 6: empty value
		"[PARSER]\n" + // 7: not allowed here
		"    Name json\n" + // 8
		"[OUTPUT]\n" + // 9
		"    Name stdout\n" // 10
	cfg, err := ParseClassic("three.conf", []byte(data), nil)
	l := errList(t, err)
	if len(l) != 3 {
		t.Fatalf("got %d errors, want 3:\n%v", len(l), err)
	}
	wantLines := []int{3, 6, 7}
	for i, e := range l {
		if e.Line != wantLines[i] || e.File != "three.conf" {
			t.Errorf("error %d = %v, want line %d", i, e, wantLines[i])
		}
	}
	// parsing went on: the good parts are there
	if len(cfg.Inputs) != 1 || len(cfg.Outputs) != 1 {
		t.Errorf("sections after errors: %d inputs, %d outputs", len(cfg.Inputs), len(cfg.Outputs))
	}
}

func TestClassicGroups(t *testing.T) {
	data := "[CUSTOM]\n" +
		"    name calyptia\n" +
		"    [rule] x\n" +
		"        a 1\n" +
		"        b 2\n" +
		"    [other]\n" +
		"        c 3\n" +
		"    after group\n"
	cfg := mustClassic(t, data, nil)
	c := cfg.Customs[0]
	if got := propsString(c.Props); got != "name=calyptia;after=group" {
		t.Errorf("section props = %q", got)
	}
	if len(c.Groups) != 2 || c.Groups[0].Name != "rule" || propsString(c.Groups[0].Props) != "a=1;b=2" ||
		c.Groups[1].Name != "other" || propsString(c.Groups[1].Props) != "c=3" {
		t.Errorf("groups = %+v %+v", c.Groups[0], c.Groups[1])
	}
	if v, _ := c.Groups[0].Get("B"); v != "2" {
		t.Errorf("group Get = %q", v)
	}

	_, err := ParseClassic("g.conf", []byte("[CUSTOM]\n    name x\n    [a]\n        [b]\n        k v\n"), nil)
	if l := errList(t, err); len(l) != 1 || !hasError(l, 4, "previous group") {
		t.Errorf("errors = %v", err)
	}
}

func TestClassicMetas(t *testing.T) {
	data := "@SET A=alpha\n@set B = beta\n@FOO bar\n[INPUT]\n    Name dummy\n    Tag ${A}.${B}.${B }\n"
	cfg := mustClassic(t, data, nil)
	// like Fluent Bit, "@set B = beta" defines "B " with value " beta"
	if tag, _ := cfg.Inputs[0].Get("tag"); tag != "alpha.. beta" {
		t.Errorf("tag = %q", tag)
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Line != 3 {
		t.Errorf("warnings = %v", ErrorList(cfg.Warnings))
	}
	// @SET without '=' is an error (the variable would silently stay
	// unset); the other metas still run.
	cfg, err := ParseClassic("m.conf", []byte("@SET A=alpha\n@SET novalue\n[INPUT]\n    Name dummy\n    Tag ${A}\n"), nil)
	l := errList(t, err)
	if len(l) != 1 || l[0].Line != 2 || !strings.Contains(l[0].Msg, "@SET: invalid parameter 'novalue'") {
		t.Errorf("errors = %v", err)
	}
	if tag, _ := cfg.Inputs[0].Get("tag"); tag != "alpha" {
		t.Errorf("tag = %q", tag)
	}
	// config variables win over the environment
	cfg = mustClassic(t, "@SET HOME=/cfg\n[INPUT]\n    Name ${HOME}\n", envOf(map[string]string{"HOME": "/env"}))
	if n, _ := cfg.Inputs[0].Get("name"); n != "/cfg" {
		t.Errorf("name = %q", n)
	}
}

func TestClassicEnvFromProcess(t *testing.T) {
	t.Setenv("FLOE_TEST_TAG", "from.env")
	t.Setenv("FLOE_TEST_EMPTY", "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.conf": "[INPUT]\n    Name dummy\n    Tag ${FLOE_TEST_TAG}\n    Alias ${FLOE_TEST_EMPTY:-dflt}\n"})
	cfg, err := Load(filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := propsString(cfg.Inputs[0].Props); got != "name=dummy;tag=from.env;alias=dflt" {
		t.Errorf("props = %s", got)
	}
}

func TestClassicIncludes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.conf": "@INCLUDE service.conf\n" +
			"[INPUT]\n" +
			"    Name dummy\n" +
			"@INCLUDE sub/outputs.conf\n" +
			"    Tag after.include\n" + // still the main file's [INPUT]
			"@include conf.d/*.conf\n",
		"service.conf":     "[SERVICE]\n    Flush ${FLUSH}\n",
		"sub/outputs.conf": "[OUTPUT]\n    Name stdout\n    Match *\n@INCLUDE vars.conf\n",
		// nested includes resolve against the MAIN file's directory
		"vars.conf":        "@SET FLUSH=3\n",
		"sub/vars.conf":    "@SET FLUSH=wrong\n",
		"conf.d/b.conf":    "[FILTER]\n    Name b\n",
		"conf.d/a.conf":    "[FILTER]\n  Name a\n", // indentation unit is per file
		"conf.d/c.conf.no": "[FILTER]\n    Name no\n",
	})
	main := filepath.Join(dir, "main.conf")
	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := cfg.Service.Get("flush"); f != "3" {
		t.Errorf("flush = %q", f)
	}
	if got := propsString(cfg.Inputs[0].Props); got != "name=dummy;tag=after.include" {
		t.Errorf("input = %s", got)
	}
	if len(cfg.Outputs) != 1 || cfg.Outputs[0].File != filepath.Join(dir, "sub/outputs.conf") || cfg.Outputs[0].Line != 1 {
		t.Errorf("outputs = %+v", cfg.Outputs)
	}
	if len(cfg.Filters) != 2 || cfg.Filters[0].Plugin() != "a" || cfg.Filters[1].Plugin() != "b" {
		t.Errorf("filters not in sorted glob order: %+v", cfg.Filters)
	}
	want := []string{main, filepath.Join(dir, "service.conf"), filepath.Join(dir, "sub/outputs.conf"),
		filepath.Join(dir, "vars.conf"), filepath.Join(dir, "conf.d/a.conf"), filepath.Join(dir, "conf.d/b.conf")}
	if strings.Join(cfg.Files, "\n") != strings.Join(want, "\n") {
		t.Errorf("files = %v\nwant %v", cfg.Files, want)
	}
}

func TestClassicIncludeRelativeToCWD(t *testing.T) {
	// a relative include is tried against the working directory first
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.conf":          "@INCLUDE testdata/dummy_stdout.conf\n",
		"testdata/other.txt": "",
	})
	cfg, err := Load(filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Inputs) != 1 || cfg.Inputs[0].File != "testdata/dummy_stdout.conf" {
		t.Errorf("inputs = %+v", cfg.Inputs)
	}
}

func TestClassicIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.conf": "[INPUT]\n    Name dummy\n" +
			"@INCLUDE missing.conf\n" + // 3
			"@INCLUDE a.conf\n" + // 4
			"@INCLUDE a.conf\n" + // 5: twice
			"@INCLUDE main.conf\n" + // 6: itself
			"@INCLUDE nomatch/*.conf\n" + // 7
			"@INCLUDE bad.conf\n", // 8
		"a.conf":   "[OUTPUT]\n    Name stdout\n",
		"bad.conf": "[OUTPUT]\n    Name stdout\n    Match\n",
	})
	main := filepath.Join(dir, "main.conf")
	cfg, err := Load(main)
	l := errList(t, err)
	if len(l) != 5 {
		t.Fatalf("got %d errors:\n%v", len(l), err)
	}
	for i, want := range []struct {
		file string
		line int
		msg  string
	}{
		{main, 3, "cannot open file"},
		{main, 5, "already included"},
		{main, 6, "already included"},
		{main, 7, "no files match"},
		{filepath.Join(dir, "bad.conf"), 3, "key has no value"},
	} {
		if l[i].File != want.file || l[i].Line != want.line || !strings.Contains(l[i].Msg, want.msg) {
			t.Errorf("error %d = %v, want %s:%d %q", i, l[i], want.file, want.line, want.msg)
		}
	}
	if len(cfg.Outputs) != 2 {
		t.Errorf("outputs = %d", len(cfg.Outputs))
	}
}

func TestClassicIncludeLimit(t *testing.T) {
	fsys := memFS{}
	var b strings.Builder
	for i := 0; i < maxFiles+5; i++ {
		name := "f" + strconv.Itoa(i) + ".conf"
		fsys[name] = "@SET V" + strconv.Itoa(i) + "=1\n"
		b.WriteString("@INCLUDE " + name + "\n")
	}
	_, err := parseClassic(fsys, "", []byte(b.String()), nil, false)
	l := errList(t, err)
	if len(l) != 1 || !strings.Contains(l[0].Msg, "too many configuration files") {
		t.Fatalf("errors = %v", err)
	}
}

func TestParseParsersFile(t *testing.T) {
	for _, path := range []string{"testdata/parsers.conf", "testdata/parsers.yaml"} {
		t.Run(path, func(t *testing.T) {
			parsers, ml, err := ParseParsersFile(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(parsers) < 1 || parsers[0].Plugin() != "json" {
				t.Fatalf("parsers = %+v", parsers)
			}
			if len(ml) != 1 || ml[0].Plugin() != "multiline-regex-test" {
				t.Fatalf("multiline parsers = %+v", ml)
			}
			if tk, _ := parsers[0].Get("time_key"); tk != "time" {
				t.Errorf("time_key = %q", tk)
			}
			if strings.HasSuffix(path, ".conf") {
				if f, _ := parsers[0].Get("time_format"); f != "%d/%b/%Y:%H:%M:%S %z" {
					t.Errorf("time_format = %q", f)
				}
				rules := ml[0].GetAll("rule")
				if len(rules) != 2 || rules[1] != `"cont"          "/^\s+at.*/"                     "cont"` {
					t.Errorf("rules = %q", rules)
				}
			} else {
				if len(ml[0].Groups) != 2 || ml[0].Groups[0].Name != "rules" {
					t.Fatalf("groups = %+v", ml[0].Groups)
				}
				if s, _ := ml[0].Groups[1].Get("regex"); s != `/^\s+at.*/` {
					t.Errorf("regex = %q", s)
				}
			}
		})
	}
	if _, _, err := ParseParsersFile("testdata/does-not-exist.conf", nil); err == nil {
		t.Error("missing parsers file: no error")
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.conf"))
	l := errList(t, err)
	if len(l) != 1 || !strings.Contains(l[0].Msg, "cannot open") {
		t.Errorf("errors = %v", err)
	}
	_, err = Load(t.TempDir()) // a directory
	if l := errList(t, err); len(l) != 1 || !strings.Contains(l[0].Msg, "not a regular file") {
		t.Errorf("errors = %v", err)
	}
}

func TestLoadPicksFormat(t *testing.T) {
	dir := t.TempDir()
	yml := "pipeline:\n  inputs:\n    - name: dummy\n"
	writeFiles(t, dir, map[string]string{"a.YML": yml, "b.yaml": yml, "c.cfg": "[INPUT]\n    Name dummy\n"})
	for _, n := range []string{"a.YML", "b.yaml", "c.cfg"} {
		cfg, err := Load(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if len(cfg.Inputs) != 1 || cfg.Inputs[0].Plugin() != "dummy" {
			t.Errorf("%s: inputs = %+v", n, cfg.Inputs)
		}
	}
}

func TestHostnamePreset(t *testing.T) {
	h, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("HOSTNAME", "")
	os.Unsetenv("HOSTNAME")
	if v, ok := processEnv("HOSTNAME"); !ok || v != h {
		t.Errorf("HOSTNAME = %q, %v; want %q", v, ok, h)
	}
}
