// Package outputtest is the contract every Floe output passes, run against a
// real implementation of the output's protocol (a Sink). It holds an output
// to what the mesh relies on: Flush answers nil only once the sink holds the
// records, a transient failure is a retry and not a loss, a permanent one is
// marked plugin.Permanent so the chunk goes to the dead letters, and a sink
// that drops its connections is reached again without losing or doubling a
// record.
package outputtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// Fault is a failure a Sink arranges for the next request it receives.
type Fault int

const (
	// Transient is what the backend answers when it is briefly unable
	// (HTTP 503, a retryable gRPC code, a broker not ready): the output must
	// answer RETRY.
	Transient Fault = iota
	// Permanent is what the backend answers to a request it will never
	// accept (HTTP 400, a mapping error): the output must answer ERROR.
	Permanent
)

func (f Fault) String() string {
	if f == Permanent {
		return "permanent"
	}
	return "transient"
}

// Sink is the far side of an output in a test: a real implementation of the
// backend's protocol, in process.
type Sink interface {
	// Config gives the output's "key value" lines that point it at this sink.
	Config() []string
	// Seqs returns the "seq" field of every record the sink has accepted so
	// far, in arrival order, duplicates included.
	Seqs(t testing.TB) []int64
	// Inject makes the sink fail the next request with f; it reports false
	// when the protocol has no such answer (a plain TCP sink cannot refuse
	// permanently), and the contract skips that case.
	Inject(f Fault) bool
	// Restart drops every connection and listens again on the same address,
	// as a backend restart does.
	Restart(t testing.TB)
}

// Options tune the contract for one output.
type Options struct {
	// Settle is how long Seqs may take to show records after Flush answered
	// nil (sinks that index asynchronously); 0 means 10 s.
	Settle time.Duration
	// Attempts bounds the flushes of one chunk after a transient fault or a
	// restart, as the mesh's retries would; 0 means 10.
	Attempts int
	// Skip names cases that cannot apply to this output's sink, each with
	// the reason (a file has no connection to restart): "OpenClose",
	// "DeliverEveryRecordOnce" (or "DeliverEveryPointOnce"),
	// "Fault_transient", "Fault_permanent", "ReconnectAfterRestart".
	Skip map[string]string
}

// Healer is implemented by sinks whose transient fault lasts until it is
// lifted rather than for one request (a full disk): the contract heals
// the sink after the output answered the fault and before it retries.
type Healer interface {
	Heal(t testing.TB)
}

// run runs case name unless o.Skip names it.
func (o Options) run(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		if why, ok := o.Skip[name]; ok {
			t.Skip(why)
		}
		f(t)
	})
}

// Run runs the contract on spec's output against sinks made by newSink,
// one fresh sink per case.
func Run(t *testing.T, spec *plugin.Spec, newSink func(t *testing.T) Sink, o Options) {
	if o.Settle == 0 {
		o.Settle = 10 * time.Second
	}
	if o.Attempts == 0 {
		o.Attempts = 10
	}
	o.run(t, "OpenClose", func(t *testing.T) {
		s := newSink(t)
		out := open(t, spec, s)
		if err := plugin.Close(context.Background(), out); err != nil {
			t.Fatalf("close without a flush: %v", err)
		}
	})
	o.run(t, "DeliverEveryRecordOnce", func(t *testing.T) {
		s := newSink(t)
		out := open(t, spec, s)
		defer closeOut(t, out)
		var want []int64
		for i := range 20 {
			c := Chunk(int64(i*50), 50)
			if err := out.Flush(context.Background(), c); err != nil {
				t.Fatalf("flush chunk %d: %v", i, err)
			}
			want = append(want, seqRange(int64(i*50), 50)...)
		}
		expectOnce(t, s, want, o.Settle)
	})
	for _, f := range []Fault{Transient, Permanent} {
		o.run(t, "Fault_"+f.String(), func(t *testing.T) {
			s := newSink(t)
			out := open(t, spec, s)
			defer closeOut(t, out)
			if err := out.Flush(context.Background(), Chunk(0, 10)); err != nil {
				t.Fatalf("flush before the fault: %v", err)
			}
			if !s.Inject(f) {
				t.Skipf("the sink has no %s failure", f)
			}
			c := Chunk(10, 10)
			err := out.Flush(context.Background(), c)
			if err == nil {
				t.Fatalf("flush answered OK although the sink failed it (%s)", f)
			}
			if got := plugin.IsPermanent(err); got != (f == Permanent) {
				t.Fatalf("%s failure answered with permanent=%v: %v", f, got, err)
			}
			want := seqRange(0, 10)
			if f == Transient {
				if h, ok := s.(Healer); ok {
					h.Heal(t)
				}
				flushUntilOK(t, out, c, o.Attempts)
				want = append(want, seqRange(10, 10)...)
			}
			expectOnce(t, s, want, o.Settle)
		})
	}
	o.run(t, "ReconnectAfterRestart", func(t *testing.T) {
		s := newSink(t)
		out := open(t, spec, s)
		defer closeOut(t, out)
		if err := out.Flush(context.Background(), Chunk(0, 25)); err != nil {
			t.Fatalf("flush before the restart: %v", err)
		}
		expectOnce(t, s, seqRange(0, 25), o.Settle)
		s.Restart(t)
		for i := 1; i < 4; i++ {
			flushUntilOK(t, out, Chunk(int64(i*25), 25), o.Attempts)
		}
		expectOnce(t, s, seqRange(0, 100), o.Settle)
	})
}

// Chunk builds a logs chunk of n records with seq first..first+n-1, each
// {"seq": N, "message": "record N"} at time 1700000000+N.123456789, with an id
// derived from first so a re-flush carries the same id.
func Chunk(first int64, n int) *chunk.Chunk {
	var data []byte
	for i := range int64(n) {
		seq := first + i
		ev := event.Event{
			Time: event.Time{Sec: 1700000000 + seq, Nsec: 123456789},
			Body: plugintest.KV("seq", seq, "message", fmt.Sprintf("record %d", seq)),
		}
		data = ev.AppendMsgpack(data)
	}
	return &chunk.Chunk{
		ID:      fmt.Sprintf("contract-%d-%d", first, n),
		Tag:     plugintest.Tag,
		Type:    chunk.Logs,
		Records: n,
		Data:    data,
		Source:  "contract.0",
	}
}

func open(t *testing.T, spec *plugin.Spec, s interface{ Config() []string }) plugin.Output {
	t.Helper()
	out, err := spec.NewOutput(context.Background(), plugin.Settings{Name: spec.Name + ".0"}, plugintest.Props(spec, s.Config()...))
	if err != nil {
		t.Fatalf("new %s output: %v", spec.Name, err)
	}
	return out
}

func closeOut(t *testing.T, out plugin.Output) {
	if err := plugin.Close(context.Background(), out); err != nil {
		t.Errorf("close: %v", err)
	}
}

// flushUntilOK retries c as the mesh does after RETRY; a permanent answer
// fails the test since nothing here is permanently wrong.
func flushUntilOK(t *testing.T, out plugin.Output, c *chunk.Chunk, attempts int) {
	t.Helper()
	var err error
	for range attempts {
		if err = out.Flush(context.Background(), c); err == nil {
			return
		}
		if plugin.IsPermanent(err) {
			t.Fatalf("chunk %s answered permanently where a retry was due: %v", c.ID, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("chunk %s not delivered after %d attempts: %v", c.ID, attempts, err)
}

func seqRange(first int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = first + int64(i)
	}
	return s
}

// expectOnce waits until the sink holds exactly want (in any order) and
// fails naming what is missing, doubled or unexpected.
func expectOnce(t *testing.T, s interface{ Seqs(testing.TB) []int64 }, want []int64, settle time.Duration) {
	t.Helper()
	deadline := time.Now().Add(settle)
	var problem error
	for {
		problem = Diff(want, s.Seqs(t))
		if problem == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if problem != nil {
		t.Fatal(problem)
	}
}

// Diff reports how got differs from want as a set where each element must
// appear once: missing, duplicated and unexpected seqs; nil when equal.
func Diff(want, got []int64) error {
	count := map[int64]int{}
	for _, g := range got {
		count[g]++
	}
	var missing, dup, extra []int64
	wanted := map[int64]bool{}
	for _, w := range want {
		wanted[w] = true
		switch n := count[w]; {
		case n == 0:
			missing = append(missing, w)
		case n > 1:
			dup = append(dup, w)
		}
	}
	for g := range count {
		if !wanted[g] {
			extra = append(extra, g)
		}
	}
	if len(missing)+len(dup)+len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	var b strings.Builder
	fmt.Fprintf(&b, "sink holds %d records, want %d each once:", len(got), len(want))
	for _, p := range []struct {
		name string
		s    []int64
	}{{"missing", missing}, {"duplicated", dup}, {"unexpected", extra}} {
		if len(p.s) > 0 {
			fmt.Fprintf(&b, " %s %d %v;", p.name, len(p.s), head(p.s))
		}
	}
	return errors.New(b.String())
}

func head(s []int64) []int64 {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
