package multiline

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
)

// FuzzStream feeds arbitrary text, line by line and with flush timeouts in
// between, through a list of parsers chosen by mask. Whatever the input,
// the stream must not panic and every line must come out in exactly one
// record whose byte range is its own; text records are the lines joined.
func FuzzStream(f *testing.F) {
	for _, name := range []string{"java.log", "python.log", "go.log", "docker.log", "cri.log", "regex.log"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0x1f), uint8(3))
	}
	f.Add([]byte("panic: x\n\n\ngoroutine 1 [running]:\n\n"), uint8(0x04), uint8(1))
	all := []*Parser{}
	for _, n := range []string{"docker", "cri", "go", "python", "java"} {
		p, _ := Builtin(n)
		all = append(all, p)
	}
	f.Fuzz(func(t *testing.T, data []byte, mask, tick uint8) {
		var ps []*Parser
		for i, p := range all {
			if mask&(1<<i) != 0 {
				ps = append(ps, p)
			}
		}
		s := NewStream(ps, Options{MaxBytes: 256})
		var out []Record
		emit := func(r Record) { out = append(out, r) }
		now := time.Unix(1700000000, 0)
		var off int64
		type span struct{ start, end int64 }
		var lines []span
		rest := data
		for n := 0; len(rest) > 0; n++ {
			i := bytes.IndexByte(rest, '\n')
			line, size := rest, len(rest)
			if i >= 0 {
				line, size = rest[:i], i+1
			}
			s.Feed(line, event.Time{Sec: 1}, off, off+int64(size), now, emit)
			lines = append(lines, span{off, off + int64(size)})
			off += int64(size)
			rest = rest[size:]
			if tick > 0 && n%int(tick) == 0 {
				now = now.Add(DefaultFlushTimeout)
				s.FlushExpired(now, emit)
			}
			if p, ok := s.Pending(); ok && (p < 0 || p >= off) {
				t.Fatalf("pending start %d outside the %d bytes fed", p, off)
			}
		}
		s.FlushAll(emit)
		if _, ok := s.Pending(); ok {
			t.Fatal("lines pending after FlushAll")
		}
		total := 0
		sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
		for _, r := range out {
			if r.Lines <= 0 || r.End <= r.Start {
				t.Fatalf("record %+v covers nothing", r)
			}
			total += r.Lines
			if r.Body == nil && !bytes.HasSuffix(r.Text, []byte("\n")) {
				t.Fatalf("text record %q does not end with a newline", r.Text)
			}
			if r.Body == nil && r.Lines == 1 && !bytes.Equal(r.Text[:len(r.Text)-1], bytes.TrimSuffix(data[r.Start:r.End], []byte("\n"))) {
				t.Fatalf("one-line record %q differs from its line %q", r.Text, data[r.Start:r.End])
			}
		}
		if total != len(lines) {
			t.Fatalf("%d lines in, %d lines in records", len(lines), total)
		}
	})
}
