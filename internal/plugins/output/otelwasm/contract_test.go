package otelwasm

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/wasmhost"
)

// seqGuest records what it receives: one line per log record on its
// stdout, "<time_unix_nano> <body> seq=<seq>", and status 1 when that write
// fails (testdata/src/seqexp).
const seqGuest = "testdata/seqexp.wasm"

// guestSink is the backend of the seqexp exporter: the stdout the host
// gives the guest. Its transient fault is a refused write, which the guest
// answers with a non-zero status; the OTelWasm ABI has no permanent
// answer (every non-zero status is RETRY) and the exporter runs in process,
// with no connection to restart.
type guestSink struct {
	mu    sync.Mutex
	lines []byte
	fail  bool
}

func (s *guestSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		s.fail = false
		return 0, errors.New("backend unavailable")
	}
	s.lines = append(s.lines, p...)
	return len(p), nil
}

func (s *guestSink) Config() []string {
	// The body is the message and the other keys (seq) become attributes,
	// so the guest sees each record's identity.
	return []string{"path " + seqGuest, "logs_body_key message", "logs_body_key_attributes true"}
}

var guestLine = regexp.MustCompile(`^(\d+) record (\d+) seq=(\d+)$`)

func (s *guestSink) Seqs(t testing.TB) []int64 {
	s.mu.Lock()
	text := string(s.lines)
	s.mu.Unlock()
	var seqs []int64
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if l == "" {
			continue
		}
		m := guestLine.FindStringSubmatch(l)
		if m == nil || m[2] != m[3] {
			t.Fatalf("the exporter received %q, not a contract record", l)
		}
		seq, _ := strconv.ParseInt(m[3], 10, 64)
		if want := strconv.FormatInt((1700000000+seq)*1e9+123456789, 10); m[1] != want {
			t.Errorf("record %d exported with the time %s, want %s", seq, m[1], want)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func (s *guestSink) Inject(f outputtest.Fault) bool {
	if f == outputtest.Permanent {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = true
	return true
}

func (s *guestSink) Restart(t testing.TB) { t.Fatal("no connection to restart") }

func TestContract(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	// The spec's constructor logs the guest's stdout; this one hands it to
	// the sink of the case being run (cases run one at a time).
	var cur *guestSink
	spec := Spec()
	spec.NewOutput = func(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
		return NewWithOptions(ctx, set, p, Options{Runtime: rt, Stdout: cur})
	}
	outputtest.Run(t, spec, func(t *testing.T) outputtest.Sink {
		cur = &guestSink{}
		return cur
	}, outputtest.Options{Skip: map[string]string{
		"ReconnectAfterRestart": "the exporter runs in process: there is no connection between Floe and it to drop",
	}})
}
