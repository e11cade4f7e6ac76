package config

import (
	"strings"
	"testing"
)

func TestFromArgs(t *testing.T) {
	args := []string{
		"-i", "dummy", "-t", "dummy.log", "-p", "Rate=5", // 1..6
		"--input=cpu", "--prop", "interval_sec = 2", // 7..9
		"-F", "grep", "-p", "regex=log aa", "-m", "dummy.*", // 10..15
		"-o", "stdout", "-m", "*", "-p", "format=json_lines", // 16..21
		"--output", "null", "--match=cpu.*", // 22..24
		"-f", "5", "-R", "parsers.conf", "--parser=more.conf", // 25..29
		"-H", "-P", "2021", "-l", "/tmp/fb.log", "-vv", // 30..35
	}
	cfg, err := FromArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Inputs) != 2 || len(cfg.Filters) != 1 || len(cfg.Outputs) != 2 {
		t.Fatalf("sections: %d in, %d filters, %d out", len(cfg.Inputs), len(cfg.Filters), len(cfg.Outputs))
	}
	checks := []struct {
		s    *Section
		want string
	}{
		{cfg.Inputs[0], "name=dummy;tag=dummy.log;rate=5"},
		{cfg.Inputs[1], "name=cpu;interval_sec=2"},
		{cfg.Filters[0], "name=grep;regex=log aa;match=dummy.*"},
		{cfg.Outputs[0], "name=stdout;match=*;format=json_lines"},
		{cfg.Outputs[1], "name=null;match=cpu.*"},
		{cfg.Service, "flush=5;parsers_file=parsers.conf;parsers_file=more.conf;http_server=on;http_port=2021;log_file=/tmp/fb.log;log_level=trace"},
	}
	for _, c := range checks {
		if got := propsString(c.s.Props); got != c.want {
			t.Errorf("%s props = %q, want %q", c.s.Type, got, c.want)
		}
	}
	if f, l := cfg.Inputs[0].Pos("rate"); f != CommandLine || l != 5 {
		t.Errorf("Pos(rate) = %s:%d", f, l)
	}
	if cfg.Inputs[1].Line != 7 || cfg.Outputs[1].Line != 22 {
		t.Errorf("section lines = %d, %d", cfg.Inputs[1].Line, cfg.Outputs[1].Line)
	}
	if cfg.Format != "args" {
		t.Errorf("format = %q", cfg.Format)
	}
}

func TestFromArgsShortForms(t *testing.T) {
	tests := []struct {
		args    []string
		service string
		input   string
	}{
		{[]string{"-idummy", "-tx"}, "", "name=dummy;tag=x"},
		{[]string{"-i", "dummy", "-v"}, "log_level=debug", "name=dummy"},
		{[]string{"-i", "dummy", "-v", "-v"}, "log_level=trace", "name=dummy"},
		{[]string{"-i", "dummy", "-vvvv"}, "log_level=trace", "name=dummy"},
		{[]string{"-i", "dummy", "-q"}, "log_level=off", "name=dummy"},
		{[]string{"-i", "dummy", "-q", "-v"}, "log_level=error", "name=dummy"}, // fluent-bit counts from off
		{[]string{"-Hvi", "dummy"}, "http_server=on;log_level=debug", "name=dummy"},
		{[]string{"--inp=dummy", "--verb"}, "log_level=debug", "name=dummy"}, // unambiguous prefixes
		{[]string{"--input", "dummy", "--http_server", "--http_listen=127.0.0.1", "-b", "/var/floe", "-d"},
			"http_server=on;http_listen=127.0.0.1;storage.path=/var/floe;daemon=on", "name=dummy"},
	}
	for _, tt := range tests {
		cfg, err := FromArgs(tt.args)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if got := propsString(cfg.Service.Props); got != tt.service {
			t.Errorf("%v: service = %q, want %q", tt.args, got, tt.service)
		}
		if got := propsString(cfg.Inputs[0].Props); got != tt.input {
			t.Errorf("%v: input = %q, want %q", tt.args, got, tt.input)
		}
	}
}

func TestFromArgsPluginsAndCustoms(t *testing.T) {
	cfg, err := FromArgs([]string{"-e", "/a.so", "--plugin=/b.so", "-C", "calyptia", "-p", "api_key=k", "-i", "dummy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Plugins) != 1 || strings.Join(cfg.Plugins[0].GetAll("path"), ",") != "/a.so,/b.so" {
		t.Errorf("plugins = %+v", cfg.Plugins)
	}
	if len(cfg.Customs) != 1 || propsString(cfg.Customs[0].Props) != "name=calyptia;api_key=k" {
		t.Errorf("customs = %+v", cfg.Customs)
	}
}

func TestFromArgsExpandsEnv(t *testing.T) {
	t.Setenv("FLOE_ARGS_TAG", "from.env")
	cfg, err := FromArgs([]string{"-i", "dummy", "-t", "${FLOE_ARGS_TAG}", "-p", "alias=${FLOE_UNSET_X:-d}"})
	if err != nil {
		t.Fatal(err)
	}
	if got := propsString(cfg.Inputs[0].Props); got != "name=dummy;tag=from.env;alias=d" {
		t.Errorf("props = %s", got)
	}
}

func TestFromArgsErrors(t *testing.T) {
	tests := []struct {
		args []string
		line int
		msg  string
	}{
		{[]string{"-p", "a=b", "-i", "dummy"}, 1, "no plugin"},
		{[]string{"-t", "x"}, 1, "no plugin"},
		{[]string{"-m", "*"}, 1, "no filter or output"},
		{[]string{"-i", "dummy", "-p", "novalue"}, 3, "expected KEY=VALUE"},
		{[]string{"-i", "dummy", "-p", "=v"}, 3, "empty property name"},
		{[]string{"-i", "dummy", "-x"}, 3, "unknown flag -x"},
		{[]string{"-i", "dummy", "--bogus"}, 3, "unknown flag --bogus"},
		{[]string{"-i", "dummy", "--http"}, 0, ""}, // exact long name wins over prefixes
		{[]string{"-i", "dummy", "--htt"}, 3, "ambiguous option --htt"},
		{[]string{"-i", "dummy", "-c", "fluent-bit.conf"}, 3, "flag -c is not configuration shorthand"},
		{[]string{"-i", "dummy", "--config=x"}, 3, "flag --config is not configuration shorthand"},
		{[]string{"-i", "dummy", "-o"}, 3, "flag -o requires an argument"},
		{[]string{"-i", "dummy", "--verbose=1"}, 3, "does not take an argument"},
		{[]string{"-i", "dummy", "stray"}, 3, "unexpected argument"},
		{[]string{"-i", "dummy", "--", "-o"}, 4, "unexpected argument"},
		{[]string{"-i", ""}, 1, "missing the 'name' property"},
	}
	for _, tt := range tests {
		_, err := FromArgs(tt.args)
		if tt.line == 0 {
			if err != nil {
				t.Errorf("%v: unexpected error %v", tt.args, err)
			}
			continue
		}
		l := errList(t, err)
		if len(l) != 1 || l[0].Line != tt.line || l[0].File != CommandLine || !strings.Contains(l[0].Msg, tt.msg) {
			t.Errorf("%v: errors = %v; want one at %d containing %q", tt.args, err, tt.line, tt.msg)
		}
	}
}

func TestFromArgsMatchAfterInputIgnored(t *testing.T) {
	cfg, err := FromArgs([]string{"-i", "cpu", "-m", "*", "-o", "stdout"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Inputs[0].Get("match"); ok {
		t.Error("match set on an input")
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Line != 3 {
		t.Errorf("warnings = %v", ErrorList(cfg.Warnings))
	}
}
