package file

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/plugins/output/format"
)

// fileSink is a directory the file output writes to; what it holds is read
// back from the files as a user would read them, in the output's format.
//
// Its faults are the ones a disk gives: the transient one is a full disk
// (the target is swapped for a link to /dev/full, whose writes fail with
// ENOSPC, until Heal puts the file back), answered RETRY; the permanent one
// is the output directory replaced by a regular file (ENOTDIR), answered
// ERROR as Fluent Bit's out_file answers a file it cannot open. A file has
// no connection to drop: Restart is a logrotate-style move of the file, and
// the output must go on in a new file without losing or doubling a record.
type fileSink struct {
	root, dir string // dir = root/out, the output's path
	format    string
	extra     []string
	rotations int
}

func newFileSink(t *testing.T, format string, extra ...string) *fileSink {
	root := t.TempDir()
	s := &fileSink{root: root, dir: filepath.Join(root, "out"), format: format, extra: extra}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *fileSink) Config() []string {
	return append([]string{"path " + s.dir, "format " + s.format}, s.extra...)
}

func (s *fileSink) target() string { return filepath.Join(s.dir, SanitizeTag(plugintest.Tag)) }

// Seqs reads every regular file under the sink's root: the target, the
// rotated files and the directory moved aside by the permanent fault.
func (s *fileSink) Seqs(t testing.TB) []int64 {
	var seqs []int64
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || p == s.dir {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		seqs = append(seqs, s.parse(t, p, b)...)
		return nil
	})
	if err != nil {
		t.Fatalf("read the output files: %v", err)
	}
	return seqs
}

var (
	outFileLine = regexp.MustCompile(`^` + regexp.QuoteMeta(plugintest.Tag) + `: \[(\d+)\.(\d{9}), (\{.*\})\]$`)
	csvLine     = regexp.MustCompile(`^(\d+)\.(\d{9}),(\d+),"record (\d+)"$`)
	ltsvLine    = regexp.MustCompile(`^"time":(\d+)\.(\d{6})\t"seq":(\d+)\t"message":"record (\d+)"$`)
	tmplLine    = regexp.MustCompile(`^(\d+)\.(\d{6}) (\d+) record (\d+)$`)
)

// parse reads the seqs of one file, checking that every line is the whole
// record in the format (time, seq and message agree).
func (s *fileSink) parse(t testing.TB, name string, b []byte) []int64 {
	var seqs []int64
	if s.format == fmtMsgpack {
		err := format.EachRecord(b, func(r *format.Record) error {
			js, err := format.AppendJSON(nil, r.Body, event.DefaultJSON)
			if err != nil {
				return err
			}
			seq := jsonSeq(t, name, js)
			if r.Time.Sec != 1700000000+seq {
				t.Errorf("%s: record %d has the time %v", name, seq, r.Time)
			}
			seqs = append(seqs, seq)
			return nil
		})
		if err != nil {
			t.Fatalf("%s is not the chunks' MessagePack: %v", name, err)
		}
		return seqs
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var seq int64
		var sec string
		switch s.format {
		case fmtOutFile:
			m := outFileLine.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s: %q is not an out_file line", name, line)
			}
			seq, sec = jsonSeq(t, name, []byte(m[3])), m[1]
		case fmtPlain:
			seq = jsonSeq(t, name, []byte(line))
			sec = strconv.FormatInt(1700000000+seq, 10)
		case fmtCSV, fmtLTSV, fmtTemplate:
			re := map[string]*regexp.Regexp{fmtCSV: csvLine, fmtLTSV: ltsvLine, fmtTemplate: tmplLine}[s.format]
			m := re.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s: %q is not a %s line of a contract record", name, line, s.format)
			}
			if m[3] != m[4] {
				t.Fatalf("%s: %q mixes two records", name, line)
			}
			seq, _ = strconv.ParseInt(m[3], 10, 64)
			sec = m[1]
		}
		if want := strconv.FormatInt(1700000000+seq, 10); sec != want {
			t.Errorf("%s: record %d has the time %s, want %s", name, seq, sec, want)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func jsonSeq(t testing.TB, name string, js []byte) int64 {
	var r struct {
		Seq     *int64 `json:"seq"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(js, &r); err != nil || r.Seq == nil {
		t.Fatalf("%s: %q is not a contract record: %v", name, js, err)
	}
	if want := "record " + strconv.FormatInt(*r.Seq, 10); r.Message != want {
		t.Fatalf("%s: record %d has the message %q", name, *r.Seq, r.Message)
	}
	return *r.Seq
}

func (s *fileSink) Inject(f outputtest.Fault) bool {
	if f == outputtest.Permanent {
		// The output directory is gone and a regular file stands at its
		// path: nothing can be created there until an operator acts.
		if err := os.Rename(s.dir, s.dir+".moved"); err != nil {
			panic(err)
		}
		if err := os.WriteFile(s.dir, nil, 0o644); err != nil {
			panic(err)
		}
		return true
	}
	// A full disk: the file is kept aside and its name leads to /dev/full.
	if _, err := os.Stat("/dev/full"); err != nil {
		return false
	}
	if err := os.Rename(s.target(), s.target()+".full"); err != nil {
		panic(err)
	}
	if err := os.Symlink("/dev/full", s.target()); err != nil {
		panic(err)
	}
	return true
}

// Heal frees the disk: the kept file returns under its name.
func (s *fileSink) Heal(t testing.TB) {
	if err := os.Remove(s.target()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.target()+".full", s.target()); err != nil {
		t.Fatal(err)
	}
}

func (s *fileSink) Restart(t testing.TB) {
	s.rotations++
	if err := os.Rename(s.target(), s.target()+"."+strconv.Itoa(s.rotations)); err != nil {
		t.Fatalf("rotate: %v", err)
	}
}

func TestContract(t *testing.T) {
	for _, f := range []struct {
		format string
		extra  []string
	}{
		{fmtOutFile, nil},
		{fmtPlain, nil},
		{fmtCSV, nil},
		{fmtLTSV, nil},
		{fmtTemplate, []string{"template {time} {seq} {message}"}},
		{fmtMsgpack, nil},
	} {
		t.Run(f.format, func(t *testing.T) {
			outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink {
				return newFileSink(t, f.format, f.extra...)
			}, outputtest.Options{})
		})
	}
}
