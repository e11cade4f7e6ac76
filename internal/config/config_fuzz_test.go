package config

import (
	"os"
	"path/filepath"
	"testing"
)

// fuzzFS gives the fuzzers a few files to include, reachable both by
// relative name and by the main file's directory, without touching disk.
func fuzzFS(main string, files map[string]string) memFS {
	root := filepath.Dir(absPath(main))
	m := memFS{}
	for k, v := range files {
		m[k] = v
		m[filepath.Join(root, k)] = v
	}
	return m
}

var fuzzEnv = envOf(map[string]string{"HOME": "/home/fuzz", "EMPTY": ""})

func addFileSeeds(f *testing.F, paths ...string) {
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
}

// checkConfig asserts the invariants every parse result must keep.
func checkConfig(t *testing.T, cfg *Config, err error, lowerKeys bool) {
	if cfg == nil || cfg.Service == nil {
		t.Fatalf("nil config or service (err %v)", err)
	}
	if err != nil {
		l := errList(t, err)
		if len(l) == 0 {
			t.Fatal("non-nil error with an empty ErrorList")
		}
		for _, e := range l {
			if e.Error() == "" {
				t.Fatal("empty error message")
			}
			if e.Line < 0 || e.Column < 0 || (e.Column > 0 && e.Line == 0) {
				t.Fatalf("bad position %d:%d in %q", e.Line, e.Column, e.Error())
			}
		}
		// problems come out in reading order: sorting again changes nothing
		again := append([]*Error(nil), l...)
		cfg.SortErrors(again)
		for i := range again {
			if again[i] != l[i] {
				t.Fatalf("problems not in reading order:\n%v", err)
			}
		}
	}
	for _, s := range cfg.sections() {
		for _, p := range s.Props {
			if p.Value == "" {
				t.Fatalf("empty value kept for key %q", p.Key)
			}
			if lowerKeys && asciiLower(p.Key) != p.Key {
				t.Fatalf("key %q not lowercased", p.Key)
			}
			// the value helpers must not panic on anything
			_, _ = ParseSize(p.Value)
			_, _ = ParseSeconds(p.Value)
			_, _ = ParseBool(p.Value)
			_ = Expand(p.Value, cfg.Env, fuzzEnv)
		}
		_, _ = s.Get("name")
		_ = s.Plugin()
		_, _ = s.Pos("tag")
	}
}

func FuzzParseClassic(f *testing.F) {
	addFileSeeds(f, "testdata/dummy_stdout.conf", "testdata/parsers.conf")
	for _, s := range []string{
		"[SERVICE]\n    Flush 1\n    Log_Level ${LEVEL:-info}\n@SET LEVEL=debug\n",
		"[INPUT]\r\n    Name dummy\r\n\tTag x\r\n",
		"@INCLUDE inc.conf\n@INCLUDE conf.d/*.conf\n[IN]\n    Name dummy\n",
		"[CUSTOM]\n    name x\n    [g] y\n        k v\n    z 1\n",
		"[PARSER]\n    Name json\n[MULTILINE_PARSER]\n    name m\n    rule \"a\" \"/b/\" \"c\"\n",
		"[OUTPUT]\n    Name stdout\n    Match * # comment\n    Size 1.5K\n    Retry ${HOME}${EMPTY:-x}${\n",
		"  \n#c\n[INPUT\n    k\n@SET\n@X y\n",
		"[INPTU]\n    Name x\n@SET nokey\n[OUTPUT]\n  Match\n    Name y\n@INCLUDE [\n",
	} {
		f.Add([]byte(s))
	}
	fsys := fuzzFS("fuzz.conf", map[string]string{
		"inc.conf":      "[OUTPUT]\n    Name stdout\n@INCLUDE inc.conf\n",
		"conf.d/a.conf": "@SET A=1\n[FILTER]\n  Name grep\n",
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseClassic(fsys, "fuzz.conf", data, fuzzEnv, false)
		checkConfig(t, cfg, err, true)
		cfg, err = parseClassic(fsys, "fuzz.conf", data, fuzzEnv, true)
		checkConfig(t, cfg, err, true)
	})
}

func FuzzParseYAML(f *testing.F) {
	addFileSeeds(f, "testdata/dummy_stdout.yaml", "testdata/parsers.yaml")
	for _, s := range []string{
		"service:\n  logLevel: debug\n  flush: ${F:-1}\nenv:\n  F: 2\n",
		"includes:\n  - inc.yaml\n  - conf.d/*.yaml\npipeline:\n  inputs:\n    - name: dummy\n      path: [a, b]\n",
		"env:\n  - name: A\n    value: 1\n  - name: B\n    uri: file://secret\n",
		"pipeline:\n  outputs:\n    - name: x\n      processors:\n        logs: []\n      routes: {a: b}\n",
		"a: &x {b: *x}\n",
		"plugins: [/a.so]\nupstream_servers:\n  - name: u\n    nodes:\n      - host: h\n",
		"- 1\n",
		"---\n...\n---\nservice: {}\n",
		// syntax errors: located by goccy/go-yaml, the part before them checked
		"pipeline:\n  inputs:\n    - name: dummy\n      tag: x\n     bad: 1\n",
		"service:\n  flush: 1\n---\npipeline:\n  outputs:\n    - match: [a\n\tx: 1\n",
		"includes: [inc.yaml]\npipeline:\n  inputs:\n    - name: a\n      tag: 'x\n",
	} {
		f.Add([]byte(s))
	}
	fsys := fuzzFS("fuzz.yaml", map[string]string{
		"inc.yaml":      "pipeline:\n  outputs:\n    - name: stdout\nincludes: [inc.yaml]\n",
		"conf.d/a.yaml": "env:\n  A: 1\n",
		"secret":        "s\n",
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseYAML(fsys, "fuzz.yaml", data, fuzzEnv)
		checkConfig(t, cfg, err, false)
	})
}
