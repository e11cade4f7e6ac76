package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	maxFiles    = 1000     // FLB_CF_FILE_NUM_LIMIT: main file + includes
	maxFileSize = 64 << 20 // refuse to read anything bigger (e.g. /proc/kcore)
)

// fileSystem is what the parsers need from the OS; tests and fuzzers use an
// in-memory one so that includes cannot reach the real disk.
type fileSystem interface {
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

type osFS struct{}

func (osFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// readConfigFile reads one configuration file, refusing non-regular and huge
// files (a FIFO or /dev/zero would block or never end).
func readConfigFile(fsys fileSystem, path string) ([]byte, error) {
	info, err := fsys.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open file: %v", unwrapPathError(err))
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("cannot read file: not a regular file")
	}
	if info.Size() > maxFileSize {
		return nil, fmt.Errorf("cannot read file: larger than %d bytes", maxFileSize)
	}
	data, err := fsys.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %v", unwrapPathError(err))
	}
	return data, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

type seenFile struct {
	abs  string
	info fs.FileInfo
}

// fileSet tracks the files read for one configuration: the 1000-file limit
// and "the same file twice" detection (by inode when available, else path).
type fileSet struct {
	fsys  fileSystem
	seen  []seenFile
	files *[]string
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// addMain records the main file, whose content the caller already has.
func (t *fileSet) addMain(path string) {
	if path == "" {
		return
	}
	sf := seenFile{abs: absPath(path)}
	if info, err := t.fsys.Stat(path); err == nil {
		sf.info = info
	}
	t.seen = append(t.seen, sf)
	*t.files = append(*t.files, path)
}

func (t *fileSet) count() int { return len(t.seen) }

// open reads an included file, enforcing the limits.
func (t *fileSet) open(path string) ([]byte, error) {
	if len(t.seen) >= maxFiles {
		return nil, fmt.Errorf("too many configuration files (limit %d)", maxFiles)
	}
	info, err := t.fsys.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open file %q: %v", path, unwrapPathError(err))
	}
	abs := absPath(path)
	for _, s := range t.seen {
		if s.abs == abs || (s.info != nil && os.SameFile(s.info, info)) {
			return nil, fmt.Errorf("file %q is already included", path)
		}
	}
	data, err := readConfigFile(t.fsys, path)
	if err != nil {
		return nil, fmt.Errorf("file %q: %v", path, err)
	}
	t.seen = append(t.seen, seenFile{abs: abs, info: info})
	*t.files = append(*t.files, path)
	return data, nil
}

// glob expands an include pattern, keeping regular files, sorted.
func (t *fileSet) glob(pattern string) ([]string, error) {
	matches, err := t.fsys.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("invalid include pattern %q: %v", pattern, err)
	}
	var out []string
	for _, m := range matches {
		if info, err := t.fsys.Stat(m); err == nil && info.Mode().IsRegular() {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no files match include pattern %q", pattern)
	}
	sort.Strings(out)
	return out, nil
}

func hasGlob(p string) bool { return strings.Contains(p, "*") }
