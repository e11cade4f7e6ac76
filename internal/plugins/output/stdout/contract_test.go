package stdout

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// pipeSink is what reads a process's standard output in production: the
// read end of a pipe (a container runtime, a shell). The output writes to
// the pipe's write end; a goroutine reads what arrives. Its transient fault
// is the reader going away, so that writes fail with EPIPE, until Heal
// attaches a new reader; stdout has no permanent failure, and no
// connection to restart.
type pipeSink struct {
	format string

	mu   sync.Mutex
	w    *os.File // the output's stdout
	r    *os.File
	got  []byte
	done chan struct{}
}

func newPipeSink(t *testing.T, format string) *pipeSink {
	s := &pipeSink{format: format}
	s.attach(t)
	t.Cleanup(func() {
		s.mu.Lock()
		w, done := s.w, s.done
		s.mu.Unlock()
		_ = w.Close()
		<-done
	})
	return s
}

// attach opens a new pipe and starts reading it.
func (s *pipeSink) attach(t testing.TB) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.r, s.w, s.done = r, w, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			s.mu.Lock()
			s.got = append(s.got, buf[:n]...)
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
}

// Write is the output's stdout: the current pipe.
func (s *pipeSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(p)
}

func (s *pipeSink) Config() []string { return []string{"format " + s.format} }

var printLine = regexp.MustCompile(`^\[(\d+)\] ` + regexp.QuoteMeta(plugintest.Tag) +
	`: \[\[(\d+)\.123456789, \{\}\], \{"seq"=>(\d+), "message"=>"record (\d+)"\}\]$`)

// Seqs parses the lines read so far; a partial last line waits for more.
func (s *pipeSink) Seqs(t testing.TB) []int64 {
	s.mu.Lock()
	text := string(s.got)
	s.mu.Unlock()
	lines := strings.Split(text, "\n")
	lines = lines[:len(lines)-1] // after the last "\n": not a whole line yet
	var seqs []int64
	for _, l := range lines {
		var seq int64
		var sec string
		if s.format == "msgpack" {
			m := printLine.FindStringSubmatch(l)
			if m == nil || m[3] != m[4] {
				t.Fatalf("stdout line %q is not a printed contract record", l)
			}
			seq, _ = strconv.ParseInt(m[3], 10, 64)
			sec = m[2]
		} else {
			var r struct {
				Date    float64 `json:"date"`
				Seq     *int64  `json:"seq"`
				Message string  `json:"message"`
			}
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.Seq == nil || r.Message != "record "+strconv.FormatInt(*r.Seq, 10) {
				t.Fatalf("stdout line %q is not a contract record (%v)", l, err)
			}
			seq, sec = *r.Seq, strconv.FormatInt(int64(r.Date), 10)
		}
		if want := strconv.FormatInt(1700000000+seq, 10); sec != want {
			t.Errorf("record %d printed with the time %s, want %s", seq, sec, want)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// Inject hands the output a pipe whose reader is gone, so the next write
// fails with EPIPE; the old pipe is closed and read to its end first, so
// nothing already written is lost with it.
func (s *pipeSink) Inject(f outputtest.Fault) bool {
	if f == outputtest.Permanent {
		return false
	}
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	_ = r.Close()
	s.mu.Lock()
	old, done := s.w, s.done
	s.w = w
	s.mu.Unlock()
	_ = old.Close()
	<-done
	return true
}

// Heal attaches a new reader, as a supervisor restarting the log collector.
func (s *pipeSink) Heal(t testing.TB) {
	s.mu.Lock()
	broken := s.w
	s.mu.Unlock()
	s.attach(t)
	_ = broken.Close()
}

func (s *pipeSink) Restart(t testing.TB) { t.Fatal("stdout has no connection to restart") }

func TestContract(t *testing.T) {
	for _, format := range []string{"msgpack", "json_lines"} {
		t.Run(format, func(t *testing.T) {
			// The spec's own constructor writes to os.Stdout; this one writes
			// to the sink of the case being run (cases run one at a time).
			var cur *pipeSink
			spec := Spec()
			spec.NewOutput = func(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
				return newOutput(set, p, cur)
			}
			outputtest.Run(t, spec, func(t *testing.T) outputtest.Sink {
				cur = newPipeSink(t, format)
				return cur
			}, outputtest.Options{Skip: map[string]string{
				"ReconnectAfterRestart": "a process's standard output is one pipe for its whole life: there is no connection to drop and reopen",
			}})
		})
	}
}
