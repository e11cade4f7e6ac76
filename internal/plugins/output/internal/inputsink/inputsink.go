// Package inputsink runs one of Floe's own inputs (tcp, syslog) as the far
// side of an output under test: the output's bytes go through the input's
// real framing and parsing, and the sink reads what the input stored.
package inputsink

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

// addresser is what Floe's network inputs offer once they listen.
type addresser interface {
	Addr(ctx context.Context) (string, error)
}

// Sink is an input plugin run with a plugintest.Writer.
type Sink struct {
	t      testing.TB
	spec   *plugin.Spec
	lines  []string // input configuration, without listen/port
	config func(host, port string) []string
	seq    func(t testing.TB, ev event.Event) int64

	mu     sync.Mutex
	port   string
	cancel context.CancelFunc
	done   chan error
	w      *plugintest.Writer
	old    []event.Event // events stored before restarts
}

// New starts spec's input with lines on 127.0.0.1 and a free port. config
// gives the output's keys for the bound address; seq reads the record's seq.
func New(t testing.TB, spec *plugin.Spec, lines []string, config func(host, port string) []string,
	seq func(t testing.TB, ev event.Event) int64) *Sink {
	// A port below the ephemeral range, so that after Restart no client
	// socket of a concurrent test can hold it.
	s := &Sink{t: t, spec: spec, lines: lines, config: config, seq: seq, port: strconv.Itoa(freeport.Get(t))}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *Sink) start() {
	// A port given up by Restart can be taken meanwhile as the local port of
	// some client socket on the machine; it comes free when that connection
	// ends, so a taken port is retried for a while (freeport.Listen's rule).
	if err := freeport.WhileInUse(s.try); err != nil {
		s.t.Fatalf("%s input did not listen: %v", s.spec.Name, err)
	}
}

func (s *Sink) try() error {
	lines := append([]string{"listen 127.0.0.1", "port " + s.port}, s.lines...)
	// The stock parsers (syslog-rfc5424 ...), as a configuration without
	// [PARSER] sections gets them.
	parsers, err := parser.Load(nil, nil, nil)
	if err != nil {
		s.t.Fatalf("built-in parsers: %v", err)
	}
	set := plugin.Settings{Name: s.spec.Name + ".0", Parsers: parsers}
	in, err := s.spec.NewInput(context.Background(), set, plugintest.Props(s.spec, lines...))
	if err != nil {
		s.t.Fatalf("new %s input: %v", s.spec.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &plugintest.Writer{}
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	addr, err := in.(addresser).Addr(actx)
	if err != nil {
		cancel()
		<-done
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	s.mu.Lock()
	s.port, s.cancel, s.done, s.w = port, cancel, done, w
	s.mu.Unlock()
	return nil
}

func (s *Sink) stop() {
	s.mu.Lock()
	cancel, done, w := s.cancel, s.done, s.w
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		s.t.Errorf("%s input: %v", s.spec.Name, err)
	}
	evs, err := w.Events()
	if err != nil {
		s.t.Errorf("%s input stored undecodable events: %v", s.spec.Name, err)
	}
	s.mu.Lock()
	s.old = append(s.old, evs...)
	s.cancel = nil
	s.mu.Unlock()
}

// Config gives the output's keys pointing at the input.
func (s *Sink) Config() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.config("127.0.0.1", s.port)
}

// Events returns every event the input stored, across restarts.
func (s *Sink) Events(t testing.TB) []event.Event {
	s.mu.Lock()
	w, old := s.w, append([]event.Event(nil), s.old...)
	running := s.cancel != nil
	s.mu.Unlock()
	if !running {
		return old
	}
	evs, err := w.Events()
	if err != nil {
		t.Fatalf("%s input stored undecodable events: %v", s.spec.Name, err)
	}
	return append(old, evs...)
}

// Seqs implements outputtest.Sink.
func (s *Sink) Seqs(t testing.TB) []int64 {
	var out []int64
	for _, ev := range s.Events(t) {
		out = append(out, s.seq(t, ev))
	}
	return out
}

// Inject: a plain stream has no way to refuse, transiently or permanently.
func (s *Sink) Inject(outputtest.Fault) bool { return false }

// Restart stops the input (closing its connections) and starts it again on
// the same port.
func (s *Sink) Restart(testing.TB) {
	s.stop()
	s.start()
}
