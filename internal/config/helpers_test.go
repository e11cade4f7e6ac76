package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// memFS is an in-memory fileSystem: fuzzers and tests use it so includes
// never reach the real disk.
type memFS map[string]string

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return filepath.Base(i.name) }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

func (m memFS) Stat(name string) (fs.FileInfo, error) {
	c, ok := m[filepath.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return memInfo{name: name, size: int64(len(c))}, nil
}

func (m memFS) ReadFile(name string) ([]byte, error) {
	c, ok := m[filepath.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(c), nil
}

func (m memFS) Glob(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for k := range m {
		if ok, _ := filepath.Match(pattern, k); ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// writeFiles creates files (name → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// errList extracts the ErrorList from err (nil when err is nil).
func errList(t *testing.T, err error) ErrorList {
	t.Helper()
	if err == nil {
		return nil
	}
	var l ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("error %v (%T) is not an ErrorList", err, err)
	}
	return l
}

// mustParse parses classic data and fails on any error.
func mustClassic(t *testing.T, data string, env Lookup) *Config {
	t.Helper()
	cfg, err := ParseClassic("test.conf", []byte(data), env)
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	return cfg
}

func mustYAML(t *testing.T, data string, env Lookup) *Config {
	t.Helper()
	cfg, err := ParseYAML("test.yaml", []byte(data), env)
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	return cfg
}

func envOf(m map[string]string) Lookup {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// propsString renders props as "k=v;k=v" for compact comparisons.
func propsString(props []Prop) string {
	s := make([]string, len(props))
	for i, p := range props {
		s[i] = p.Key + "=" + p.Value
	}
	return strings.Join(s, ";")
}

// hasError reports whether some error has the line and contains msg.
func hasError(l ErrorList, line int, msg string) bool {
	for _, e := range l {
		if e.Line == line && strings.Contains(e.Msg, msg) {
			return true
		}
	}
	return false
}
