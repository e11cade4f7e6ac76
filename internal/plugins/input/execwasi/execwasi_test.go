package execwasi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/wasmhost"
	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

var (
	rtOnce sync.Once
	rt     *wasmhost.Runtime
	rtErr  error
)

func testRuntime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	rtOnce.Do(func() { rt, rtErr = wasmhost.New(context.Background(), wasmhost.Options{}) })
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

// logBuf collects log output safely across goroutines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func props(t *testing.T, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeInput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "exec_wasi", File: "test.conf", Line: 2})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 3 + i/2})
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindInput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

func newInput(t *testing.T, parsers plugin.Parsers, kv ...string) (*ExecWASI, *logBuf, error) {
	t.Helper()
	logs := &logBuf{}
	set := plugin.Settings{
		Name:    "exec_wasi.0",
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Parsers: parsers,
	}
	x, err := NewWithOptions(context.Background(), set, props(t, kv...), Options{Runtime: testRuntime(t)})
	return x, logs, err
}

func mustInput(t *testing.T, parsers plugin.Parsers, kv ...string) (*ExecWASI, *logBuf) {
	t.Helper()
	x, logs, err := newInput(t, parsers, kv...)
	if err != nil {
		t.Fatal(err)
	}
	return x, logs
}

// runOnce runs a oneshot input to its end.
func runOnce(t *testing.T, x *ExecWASI) *plugintest.Writer {
	t.Helper()
	w := &plugintest.Writer{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := x.Run(ctx, w); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("oneshot Run did not return by itself")
	}
	return w
}

func stdoutLines(t *testing.T, evs []event.Event) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		if len(ev.Body) != 1 || ev.Body[0].Key != "wasi_stdout" {
			t.Fatalf("body %v, want one wasi_stdout key", ev.Body)
		}
		s, ok := ev.Body[0].Value.(string)
		if !ok {
			t.Fatalf("wasi_stdout is %T", ev.Body[0].Value)
		}
		out = append(out, s)
	}
	return out
}

var helloLines = []string{"line 1", "line 2", "line 3",
	strings.Repeat("x", 4095), strings.Repeat("x", 4095), strings.Repeat("x", 10000-2*4095), "last"}

func TestHelloOneshotOneBatch(t *testing.T) {
	x, _ := mustInput(t, nil, "wasi_path", wasmtest.Path(t, "wasi_hello"), "oneshot", "on", "tag", "wasi.hello")
	before := event.Now()
	w := runOnce(t, x)
	after := event.Now()
	batches, err := w.Batches()
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 {
		t.Fatalf("%d writes, want exactly one batch", len(batches))
	}
	if w.Writes[0].Tag != "wasi.hello" {
		t.Errorf("tag %q", w.Writes[0].Tag)
	}
	if w.Flushes == 0 {
		t.Error("oneshot did not flush the writer before waiting")
	}
	got := stdoutLines(t, batches[0])
	if !reflect.DeepEqual(got, helloLines) {
		t.Errorf("lines:\n got %d %q\nwant %d", len(got), abbrev(got), len(helloLines))
	}
	for _, ev := range batches[0] {
		if ev.Time.Before(before) || after.Before(ev.Time) {
			t.Errorf("time %v not within the run [%v, %v]", ev.Time, before, after)
		}
		if len(ev.Meta) != 0 {
			t.Errorf("metadata %v", ev.Meta)
		}
	}
}

func abbrev(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 20 {
			l = fmt.Sprintf("%s…(%d bytes)", l[:10], len(l))
		}
		out[i] = l
	}
	return out
}

func TestBufSizeSplitsLines(t *testing.T) {
	for _, tc := range []struct {
		size string
		want []string
	}{
		// 10,000 x's in pieces of buf_size-1.
		{"2K", []string{"line 1", "line 2", "line 3",
			strings.Repeat("x", 1999), strings.Repeat("x", 1999), strings.Repeat("x", 1999),
			strings.Repeat("x", 1999), strings.Repeat("x", 1999), strings.Repeat("x", 5), "last"}},
		// "line N" is 6 bytes: with buf_size 7 the line fills the buffer and
		// its newline comes alone, as an empty record (fgets).
		{"7", append([]string{"line 1", "", "line 2", "", "line 3", ""}, append(chunks(10000, 6), "last")...)},
		{"8", append([]string{"line 1", "line 2", "line 3"}, append(chunks(10000, 7), "last")...)},
		{"20000", []string{"line 1", "line 2", "line 3", strings.Repeat("x", 10000), "last"}},
	} {
		t.Run(tc.size, func(t *testing.T) {
			x, _ := mustInput(t, nil, "wasi_path", wasmtest.Path(t, "wasi_hello"), "oneshot", "true", "buf_size", tc.size)
			batches, err := runOnce(t, x).Batches()
			if err != nil {
				t.Fatal(err)
			}
			if len(batches) != 1 {
				t.Fatalf("%d writes", len(batches))
			}
			if got := stdoutLines(t, batches[0]); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %d records %q, want %d", len(got), abbrev(got), len(tc.want))
			}
		})
	}
}

// chunks cuts n x's (and their newline) as fgets with a buffer of size+1 does.
func chunks(n, size int) []string {
	var out []string
	for n > 0 {
		k := min(n, size)
		out = append(out, strings.Repeat("x", k))
		n -= k
	}
	if len(out) > 0 && len(out[len(out)-1]) == size {
		out = append(out, "") // the newline alone
	}
	return out
}

func TestReadLine(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  []string
	}{
		{"", 10, nil},
		{"\n", 10, []string{""}},
		{"a\n\nb", 10, []string{"a", "", "b"}},
		{"a\r\nb\r\n", 10, []string{"a\r", "b\r"}},
		{"abc\n", 3, []string{"abc", ""}},
		{"abc\n", 4, []string{"abc"}},
		{"abcdefg", 3, []string{"abc", "def", "g"}},
		{"a\x00b\n", 10, []string{"a\x00b"}},
		{"only\n\n", 1, []string{"o", "n", "l", "y", "", ""}},
	} {
		r := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		var got []string
		var line []byte
		for {
			var err error
			line, err = readLine(r, tc.limit, line[:0])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(line))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("readLine(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

func TestIntervalRunsRepeatedly(t *testing.T) {
	x, _ := mustInput(t, nil, "wasi_path", wasmtest.Path(t, "wasi_hello"), "interval_sec", "0", "interval_nsec", "50000000")
	if x.Period() != 50*time.Millisecond {
		t.Fatalf("period %v", x.Period())
	}
	w := &plugintest.Writer{Notify: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx, w) }()
	deadline := time.After(30 * time.Second)
	for w.Count() < 3 {
		select {
		case <-w.Notify:
		case <-deadline:
			t.Fatalf("%d runs in 30s", w.Count())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	batches, err := w.Batches()
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range batches {
		if got := stdoutLines(t, b); !reflect.DeepEqual(got, helloLines) {
			t.Errorf("run %d: %q", i, abbrev(got))
		}
		if i > 0 && !batches[i-1][0].Time.Before(b[0].Time) {
			t.Errorf("run %d not after run %d", i, i-1)
		}
	}
}

func TestIntervalDefaults(t *testing.T) {
	path := wasmtest.Path(t, "wasi_hello")
	for _, tc := range []struct {
		kv   []string
		want time.Duration
	}{
		{nil, time.Second},
		{[]string{"interval_sec", "0", "interval_nsec", "0"}, time.Second},
		{[]string{"interval_sec", "-5", "interval_nsec", "-1"}, time.Second},
		{[]string{"interval_sec", "2", "interval_nsec", "500"}, 2*time.Second + 500},
		{[]string{"interval_sec", "-1", "interval_nsec", "1000"}, 1000},
	} {
		x, _ := mustInput(t, nil, append([]string{"wasi_path", path}, tc.kv...)...)
		if x.Period() != tc.want {
			t.Errorf("%v: period %v, want %v", tc.kv, x.Period(), tc.want)
		}
	}
}

func TestNonZeroExitKeepsRecords(t *testing.T) {
	x, logs := mustInput(t, nil, "wasi_path", wasmtest.Path(t, "wasi_exit_nonzero"), "oneshot", "on")
	batches, err := runOnce(t, x).Batches()
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || !reflect.DeepEqual(stdoutLines(t, batches[0]), []string{"partial"}) {
		t.Fatalf("batches %v", batches)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("an exit code is not an error:\n%s", logs)
	}
}

func TestTrapDiscardsOutput(t *testing.T) {
	x, logs := mustInput(t, nil, "wasi_path", wasmtest.Path(t, "wasi_trap"), "oneshot", "on")
	w := runOnce(t, x)
	if w.Count() != 0 {
		t.Fatalf("%d writes after a trap, want none", w.Count())
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "trap") || !strings.Contains(l, "wasi_trap.wasm") {
		t.Errorf("trap not logged as an error naming the module:\n%s", l)
	}
}

// loopWasm is a WASI command whose _start loops forever.
var loopWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: () -> ()
	0x03, 0x02, 0x01, 0x00, // func 0: type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // one memory of one page (wasmhost panics on a module without memory)
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export _start
	0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop { br 0 }
}

// emptyWasm is a valid module with a memory and no export.
var emptyWasm = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01}

// importWasm imports foo.bar, which Floe does not provide.
var importWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
	0x02, 0x0b, 0x01, 0x03, 'f', 'o', 'o', 0x03, 'b', 'a', 'r', 0x00, 0x00,
}

func writeWasm(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTimeoutStopsRun(t *testing.T) {
	x, logs := mustInput(t, nil, "wasi_path", writeWasm(t, "loop.wasm", loopWasm), "oneshot", "on", "wasm_timeout", "0.3")
	start := time.Now()
	w := runOnce(t, x)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %v with a 0.3s timeout", took)
	}
	if w.Count() != 0 {
		t.Errorf("%d writes", w.Count())
	}
	if l := logs.String(); !strings.Contains(l, "exceeded wasm_timeout") {
		t.Errorf("timeout not logged:\n%s", l)
	}
}

func TestCancelStopsRunningProgram(t *testing.T) {
	x, logs := mustInput(t, nil, "wasi_path", writeWasm(t, "loop.wasm", loopWasm), "interval_nsec", "1000000", "interval_sec", "0", "wasm_timeout", "0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx, &plugintest.Writer{}) }()
	time.Sleep(300 * time.Millisecond) // well into the first run
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop a running program on cancel")
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("shutdown logged as an error:\n%s", logs)
	}
}

func TestMissingEntryPoint(t *testing.T) {
	x, logs := mustInput(t, nil, "wasi_path", writeWasm(t, "empty.wasm", emptyWasm), "oneshot", "on")
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no start-up warning:\n%s", logs)
	}
	if w := runOnce(t, x); w.Count() != 0 {
		t.Errorf("%d writes", w.Count())
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "WASI main function is not found") {
		t.Errorf("missing entry point not logged:\n%s", l)
	}
}

// jsonParser is Fluent Bit's parser for examples/wasi_serde_json.
func jsonParser(t *testing.T) *parser.Registry {
	t.Helper()
	sec := &config.Section{Type: config.TypeParser, Header: "PARSER", File: "parsers.conf", Line: 1}
	for _, kv := range [][2]string{{"name", "wasi"}, {"format", "json"}, {"time_key", "time"}, {"time_format", "%Y-%m-%dT%H:%M:%S.%L %z"}} {
		sec.Props = append(sec.Props, config.Prop{Key: kv[0], Value: kv[1], File: "parsers.conf", Line: 2})
	}
	p, err := parser.New(sec)
	if err != nil {
		t.Fatal(err)
	}
	r := parser.NewRegistry()
	if err := r.Add(p); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestJSONParserAndAccessiblePaths(t *testing.T) {
	dir := t.TempDir()
	x, logs := mustInput(t, jsonParser(t), "wasi_path", wasmtest.Path(t, "wasi_json"), "oneshot", "on",
		"parser", "wasi", "accessible_paths", dir)
	before := time.Now().Truncate(time.Second)
	batches, err := runOnce(t, x).Batches()
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if len(batches) != 1 || len(batches[0]) != 1 {
		t.Fatalf("batches %v\n%s", batches, logs)
	}
	ev := batches[0][0]
	want := event.Map{
		{Key: "age", Value: int64(43)},
		{Key: "name", Value: "John Doe"},
		{Key: "phones", Value: []any{"+44 1234567", "+44 2345678"}},
	}
	if !reflect.DeepEqual(ev.Body, want) {
		t.Errorf("body %#v, want %#v", ev.Body, want)
	}
	// The parser's time: taken from the JSON (nanosecond precision), not now.
	if tt := ev.Time.Std(); tt.Before(before) || tt.After(after) || ev.Time.Nsec == 0 {
		t.Errorf("time %v not the program's time within [%v, %v]", tt, before, after)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "helloworld.txt")); err != nil || string(b) != "Hello, world!\n" {
		t.Errorf("helloworld.txt in accessible_paths: %q %v", b, err)
	}
}

func TestParserWithoutTimeUsesNow(t *testing.T) {
	// The built-in json parser's time format does not match the program's
	// time: the record keeps its time field and gets the current time.
	reg, err := parser.Load(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := mustInput(t, reg, "wasi_path", wasmtest.Path(t, "wasi_json"), "oneshot", "on", "parser", "json",
		"accessible_paths", t.TempDir())
	before := event.Now()
	batches, err := runOnce(t, x).Batches()
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || len(batches[0]) != 1 {
		t.Fatalf("batches %v", batches)
	}
	ev := batches[0][0]
	if _, ok := ev.Body.Get("time"); !ok {
		t.Errorf("time field dropped: %v", ev.Body)
	}
	if ev.Time.Before(before) {
		t.Errorf("time %v before the run %v", ev.Time, before)
	}
}

func TestParserErrorDropsLine(t *testing.T) {
	reg, err := parser.Load(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	metrics := telemetry.NewRegistry("test")
	logs := &logBuf{}
	set := plugin.Settings{
		Name:      "exec_wasi.0",
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Parsers:   reg,
		Telemetry: metrics,
	}
	x, err := NewWithOptions(context.Background(), set, props(t, "wasi_path", wasmtest.Path(t, "wasi_hello"), "oneshot", "on", "parser", "json"),
		Options{Runtime: testRuntime(t)})
	if err != nil {
		t.Fatal(err)
	}
	if w := runOnce(t, x); w.Count() != 0 {
		t.Errorf("%d writes of lines that are not JSON", w.Count())
	}
	// Every line counted; logged as the first one at once (with its text)
	// and the rest in one summary when the input ends, not line by line.
	if got := metrics.Dropped("ingest", "exec_wasi.0", telemetry.DropParseError).Load(); got != uint64(len(helloLines)) {
		t.Errorf("floe_dropped_records_total{reason=parse_error} = %d, want %d", got, len(helloLines))
	}
	l := logs.String()
	if n := strings.Count(l, "parser returned an error"); n != 2 {
		t.Errorf("%d parser error log lines, want 2 (first, summary):\n%s", n, l)
	}
	if !strings.Contains(l, `text="line 1"`) || !strings.Contains(l, fmt.Sprintf("dropped %d more records", len(helloLines)-1)) {
		t.Errorf("log lacks the first line's text or the summary:\n%s", l)
	}
}

func TestUnknownParserIsIgnored(t *testing.T) {
	x, logs := mustInput(t, parser.NewRegistry(), "wasi_path", wasmtest.Path(t, "wasi_exit_nonzero"), "oneshot", "on", "parser", "nope")
	if !strings.Contains(logs.String(), "requested parser 'nope' not found") {
		t.Errorf("unknown parser not logged:\n%s", logs)
	}
	batches, err := runOnce(t, x).Batches()
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || !reflect.DeepEqual(stdoutLines(t, batches[0]), []string{"partial"}) {
		t.Errorf("batches %v", batches)
	}
	// No parsers configured at all behaves the same.
	if _, _, err := newInput(t, nil, "wasi_path", wasmtest.Path(t, "wasi_hello"), "parser", "json"); err != nil {
		t.Error(err)
	}
}

func TestConstructorErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.wasm")
	for _, tc := range []struct {
		name string
		kv   []string
		key  string
		msg  []string
	}{
		{"no path", nil, "wasi_path", []string{"no input 'command' was given"}},
		{"missing file", []string{"wasi_path", missing}, "wasi_path", []string{"cannot access", missing}},
		{"directory", []string{"wasi_path", t.TempDir()}, "wasi_path", []string{}},
		{"not wasm", []string{"wasi_path", wasmtest.Path(t, "not_wasm")}, "wasi_path", []string{"not_wasm.wasm", "not a WebAssembly"}},
		{"unknown import", []string{"wasi_path", writeWasm(t, "imp.wasm", importWasm)}, "wasi_path", []string{"imp.wasm", "foo.bar"}},
		{"buf_size", []string{"wasi_path", wasmtest.Path(t, "wasi_hello"), "buf_size", "1"}, "buf_size", []string{"buffer size is invalid"}},
		{"memory below heap", []string{"wasi_path", wasmtest.Path(t, "wasi_hello"), "wasm_memory_limit", "10000", "wasm_heap_size", "20000"}, "wasm_memory_limit", nil},
		{"memory below module", []string{"wasi_path", wasmtest.Path(t, "wasi_json"), "wasm_memory_limit", "100K"}, "wasm_memory_limit", []string{"wasi_json.wasm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := newInput(t, nil, tc.kv...)
			if err == nil {
				t.Fatal("no error")
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("error %v (%T) is not at key %s", err, err, tc.key)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestCaptureSpills(t *testing.T) {
	c := &capture{}
	defer c.close()
	want := bytes.Repeat([]byte("0123456789abcde\n"), spillAt/16*3)
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 7777)
		if _, err := c.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if c.f == nil && c.err == nil {
		t.Error("output above spillAt still in memory")
	}
	r, err := c.reader()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("read back %d bytes (%v), want %d", len(got), err, len(want))
	}
}

func TestAppendStdoutRecord(t *testing.T) {
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		line := bytes.Repeat([]byte("a"), n)
		b := appendStdoutRecord(nil, event.Time{Sec: 5, Nsec: 6}, line)
		want := (&event.Event{Time: event.Time{Sec: 5, Nsec: 6}, Body: event.Map{{Key: "wasi_stdout", Value: string(line)}}}).AppendMsgpack(nil)
		if !bytes.Equal(b, want) {
			t.Errorf("len %d: encoding differs from event.Event's", n)
		}
	}
}
