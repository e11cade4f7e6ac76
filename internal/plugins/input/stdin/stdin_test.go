package stdin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

func props(t *testing.T, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeInput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "stdin"})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i})
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindInput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTest(t *testing.T, in io.Reader, kv ...string) (*Stdin, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	set := plugin.Settings{Name: "stdin.0", Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	s, err := newStdin(set, props(t, kv...), in)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() event.Time { return event.Time{Sec: 1700000000, Nsec: 1} }
	return s, logs
}

func runAll(t *testing.T, s *Stdin, w *plugintest.Writer) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Run(ctx, w); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run did not return at end of input")
	}
	evs, err := w.Events()
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func mp(kv ...any) event.Map {
	m := event.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, event.KV{Key: kv[i].(string), Value: kv[i+1]})
	}
	return m
}

var now = event.Time{Sec: 1700000000, Nsec: 1}

func TestJSONAndNonJSON(t *testing.T) {
	in := `{"key": "some value"}
not json at all
{"a": 1, "b": [1.5, null]}   {"c": true}{"d":"no separator"}
{
  "multi": "line",
  "x": {"y": "z"}
}
123
"a string"
[1700000000.5, {"v1": "event"}]
[[1700000001, {"meta": "data"}], {"v2": "event"}]
[1, 2, 3]
{"broken": "value
{"after": "broken"}
{"tail": "no newline"}`
	s, logs := newTest(t, strings.NewReader(in))
	w := &plugintest.Writer{}
	evs := runAll(t, s, w)
	want := []event.Event{
		{Time: now, Meta: mp(), Body: mp("key", "some value")},
		{Time: now, Meta: mp(), Body: mp("a", int64(1), "b", []any{1.5, nil})},
		{Time: now, Meta: mp(), Body: mp("c", true)},
		{Time: now, Meta: mp(), Body: mp("d", "no separator")},
		{Time: now, Meta: mp(), Body: mp("multi", "line", "x", mp("y", "z"))},
		{Time: event.Time{Sec: 1700000000, Nsec: 500000000}, Meta: mp(), Body: mp("v1", "event")},
		{Time: event.Time{Sec: 1700000001}, Meta: mp("meta", "data"), Body: mp("v2", "event")},
		{Time: now, Meta: mp(), Body: mp("after", "broken")},
		{Time: now, Meta: mp(), Body: mp("tail", "no newline")},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events:\n%+v\nwant\n%+v", evs, want)
	}
	l := logs.String()
	for _, s := range []string{"invalid JSON message, skipping", "invalid record found, it's not a JSON map or array",
		"invalid event array", "end of file"} {
		if !strings.Contains(l, s) {
			t.Errorf("log lacks %q:\n%s", s, l)
		}
	}
	for _, wr := range w.Writes {
		if wr.Tag != "stdin.0" {
			t.Errorf("tag %q", wr.Tag)
		}
	}
}

// chunkReader returns its input n bytes at a time.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(r.n, len(p), len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

func TestLongValues(t *testing.T) {
	long := strings.Repeat("x", 200_000)
	in := fmt.Sprintf("{\"a\":1}\n{\"long\":%q}\n{\"b\":2}\n", long)
	for _, n := range []int{1, 7, 16000, 1 << 20} {
		if n == 1 && testing.Short() {
			continue
		}
		s, _ := newTest(t, &chunkReader{b: []byte(in), n: n})
		evs := runAll(t, s, &plugintest.Writer{})
		if len(evs) != 3 || !reflect.DeepEqual(evs[1].Body, mp("long", long)) {
			t.Fatalf("chunks of %d: %d events", n, len(evs))
		}
	}
}

func TestTooLongValueSkipped(t *testing.T) {
	s, logs := newTest(t, &chunkReader{b: []byte("{\"a\":\"" + strings.Repeat("x", 100_000) + "\"}\n{\"b\":1}\n"), n: 16000})
	s.maxValue = 50_000
	evs := runAll(t, s, &plugintest.Writer{})
	if len(evs) != 1 || !reflect.DeepEqual(evs[0].Body, mp("b", int64(1))) {
		t.Fatalf("events %+v", evs)
	}
	if !strings.Contains(logs.String(), "too long") {
		t.Error("no log for the long value")
	}
}

func TestIncompleteAtEOF(t *testing.T) {
	s, logs := newTest(t, strings.NewReader("{\"a\":1}\n{\"b\": [1, 2"))
	evs := runAll(t, s, &plugintest.Writer{})
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	if !strings.Contains(logs.String(), "incomplete JSON at end of input") {
		t.Error("incomplete value not logged")
	}
}

func TestBatching(t *testing.T) {
	var in bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&in, "{\"i\":%d,\"msg\":\"some text to make the line longer\"}\n", i)
	}
	s, _ := newTest(t, &in)
	w := &plugintest.Writer{}
	evs := runAll(t, s, w)
	if len(evs) != 20000 {
		t.Fatalf("%d events", len(evs))
	}
	for i, ev := range evs {
		if v, _ := ev.Body.Get("i"); v != int64(i) {
			t.Fatalf("event %d is %v", i, v)
		}
	}
	if len(w.Writes) > 200 {
		t.Errorf("%d writes for 20000 lines", len(w.Writes))
	}
	for _, wr := range w.Writes {
		if len(wr.Data) > maxBatch+64<<10 {
			t.Errorf("write of %d bytes", len(wr.Data))
		}
	}
}

// TestFlushWhenIdle: a line is written without waiting for more input.
func TestFlushWhenIdle(t *testing.T) {
	pr, pw := io.Pipe()
	s, _ := newTest(t, pr)
	w := &plugintest.Writer{}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), w) }()
	for i := range 3 {
		if _, err := fmt.Fprintf(pw, "{\"n\":%d}\n", i); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			evs, _ := w.Events()
			if len(evs) == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("line %d not written while the input is idle", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWaitsForReceipts(t *testing.T) {
	w := &plugintest.Writer{Delay: 300 * time.Millisecond}
	s, _ := newTest(t, strings.NewReader("{\"a\":1}\n{\"b\":2}\n"))
	if err := s.Run(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	if w.Stored != 2 {
		t.Errorf("Run returned with %d of 2 records stored", w.Stored)
	}
}

type errReader struct{ r io.Reader }

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, errors.New("boom")
	}
	return n, err
}

func TestReadError(t *testing.T) {
	s, _ := newTest(t, errReader{strings.NewReader("{\"a\":1}\n")})
	w := &plugintest.Writer{}
	err := s.Run(context.Background(), w)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	if evs, _ := w.Events(); len(evs) != 1 {
		t.Errorf("%d events before the error", len(evs))
	}
}

func TestCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	s, _ := newTest(t, pr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, &plugintest.Writer{}) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return on cancel")
	}
}

func TestConfig(t *testing.T) {
	if _, err := newStdin(plugin.Settings{}, props(t, "buffer_size", "8k"), nil); err == nil || !strings.Contains(err.Error(), "buffer_size") {
		t.Errorf("8k accepted: %v", err)
	}
	s, logs := newTest(t, strings.NewReader(`{"a":1}`), "buffer_size", "64k", "parser", "apache", "tag", "in.x")
	if s.readSize != 64000 || s.tag != "in.x" {
		t.Errorf("readSize %d tag %q", s.readSize, s.tag)
	}
	if !strings.Contains(logs.String(), "parser not found") {
		t.Errorf("parser not logged: %s", logs.String())
	}
	if k, ok := Spec().Key("buffer_size"); !ok || k.Default != "16k" || k.Type != plugin.Size {
		t.Errorf("buffer_size key %+v", k)
	}
	if _, ok := Spec().Key("parser"); !ok {
		t.Error("parser key missing")
	}
}

// A stopped instance (shutdown or hot reload) hands what it read but did not
// decode to the next instance on the same reader: nothing read is lost.
func TestNextInstanceContinuesWhereStoppedOneLeftOff(t *testing.T) {
	pr, pw := io.Pipe()
	first, _ := newTest(t, pr)
	w1 := &plugintest.Writer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx, w1) }()
	// One complete value and half of the next.
	if _, err := io.WriteString(pw, `{"n":1}`+"\n"+`{"n":`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second, _ := newTest(t, pr)
	w2 := &plugintest.Writer{}
	done2 := make(chan []event.Event, 1)
	go func() { done2 <- runAll(t, second, w2) }()
	if _, err := io.WriteString(pw, "2}\n"+`{"n":3}`+"\n"); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	got2 := <-done2
	got1, err := w1.Events()
	if err != nil {
		t.Fatal(err)
	}
	var ns []any
	for _, ev := range append(got1, got2...) {
		v, _ := ev.Body.Get("n")
		ns = append(ns, v)
	}
	if len(ns) != 3 || ns[0] != int64(1) || ns[1] != int64(2) || ns[2] != int64(3) {
		t.Fatalf("records across the two instances: %v, want [1 2 3]", ns)
	}
}
