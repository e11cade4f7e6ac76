package tail

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/positions"
)

// ---- fakes ----

type memStore struct {
	mu sync.Mutex
	m  map[string]positions.Position
}

func newStore() *memStore { return &memStore{m: map[string]positions.Position{}} }

func (s *memStore) Get(_ context.Context, key string) (positions.Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[key]
	return p, ok, nil
}

func (s *memStore) Commit(_ context.Context, key string, p positions.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = p
	return nil
}

func (s *memStore) Forget(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *memStore) get(key string) (positions.Position, bool) {
	p, ok, _ := s.Get(context.Background(), key)
	return p, ok
}

type receipt struct {
	done chan struct{}
	once sync.Once
}

func (r *receipt) Done() <-chan struct{} { return r.done }
func (r *receipt) Err() error            { return nil }
func (r *receipt) resolve()              { r.once.Do(func() { close(r.done) }) }

type written struct {
	id, tag string
	events  []event.Event
	r       *receipt
}

// chunkWriter is a ChunkWriter that resolves receipts at once unless hold is set.
type chunkWriter struct {
	mu     sync.Mutex
	hold   bool
	block  chan struct{} // when set, WriteChunk waits for it to close (or ctx)
	chunks []written
}

func (w *chunkWriter) Write(ctx context.Context, tag string, data []byte, records int) (plugin.Receipt, error) {
	return w.WriteChunk(ctx, "", tag, data, records)
}

// ChunkBuffer lends fresh buffers: WriteChunk decodes what it is given.
func (w *chunkWriter) ChunkBuffer(n int) []byte { return make([]byte, 0, n) }

var _ plugin.ChunkWriter = (*chunkWriter)(nil)

func (w *chunkWriter) WriteChunk(ctx context.Context, id, tag string, data []byte, records int) (plugin.Receipt, error) {
	w.mu.Lock()
	block := w.block
	w.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var evs []event.Event
	it := event.NewIter(data)
	for it.Next() {
		raw := it.Event()
		ev, err := raw.Decode()
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	if it.Err() != nil {
		return nil, it.Err()
	}
	if len(evs) != records {
		return nil, fmt.Errorf("records = %d, events = %d", records, len(evs))
	}
	r := &receipt{done: make(chan struct{})}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.hold {
		r.resolve()
	}
	w.chunks = append(w.chunks, written{id: id, tag: tag, events: evs, r: r})
	return r, nil
}

func (w *chunkWriter) snapshot() []written {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]written(nil), w.chunks...)
}

func (w *chunkWriter) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hold = false
	for _, c := range w.chunks {
		c.r.resolve()
	}
}

func (w *chunkWriter) logs() []string {
	var out []string
	for _, c := range w.snapshot() {
		for _, ev := range c.events {
			v, _ := ev.Body.Get("log")
			s, _ := v.(string)
			out = append(out, s)
		}
	}
	return out
}

// ---- helpers ----

func newTestTail(t *testing.T, store plugin.PositionStore, lines ...string) *Tail {
	t.Helper()
	p := plugintest.Props(Spec(), lines...)
	in, err := newTail(plugin.Settings{Name: "tail.0", Positions: store}, p)
	if err != nil {
		t.Fatal(err)
	}
	in.poll = 20 * time.Millisecond
	return in
}

type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(in *Tail, w plugin.Writer) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx, w) }()
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
}

// seqCount counts each "line-N" once and reports missing and duplicated numbers.
func seqCount(logs []string, total int) (missing, dups []int) {
	seen := make([]int, total)
	for _, l := range logs {
		n, err := strconv.Atoi(strings.TrimPrefix(l, "line-"))
		if err != nil || n < 0 || n >= total {
			continue
		}
		seen[n]++
	}
	for i, c := range seen {
		if c == 0 {
			missing = append(missing, i)
		}
		if c > 1 {
			dups = append(dups, i)
		}
	}
	return
}

// ---- tests ----

// A writer appends lines while the file is rotated by rename, then by
// copytruncate: every line arrives, once.
func TestRotationBothWaysWhileAppending(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, "line-0")
	in := newTestTail(t, newStore(), "path "+path, "read_from_head on", "rotate_wait 1", "refresh_interval 1")
	w := &chunkWriter{}
	r := start(in, w)
	defer r.stop(t)

	const total = 6000
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	for i := 1; i < total; i++ {
		fmt.Fprintf(bw, "line-%d\n", i)
		if i%100 == 0 {
			bw.Flush()
			time.Sleep(2 * time.Millisecond)
		}
		switch i {
		case 2000: // logrotate's default: rename, then the writer reopens
			bw.Flush()
			f.Close()
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
				t.Fatal(err)
			}
			bw.Reset(f)
		case 4000: // copytruncate: the writer keeps its O_APPEND descriptor
			bw.Flush()
			waitFor(t, "lines before the copy", func() bool { return len(w.logs()) >= 4000 })
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".2", data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			// Fluent Bit and Floe notice a truncation by the size falling
			// under the read offset: let the poll see the short file.
			time.Sleep(100 * time.Millisecond)
		}
	}
	bw.Flush()
	f.Close()
	waitFor(t, "every line", func() bool {
		missing, _ := seqCount(w.logs(), total)
		return len(missing) == 0
	})
	time.Sleep(200 * time.Millisecond)
	missing, dups := seqCount(w.logs(), total)
	if len(missing) > 0 || len(dups) > 0 {
		t.Fatalf("missing %v, duplicated %v", missing, dups)
	}
}

// The position moves only when the receipt of the batch holding the lines resolves.
func TestPositionCommittedOnlyAfterReceipt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendLines(t, path, "line-0", "line-1", "line-2")
	store := newStore()
	in := newTestTail(t, store, "path "+path, "read_from_head on")
	w := &chunkWriter{hold: true}
	r := start(in, w)
	defer r.stop(t)
	key := positions.Key("tail.0", path)
	waitFor(t, "the batch", func() bool { return len(w.snapshot()) == 1 })
	time.Sleep(100 * time.Millisecond) // several polls
	p, ok := store.get(key)
	if !ok {
		t.Fatal("no position stored at start")
	}
	if p.Offset != 0 {
		t.Fatalf("offset %d committed before the receipt", p.Offset)
	}
	if p.Extra["cuts"] != "0,21" {
		t.Fatalf("cuts = %q, want the batch's end recorded before it was written", p.Extra["cuts"])
	}
	w.release()
	waitFor(t, "the commit", func() bool { p, _ := store.get(key); return p.Offset == 21 })
	if p, _ := store.get(key); p.Extra["cuts"] != "21" {
		t.Fatalf("cuts after the commit = %q", p.Extra["cuts"])
	}
}

// Batches written but not acknowledged before a stop are read again after
// a restart, cut at the same places, under the same ids.
func TestRestartRepublishesUnderTheSameIDs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	store := newStore()
	in := newTestTail(t, store, "path "+path, "read_from_head on")
	appendLines(t, path, "line-0", "line-1")
	w1 := &chunkWriter{}
	r := start(in, w1)
	waitFor(t, "first batch", func() bool { return len(w1.snapshot()) == 1 })
	waitFor(t, "its commit", func() bool { p, _ := store.get(positions.Key("tail.0", path)); return p.Offset == 14 })
	w1.mu.Lock()
	w1.hold = true
	w1.mu.Unlock()
	// Two more batches that are never acknowledged (the process dies).
	appendLines(t, path, "line-2", "line-3")
	waitFor(t, "second batch", func() bool { return len(w1.snapshot()) == 2 })
	appendLines(t, path, "line-4")
	waitFor(t, "third batch", func() bool { return len(w1.snapshot()) == 3 })
	r.cancel()
	<-r.done
	appendLines(t, path, "line-5") // written while stopped

	w2 := &chunkWriter{}
	in2 := newTestTail(t, store, "path "+path, "read_from_head on")
	r2 := start(in2, w2)
	defer r2.stop(t)
	waitFor(t, "replay", func() bool { return len(w2.logs()) == 4 })
	first, again := w1.snapshot(), w2.snapshot()
	if len(again) != 3 {
		t.Fatalf("replay wrote %d batches, want 3 (two re-read, one new)", len(again))
	}
	if again[0].id != first[1].id || again[1].id != first[2].id {
		t.Fatalf("re-read ids %s %s differ from %s %s", again[0].id, again[1].id, first[1].id, first[2].id)
	}
	if again[2].id == first[2].id || fmt.Sprint(w2.logs()) != "[line-2 line-3 line-4 line-5]" {
		t.Fatalf("after replay: %v", w2.logs())
	}
}

// A restart that stops again before its replay is over keeps the cuts it
// had not reached yet: the next one still re-reads every batch the first
// run wrote under that batch's id. (The saved position used to list only
// the batches written by the current run, so the second restart cut the
// rest of the file afresh and stored its events again under new ids.)
func TestReplayCutsSurviveAnotherRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	key := positions.Key("tail.0", path)
	store := newStore()
	in := newTestTail(t, store, "path "+path, "read_from_head on")
	appendLines(t, path, "line-0")
	w1 := &chunkWriter{}
	r := start(in, w1)
	waitFor(t, "first batch", func() bool { return len(w1.snapshot()) == 1 })
	waitFor(t, "its commit", func() bool { p, _ := store.get(key); return p.Offset == 7 })
	w1.mu.Lock()
	w1.hold = true
	w1.mu.Unlock()
	// Two batches written and never acknowledged.
	appendLines(t, path, "line-1")
	waitFor(t, "second batch", func() bool { return len(w1.snapshot()) == 2 })
	appendLines(t, path, "line-2")
	waitFor(t, "third batch", func() bool { return len(w1.snapshot()) == 3 })
	r.cancel()
	<-r.done
	if p, _ := store.get(key); p.Extra["cuts"] != "7,14,21" {
		t.Fatalf("cuts after the first run = %q, want 7,14,21", p.Extra["cuts"])
	}

	// The second run replays the first of them and stops while writing it.
	w2 := &chunkWriter{block: make(chan struct{})}
	r2 := start(newTestTail(t, store, "path "+path, "read_from_head on"), w2)
	waitFor(t, "the replayed batch's cut saved", func() bool {
		p, _ := store.get(key)
		return strings.HasPrefix(p.Extra["cuts"], "7,14")
	})
	time.Sleep(50 * time.Millisecond)
	if p, _ := store.get(key); p.Extra["cuts"] != "7,14,21" {
		t.Fatalf("cuts while replaying = %q, want 7,14,21 (the cut not reached yet kept)", p.Extra["cuts"])
	}
	r2.cancel()
	<-r2.done

	w3 := &chunkWriter{}
	r3 := start(newTestTail(t, store, "path "+path, "read_from_head on"), w3)
	defer r3.stop(t)
	waitFor(t, "the replay", func() bool { return len(w3.snapshot()) == 2 })
	first, again := w1.snapshot(), w3.snapshot()
	if again[0].id != first[1].id || again[1].id != first[2].id {
		t.Fatalf("re-read ids %s %s differ from the first run's %s %s", again[0].id, again[1].id, first[1].id, first[2].id)
	}
}

// A file rotated by rename while the input was stopped is found by its
// inode and read to its end; the new file is read whole.
func TestRotatedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	store := newStore()
	appendLines(t, path, "line-0")
	in := newTestTail(t, store, "path "+path, "read_from_head on")
	w := &chunkWriter{}
	r := start(in, w)
	waitFor(t, "first line", func() bool { return len(w.logs()) == 1 })
	waitFor(t, "its commit", func() bool { p, _ := store.get(positions.Key("tail.0", path)); return p.Offset == 7 })
	r.stop(t)
	appendLines(t, path, "line-1")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, "line-2")
	in2 := newTestTail(t, store, "path "+path, "read_from_head on", "rotate_wait 0")
	r2 := start(in2, w)
	defer r2.stop(t)
	waitFor(t, "all lines", func() bool { return len(w.logs()) >= 3 })
	time.Sleep(100 * time.Millisecond)
	if got := fmt.Sprint(w.logs()); got != "[line-0 line-1 line-2]" {
		t.Fatalf("logs = %s", got)
	}
	waitFor(t, "the rotated position to be forgotten", func() bool {
		_, ok := store.get(positions.Key("tail.0", path) + rotatedKey)
		return !ok
	})
}

func TestGlobsExcludeAndTagExpansion(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.log", "b.log", "skip.log", "c.txt"} {
		appendLines(t, filepath.Join(dir, n), "from-"+n)
	}
	in := newTestTail(t, nil, "path "+filepath.Join(dir, "a*.log")+", "+filepath.Join(dir, "b.log"), "path "+filepath.Join(dir, "*.txt"),
		"exclude_path *.txt,"+filepath.Join(dir, "skip*"), "read_from_head on", "tag app.*", "path_key file", "offset_key off")
	w := &chunkWriter{}
	r := start(in, w)
	defer r.stop(t)
	waitFor(t, "two files", func() bool { return len(w.logs()) == 2 })
	time.Sleep(100 * time.Millisecond)
	got := map[string]string{}
	for _, c := range w.snapshot() {
		for _, ev := range c.events {
			l, _ := ev.Body.Get("log")
			f, _ := ev.Body.Get("file")
			off, _ := ev.Body.Get("off")
			if fmt.Sprint(off) != "0" {
				t.Errorf("offset_key = %v", off)
			}
			got[l.(string)] = c.tag + " " + f.(string)
		}
	}
	want := map[string]string{
		"from-a.log": "app." + strings.TrimLeft(strings.ReplaceAll(filepath.Join(dir, "a.log"), "/", "."), ".") + " " + filepath.Join(dir, "a.log"),
		"from-b.log": "app." + strings.TrimLeft(strings.ReplaceAll(filepath.Join(dir, "b.log"), "/", "."), ".") + " " + filepath.Join(dir, "b.log"),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestReadFromHeadOffStartsAtTheEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendLines(t, path, "old")
	in := newTestTail(t, nil, "path "+path)
	w := &chunkWriter{}
	r := start(in, w)
	defer r.stop(t)
	time.Sleep(100 * time.Millisecond)
	appendLines(t, path, "new")
	waitFor(t, "the new line", func() bool { return len(w.logs()) == 1 })
	if w.logs()[0] != "new" {
		t.Fatalf("logs = %v", w.logs())
	}
}

func TestSkipLongLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	long := strings.Repeat("x", 5000)
	appendLines(t, path, "before", long, "after")
	in := newTestTail(t, nil, "path "+path, "read_from_head on", "skip_long_lines on", "buffer_chunk_size 1k", "buffer_max_size 2k")
	w := &chunkWriter{}
	r := start(in, w)
	waitFor(t, "two lines", func() bool { return len(w.logs()) == 2 })
	time.Sleep(100 * time.Millisecond)
	r.stop(t)
	if got := fmt.Sprint(w.logs()); got != "[before after]" {
		t.Fatalf("logs = %s", got)
	}

	// Without skip_long_lines the file is given up at the long line (Fluent Bit's behaviour).
	in = newTestTail(t, nil, "path "+path, "read_from_head on", "buffer_chunk_size 1k", "buffer_max_size 2k")
	w = &chunkWriter{}
	r = start(in, w)
	waitFor(t, "one line", func() bool { return len(w.logs()) == 1 })
	time.Sleep(200 * time.Millisecond)
	r.stop(t)
	if got := fmt.Sprint(w.logs()); got != "[before]" {
		t.Fatalf("logs = %s", got)
	}
}

// The read buffer is reused and grows for long lines: lines shorter and
// longer than one read, split at every place, come out whole and in order.
func TestLinesAcrossReadBoundaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	var want []string
	for i := range 300 {
		n := (i * 997) % 7000 // 0 to 7 KiB, against reads of 1 KiB
		want = append(want, fmt.Sprintf("%04d-%s", i, strings.Repeat(string(rune('a'+i%26)), n)))
	}
	appendLines(t, path, want...)
	in := newTestTail(t, nil, "path "+path, "read_from_head on", "buffer_chunk_size 1k", "buffer_max_size 8k")
	w := &chunkWriter{}
	r := start(in, w)
	waitFor(t, "every line", func() bool { return len(w.logs()) >= len(want) })
	time.Sleep(100 * time.Millisecond)
	r.stop(t)
	got := w.logs()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: got %.20q... (%d bytes), want %.20q... (%d bytes)", i, got[i], len(got[i]), want[i], len(want[i]))
		}
	}
}

func TestParserAndUnparsedLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendLines(t, path, `{"msg":"hi","time":"2024-03-01T10:00:00Z"}`, "not json")
	var bodies []string
	for _, ev := range tailWithParsers(t, 2, "path "+path, "read_from_head on", "parser json", "key message") {
		bodies = append(bodies, plugintest.Render(ev.Body))
	}
	if len(bodies) != 2 || !strings.Contains(bodies[0], `"msg":"hi"`) || bodies[1] != `{"message":"not json"}` {
		t.Fatalf("bodies = %v", bodies)
	}
}

func TestMultilineJavaThroughTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendLines(t, path, "start",
		`Exception in thread "main" java.lang.IllegalStateException: boom`,
		"\tat com.example.App.run(App.java:42)",
		"\tat com.example.App.main(App.java:10)",
		"end")
	in := newTestTail(t, nil, "path "+path, "read_from_head on", "multiline.parser java")
	w := &chunkWriter{}
	r := start(in, w)
	defer r.stop(t)
	waitFor(t, "three records", func() bool { return len(w.logs()) == 3 })
	want := "[start\n Exception in thread \"main\" java.lang.IllegalStateException: boom\n\tat com.example.App.run(App.java:42)\n\tat com.example.App.main(App.java:10)\n end\n]"
	if got := fmt.Sprint(w.logs()); got != want {
		t.Fatalf("logs = %q", got)
	}
}

func TestExitOnEOF(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendLines(t, path, "a", "b")
	store := newStore()
	in := newTestTail(t, store, "path "+path, "read_from_head on", "exit_on_eof on")
	w := &chunkWriter{}
	done := make(chan error, 1)
	go func() { done <- in.Run(context.Background(), w) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not exit at end of file")
	}
	if got := fmt.Sprint(w.logs()); got != "[a b]" {
		t.Fatalf("logs = %s", got)
	}
	if p, _ := store.get(positions.Key("tail.0", path)); p.Offset != 4 {
		t.Fatalf("offset committed at exit = %d", p.Offset)
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		lines []string
		key   string
	}{
		{nil, "path"},
		{[]string{"path [", "read_from_head on"}, "path"},
		{[]string{"path /x", "parser nope"}, "parser"},
		{[]string{"path /x", "multiline.parser java,nope"}, "multiline.parser"},
	}
	for _, c := range cases {
		_, err := newTail(plugin.Settings{Name: "tail.0"}, plugintest.Props(Spec(), c.lines...))
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%v: err = %v, want one naming %s", c.lines, err, c.key)
		}
	}
}

// A parsed record gets path_key and offset_key as a Map.Set would: a field
// of the same name is replaced where it stands, otherwise the key is added
// at the end.
func TestParsedRecordsGetPathAndOffsetKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	first := `{"file":"mine","msg":"a"}`
	appendLines(t, path, first, `{"msg":"b","off":"x","time":"01/Mar/2024:10:00:00 +0000"}`)
	var bodies []string
	var secs []int64
	for _, ev := range tailWithParsers(t, 2, "path "+path, "read_from_head on", "parser json", "path_key file", "offset_key off") {
		bodies = append(bodies, plugintest.Render(ev.Body))
		secs = append(secs, ev.Time.Sec)
	}
	want := []string{
		fmt.Sprintf(`{"file":%q,"msg":"a","off":0}`, path),
		fmt.Sprintf(`{"msg":"b","off":%d,"file":%q}`, len(first)+1, path),
	}
	if fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Fatalf("bodies\n got %v\nwant %v", bodies, want)
	}
	// The stock json parser's time (Time_Key time) became the event time.
	if secs[1] != time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC).Unix() {
		t.Fatalf("second record's time = %d", secs[1])
	}
}

// tailWithParsers runs a tail input configured by lines, with the stock
// parsers, until it has written n events, and returns them.
func tailWithParsers(t *testing.T, n int, lines ...string) []event.Event {
	t.Helper()
	reg, err := parser.Load(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := newTail(plugin.Settings{Name: "tail.0", Parsers: reg}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatal(err)
	}
	in.poll = 20 * time.Millisecond
	w := &chunkWriter{}
	r := start(in, w)
	defer r.stop(t)
	waitFor(t, fmt.Sprintf("%d records", n), func() bool {
		got := 0
		for _, c := range w.snapshot() {
			got += len(c.events)
		}
		return got == n
	})
	var evs []event.Event
	for _, c := range w.snapshot() {
		evs = append(evs, c.events...)
	}
	return evs
}
