package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDummyStdoutYAML(t *testing.T) {
	cfg, err := Load("testdata/dummy_stdout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Inputs) != 1 || len(cfg.Outputs) != 1 {
		t.Fatalf("got %d inputs, %d outputs", len(cfg.Inputs), len(cfg.Outputs))
	}
	in, out := cfg.Inputs[0], cfg.Outputs[0]
	if in.Plugin() != "dummy" || in.Type != TypeInput || in.Header != "inputs" || in.Line != 3 {
		t.Errorf("input = %+v", in)
	}
	if tag, _ := in.Get("tag"); tag != "dummy.log" {
		t.Errorf("tag = %q", tag)
	}
	if out.Plugin() != "stdout" || out.Line != 7 {
		t.Errorf("output = %+v", out)
	}
	if m, _ := out.Get("Match"); m != "*" {
		t.Errorf("match = %q", m)
	}
	if f, l := out.Pos("match"); f != "testdata/dummy_stdout.yaml" || l != 8 {
		t.Errorf("Pos(match) = %s:%d", f, l)
	}
	if cfg.Service == nil || cfg.Format != "yaml" {
		t.Errorf("service = %+v, format %q", cfg.Service, cfg.Format)
	}
}

func TestYAMLKeyTranslation(t *testing.T) {
	tests := []struct{ in, want string }{
		{"logLevel", "log_level"},
		{"httpServer", "http_server"},
		{"storage.totalLimitSize", "storage.total_limit_size"},
		{"log_level", "log_level"},
		{"mem_Buf_Limit", "mem_buf_limit"}, // has '_': lowercased only
		{"mem_BufLimit", "mem_buflimit"},
		{"Mem_Buf_Limit", "Mem_Buf_Limit"}, // uppercase first: verbatim
		{"Name", "Name"},
		{"name", "name"},
		{"aBC", "a_b_c"},
		{"1Key", "1Key"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := yamlKey(tt.in); got != tt.want {
			t.Errorf("yamlKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Compatibility test idea 31 (and more of §6.2).
func TestYAMLService(t *testing.T) {
	cfg := mustYAML(t, `
SERVICE:
  logLevel: debug
  flush: 1.50
  httpServer: on
  http_port: 0x7e4
  Parsers_File: [a.conf, b.conf]
  hc_period:
pipeline:
  inputs:
    - Name: dummy
`, nil)
	if got := propsString(cfg.Service.Props); got != "log_level=debug;flush=1.50;http_server=on;http_port=0x7e4;Parsers_File=a.conf;Parsers_File=b.conf" {
		t.Errorf("service = %s", got)
	}
	if v, ok := cfg.Service.Get("log_level"); !ok || v != "debug" {
		t.Errorf("log_level = %q", v)
	}
	if all := cfg.Service.GetAll("parsers_file"); len(all) != 2 {
		t.Errorf("parsers_file = %v", all)
	}
	if cfg.Service.Line != 2 || cfg.Service.Header != "SERVICE" {
		t.Errorf("service pos = %d %q", cfg.Service.Line, cfg.Service.Header)
	}
	if cfg.Inputs[0].Plugin() != "dummy" {
		t.Errorf("input name = %q", cfg.Inputs[0].Plugin())
	}
}

func TestYAMLPipeline(t *testing.T) {
	cfg := mustYAML(t, `
env:
  LATE: must-still-work
pipeline:
  inputs:
    - name: tail
      path: [/var/log/a.log, /var/log/b.log]
      tag: ${LATE}
      parser: ${UNSET}
      processors:
        logs:
          - name: content_modifier
            action: upsert
    - name: cpu
      interval_sec: 1
      routes:
        logs: [out1]
  filters:
    - name: grep
      match: '*'
      regex: log aa
  outputs:
    - name: stdout
      match: '*'
      format: json_lines
customs:
  - name: calyptia
    api_key: xyz
`, nil)
	in := cfg.Inputs[0]
	if got := propsString(in.Props); got != "name=tail;path=/var/log/a.log;path=/var/log/b.log;tag=must-still-work" {
		t.Errorf("tail props = %s", got)
	}
	if got := propsString(cfg.Inputs[1].Props); got != "name=cpu;interval_sec=1" {
		t.Errorf("cpu props = %s", got)
	}
	if len(cfg.Filters) != 1 || cfg.Filters[0].Plugin() != "grep" || len(cfg.Outputs) != 1 {
		t.Errorf("filters/outputs = %+v %+v", cfg.Filters, cfg.Outputs)
	}
	if len(cfg.Customs) != 1 || cfg.Customs[0].Type != TypeCustom || cfg.Customs[0].Plugin() != "calyptia" {
		t.Errorf("customs = %+v", cfg.Customs)
	}
	if f, l := in.Pos("tag"); f != "test.yaml" || l != 8 {
		t.Errorf("Pos(tag) = %s:%d", f, l)
	}
}

func TestYAMLEnv(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"secret.txt": "s3cr3t\n",
		"main.yaml": `
pipeline:
  outputs:
    - name: http
      host: ${HOST}
      http_passwd: ${PASS}
      uri: ${FLOE_TEST_URI}
env:
  - name: HOST
    value: example.com
  - name: PASS
    uri: file://secret.txt
`,
	})
	t.Setenv("FLOE_TEST_URI", "/x")
	main := filepath.Join(dir, "main.yaml")
	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	out := cfg.Outputs[0]
	if got := propsString(out.Props); got != "name=http;host=example.com;http_passwd=s3cr3t;uri=/x" {
		t.Errorf("props = %s", got)
	}
	if cfg.Env["HOST"] != "example.com" || cfg.Env["PASS"] != "s3cr3t" {
		t.Errorf("env = %v", cfg.Env)
	}
	if len(cfg.Files) != 2 || cfg.Files[1] != filepath.Join(dir, "secret.txt") {
		t.Errorf("files = %v", cfg.Files)
	}

	// map form; YAML ints and bools are kept as their text
	cfg = mustYAML(t, "env:\n  PORT: 8080\n  FLAG: yes\npipeline:\n  inputs:\n    - name: x\n      port: ${PORT}\n      flag: ${FLAG}\n", nil)
	if got := propsString(cfg.Inputs[0].Props); got != "name=x;port=8080;flag=yes" {
		t.Errorf("props = %s", got)
	}
}

func TestYAMLIncludes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.yaml": "includes:\n  - sub/inputs.yaml\n  - conf.d/*.yaml\n" +
			"service:\n  flush: ${FLUSH}\n",
		// relative to the including file: sub/outputs.yaml, not ./outputs.yaml
		"sub/inputs.yaml":  "includes:\n  - outputs.yaml\npipeline:\n  inputs:\n    - name: dummy\n",
		"sub/outputs.yaml": "pipeline:\n  outputs:\n    - name: stdout\n      match: '*'\n",
		"outputs.yaml":     "pipeline:\n  outputs:\n    - name: wrong\n",
		"conf.d/b.yaml":    "pipeline:\n  filters:\n    - name: b\n",
		"conf.d/a.yaml":    "env:\n  FLUSH: 2\npipeline:\n  filters:\n    - name: a\n",
	})
	main := filepath.Join(dir, "main.yaml")
	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Inputs) != 1 || len(cfg.Outputs) != 1 || cfg.Outputs[0].Plugin() != "stdout" {
		t.Fatalf("inputs %+v outputs %+v", cfg.Inputs, cfg.Outputs)
	}
	if len(cfg.Filters) != 2 || cfg.Filters[0].Plugin() != "a" || cfg.Filters[1].Plugin() != "b" {
		t.Errorf("filters = %+v", cfg.Filters)
	}
	if f, _ := cfg.Service.Get("flush"); f != "2" {
		t.Errorf("flush = %q", f)
	}
	if cfg.Outputs[0].File != filepath.Join(dir, "sub/outputs.yaml") {
		t.Errorf("output file = %s", cfg.Outputs[0].File)
	}
	if len(cfg.Files) != 5 || cfg.Files[0] != main {
		t.Errorf("files = %v", cfg.Files)
	}
}

func TestYAMLIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.yaml": "includes:\n" +
			"  - missing.yaml\n" + // 2
			"  - a.yaml\n" + //
			"  - a.yaml\n" + // 4: twice
			"  - main.yaml\n" + // 5: itself
			"  - none/*.yaml\n", // 6
		"a.yaml": "pipeline:\n  inputs:\n    - name: dummy\n",
	})
	main := filepath.Join(dir, "main.yaml")
	_, err := Load(main)
	l := errList(t, err)
	if len(l) != 4 || !hasError(l, 2, "cannot open") || !hasError(l, 4, "already included") ||
		!hasError(l, 5, "already included") || !hasError(l, 6, "no files match") {
		t.Errorf("errors = %v", err)
	}
}

func TestYAMLParsersPluginsOthers(t *testing.T) {
	cfg := mustYAML(t, `
parsers:
  - name: json
    format: json
multiline_parsers:
  - name: ml
    type: regex
    rules:
      - state: start_state
        regex: '/^\d/'
        next_state: cont
      - state: cont
        regex: '/^\s/'
        next_state: cont
plugins:
  - /opt/a.so
  - /opt/b.so
upstream_servers:
  - name: forward-balancing
    nodes:
      - name: node-1
        host: 127.0.0.1
        port: 43000
stream_processor:
  - name: sp
    exec: SELECT * FROM STREAM:x;
extensions:
  foo: bar
  nested:
    a: b
Custom_Thing:
  key: value
`, nil)
	if len(cfg.Parsers) != 1 || cfg.Parsers[0].Plugin() != "json" {
		t.Errorf("parsers = %+v", cfg.Parsers)
	}
	ml := cfg.MultilineParsers
	if len(ml) != 1 || len(ml[0].Groups) != 2 || ml[0].Groups[0].Name != "rules" {
		t.Fatalf("multiline = %+v", ml)
	}
	if got := propsString(ml[0].Groups[0].Props); got != `state=start_state;regex=/^\d/;next_state=cont` {
		t.Errorf("rule 0 = %s", got)
	}
	if len(cfg.Plugins) != 1 || strings.Join(cfg.Plugins[0].GetAll("path"), ",") != "/opt/a.so,/opt/b.so" || cfg.Plugins[0].Type != TypePlugins {
		t.Errorf("plugins = %+v", cfg.Plugins)
	}
	if len(cfg.Other) != 4 {
		t.Fatalf("other = %d sections", len(cfg.Other))
	}
	up := cfg.Other[0]
	if up.Type != TypeUpstreamServers || up.Plugin() != "forward-balancing" || len(up.Groups) != 1 || up.Groups[0].Name != "nodes" {
		t.Errorf("upstream = %+v", up)
	}
	if p, _ := up.Groups[0].Get("port"); p != "43000" {
		t.Errorf("node port = %q", p)
	}
	if sp := cfg.Other[1]; sp.Type != TypeStreamProcessor || sp.Plugin() != "sp" {
		t.Errorf("stream processor = %+v", sp)
	}
	if ext := cfg.Other[2]; ext.Type != TypeOther || ext.Header != "extensions" || propsString(ext.Props) != "foo=bar" {
		t.Errorf("extensions = %+v", ext)
	}
	if o := cfg.Other[3]; o.Type != TypeOther || o.Header != "Custom_Thing" || propsString(o.Props) != "key=value" {
		t.Errorf("other = %+v", o)
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		line int
		msg  string
	}{
		{"syntax", "service:\n  flush: 1\n  bad: [\n", 3, "invalid YAML"},
		{"tab indent", "service:\n\tflush: 1\n", 2, "invalid YAML"},
		{"top level list", "- a\n- b\n", 1, "top level must be a map"},
		{"duplicate service", "service:\n  flush: 1\nservice:\n  flush: 2\n", 3, "duplicated definition of 'service'"},
		{"bad component", "pipeline:\n  input:\n    - name: dummy\n", 2, "pipeline component 'input' is not valid"},
		{"inputs not list", "pipeline:\n  inputs:\n    name: dummy\n", 3, "must be a list of maps"},
		{"entry not map", "pipeline:\n  inputs:\n    - dummy\n", 3, "must be a map"},
		{"map value", "pipeline:\n  outputs:\n    - name: x\n      header:\n        a: b\n", 5, "a map is not a valid property value"},
		{"missing name", "pipeline:\n  outputs:\n    - match: '*'\n", 3, "missing the 'name' property"},
		{"plugins not list", "plugins: /a.so\n", 1, "must be a list of paths"},
		{"env bad", "env: 1\n", 1, "'env' must be a map or a list"},
		{"env entry without name", "env:\n  - value: x\n", 2, "without a 'name'"},
		{"env bad uri", "env:\n  - name: A\n    uri: http://x\n", 3, "unsupported env uri"},
		{"other scalar", "foo: bar\n", 1, "must be a map or a list of maps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML("e.yaml", []byte(tt.data), nil)
			l := errList(t, err)
			if len(l) != 1 || l[0].Line != tt.line || !strings.Contains(l[0].Msg, tt.msg) || l[0].File != "e.yaml" {
				t.Errorf("errors = %v; want one at line %d containing %q", err, tt.line, tt.msg)
			}
		})
	}
}

func TestYAMLSeveralErrors(t *testing.T) {
	data := `service:
  flush: 1
pipeline:
  inputs:
    - name: dummy
      nested:
        a: b
    - tag: x
  outputs:
    - name: stdout
  bogus: []
`
	_, err := ParseYAML("s.yaml", []byte(data), nil)
	l := errList(t, err)
	if len(l) != 3 || l[0].Line != 7 || l[0].Key != "nested" || l[1].Line != 8 || l[2].Line != 11 {
		t.Errorf("errors = %v", err)
	}
}

func TestYAMLEmptyAndAliases(t *testing.T) {
	cfg := mustYAML(t, "", nil)
	if cfg.Service == nil || len(cfg.Inputs) != 0 {
		t.Errorf("empty config = %+v", cfg)
	}
	cfg = mustYAML(t, "---\npipeline:\n", nil)
	if cfg.Service == nil {
		t.Error("nil service")
	}
	cfg = mustYAML(t, `
x-common: &common
  name: stdout
  match: '*'
pipeline:
  outputs:
    - *common
    - name: &n null
      tag: *n
`, nil)
	if len(cfg.Outputs) != 2 || cfg.Outputs[0].Plugin() != "stdout" {
		t.Errorf("outputs = %+v", cfg.Outputs)
	}
	// scalars keep their text, as libyaml gives it to Fluent Bit
	if got := propsString(cfg.Outputs[1].Props); got != "name=null;tag=null" {
		t.Errorf("props = %s", got)
	}
}

func TestYAMLListValues(t *testing.T) {
	cfg := mustYAML(t, `
pipeline:
  filters:
    - name: modify
      add: ["  a 1", b 2]
    - name: lua
      rules:
        - name: r1
          values: [x, y]
`, nil)
	// list entries are not trimmed (Fluent Bit appends them as they are)
	if got := strings.Join(cfg.Filters[0].GetAll("add"), "|"); got != "  a 1|b 2" {
		t.Errorf("add = %q", got)
	}
	g := cfg.Filters[1].Groups
	if len(g) != 1 || strings.Join(g[0].GetAll("values"), ",") != "x,y" {
		t.Errorf("groups = %+v", g)
	}

	_, err := ParseYAML("l.yaml", []byte("pipeline:\n  inputs:\n    - name: x\n      a: [[1]]\n      ? [k]\n      : v\n"), nil)
	l := errList(t, err)
	if len(l) != 2 || !hasError(l, 4, "nested lists") || !hasError(l, 5, "property names must be strings") {
		t.Errorf("errors = %v", err)
	}
}
