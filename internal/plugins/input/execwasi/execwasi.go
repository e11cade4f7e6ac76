// Package execwasi is Fluent Bit's exec_wasi input (plugins/in_exec_wasi): it
// runs a WASI command (a WebAssembly module with a _start or main entry
// point) at an interval, or once, and turns every line the program writes to
// its standard output into a record.
//
// # Fluent Bit's behaviour
//
// Keys: wasi_path (required), accessible_paths (comma list, default "."),
// parser (the key every input takes), interval_sec (default 1) and
// interval_nsec (default 0), buf_size (size, default 4096), oneshot (bool,
// default false), wasm_heap_size and wasm_stack_size (sizes, at least and by
// default 8192).
//
// Every run instantiates the module afresh (nothing survives from one run to
// the next), with its stdout captured, accessible_paths preopened (host path
// = guest path), no arguments, an empty environment and an empty stdin
// (upstream's guest shares Fluent Bit's stdin), and runs its entry
// point: _start, else main, __main_argc_argv or _main. proc_exit with any
// code, zero or not, is a normal end. A trap, or a module without an entry
// point ("WASI main function is not found"), is logged as an error and ALL
// the output of that run is discarded.
//
// The captured output is then read as fgets(buf, buf_size) does: a line
// longer than buf_size-1 bytes is cut into several records of at most
// buf_size-1 bytes (so a line of exactly buf_size-1 bytes is followed by an
// empty record for its newline); one trailing "\n" is removed, a "\r" is
// kept; a last line without a newline counts; an empty line is an empty
// string. Without a parser each line becomes {"wasi_stdout": "<line>"},
// stamped with the current time (taken when the program has finished). With
// a parser the parsed map is the body, stamped with the parser's time, or the
// current time when the parser found none; a line the parser rejects is
// logged ("parser returned an error") and dropped. A parser name that is not
// defined is logged and the input runs without a parser, as upstream.
//
// Runs happen every interval_sec + interval_nsec (both at most 0: one
// second), the first one interval after start; runs missed while one was
// running (or while the pipeline was paused) are not caught up, as with
// Fluent Bit's timer collector: at most one run follows at once. With oneshot
// the program runs once, at start, and the input ends when its records are
// stored. The guest's stderr is logged line by line with the input's name
// (upstream leaves it on Fluent Bit's stderr).
//
// # Beyond Fluent Bit
//
//   - wasm_timeout (time, default 60s): a run that takes longer is stopped,
//     logged as an error, and its output discarded. 0 means no limit. A run
//     in progress is always stopped when Floe shuts down.
//   - wasm_memory_limit (size, default 128M): cap on the instance's linear
//     memory; memory.grow past it fails in the guest.
//   - Each run's records are written to the pipeline together (one Write),
//     split only when they exceed 4 MiB; upstream appends them one by one.
//   - Bad modules are refused at start-up, naming the key and the module: a
//     wasi_path that is missing or unreadable, a file that is not
//     WebAssembly, an import Floe does not provide, a module needing more
//     memory than wasm_memory_limit. A module without an entry point only
//     draws a warning then (and an error at every run, as upstream).
//   - buf_size must be at least 2 (upstream loops forever on 1).
//   - Output is binary safe: a NUL byte is kept in the line (upstream's
//     strnlen cuts the line at it). The output of a run is held in memory up
//     to 1 MiB, then in an unnamed temporary file (upstream uses tmpfile()
//     for all of it).
//   - A negative interval_sec or interval_nsec counts as 0.
package execwasi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/receipts"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/wasmhost"
)

const (
	defaultBufSize = "4096"
	maxWrite       = 4 << 20 // split a run's records above this many bytes
	spillAt        = 1 << 20 // captured stdout kept in memory up to this size
	readSize       = 64 << 10
)

// entryPoints are the functions a run may start at, in the order tried.
var entryPoints = []string{"_start", "main", "__main_argc_argv", "_main"}

// Spec describes the exec_wasi input plugin. parser is one of the keys every
// input takes (plugin.CommonKeys).
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: "exec_wasi",
		Desc: "Exec WASI Input",
		Keys: []plugin.Key{
			{Name: "wasi_path", Desc: "path of the WASI program (a WebAssembly module with _start or main) to run (required)"},
			{Name: "accessible_paths", Default: ".", Desc: "comma-separated directories the program may access (WASI preopens)"},
			{Name: "interval_sec", Type: plugin.Int, Default: "1", Desc: "seconds between runs"},
			{Name: "interval_nsec", Type: plugin.Int, Default: "0", Desc: "nanoseconds between runs, added to interval_sec"},
			{Name: "buf_size", Type: plugin.Size, Default: defaultBufSize, Desc: "line buffer: longer lines are split into records of buf_size-1 bytes"},
			{Name: "oneshot", Type: plugin.Bool, Default: "false", Desc: "run the program once, at start"},
			{Name: "wasm_heap_size", Type: plugin.Size, Default: "8192", Desc: "host heap for modules without malloc/free (at least 8192)"},
			{Name: "wasm_stack_size", Type: plugin.Size, Default: "8192", Desc: "accepted for compatibility (wazero sizes stacks itself)"},
			{Name: "wasm_timeout", Type: plugin.Seconds, Default: "60s", Desc: "Floe: a run taking longer is stopped and its output discarded (0: no limit)"},
			{Name: "wasm_memory_limit", Type: plugin.Size, Default: "128M", Desc: "Floe: cap on the program's linear memory"},
		},
		NewInput: New,
	}
}

// Options are constructor settings that are not configuration keys.
type Options struct {
	// Runtime overrides the process-wide runtime (tests).
	Runtime *wasmhost.Runtime
}

// ExecWASI is a configured exec_wasi input.
type ExecWASI struct {
	tag        string
	name       string
	log        *slog.Logger
	path       string
	mod        *wasmhost.Module
	paths      []string
	parser     plugin.Parser
	parserName string
	period     time.Duration
	limit      int // longest record: buf_size - 1
	oneshot    bool
	heap       int64
	stack      int64
	memLimit   int64
	timeout    time.Duration // <= 0: none
	// parseDrops counts the lines the parser rejects and logs them
	// rate-limited: a program printing garbage every run must not log a
	// line per line it printed.
	parseDrops *telemetry.Dropper
}

// New builds an exec_wasi input with the default options.
func New(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	return NewWithOptions(ctx, set, p, Options{})
}

// NewWithOptions builds an exec_wasi input: it checks the configuration and
// compiles the module, so a bad module fails start-up.
func NewWithOptions(ctx context.Context, set plugin.Settings, p *plugin.Props, opts Options) (*ExecWASI, error) {
	x := &ExecWASI{
		tag:     p.String("tag"),
		name:    set.DisplayName(),
		log:     set.Logger,
		path:    strings.TrimSpace(p.String("wasi_path")),
		oneshot: p.Bool("oneshot"),
	}
	if x.tag == "" {
		x.tag = set.Name
	}
	if x.name == "" {
		x.name = "exec_wasi"
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	x.parseDrops = set.Telemetry.Dropper(x.log, telemetry.DropSite{Stage: "ingest", Plugin: set.DisplayName(),
		Reason: telemetry.DropParseError, Msg: "parser returned an error", Level: slog.LevelError})
	if x.path == "" {
		return nil, p.Errorf("wasi_path", "no input 'command' was given (wasi_path is required)")
	}
	for _, s := range strings.Split(p.String("accessible_paths"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			x.paths = append(x.paths, s)
		}
	}
	bufSize := p.Size("buf_size")
	if bufSize < 2 {
		return nil, p.Errorf("buf_size", "buffer size is invalid: %d (at least 2)", bufSize)
	}
	x.limit = int(min(bufSize-1, math.MaxInt32))

	// Interval, as upstream's config_read: both at most 0 → 1s.
	isec, insec := max(p.Int("interval_sec"), 0), max(p.Int("interval_nsec"), 0)
	x.period = time.Duration(isec)*time.Second + time.Duration(insec)
	if x.period <= 0 {
		x.period = time.Second
	}

	x.heap = max(p.Size("wasm_heap_size"), wasmhost.DefaultHeapSize)
	x.stack = max(p.Size("wasm_stack_size"), wasmhost.DefaultStackSize)
	x.timeout = time.Duration(p.Seconds("wasm_timeout") * float64(time.Second))
	x.memLimit = p.Size("wasm_memory_limit")
	if x.memLimit <= 0 {
		x.memLimit = wasmhost.DefaultMemoryLimit
	}
	if x.memLimit < x.heap {
		return nil, p.Errorf("wasm_memory_limit", "%d bytes is less than wasm_heap_size (%d)", x.memLimit, x.heap)
	}

	if name := strings.TrimSpace(p.String("parser")); name != "" {
		x.parserName = name
		if set.Parsers != nil {
			x.parser, _ = set.Parsers.Lookup(name)
		}
		if x.parser == nil {
			x.log.Error(fmt.Sprintf("requested parser '%s' not found", name), "parser", name)
		}
	}

	rt := opts.Runtime
	if rt == nil {
		var err error
		if rt, err = wasmhost.Shared(wasmhost.DefaultCacheDir(set.Service.StoragePath), set.Logger); err != nil {
			return nil, err
		}
	}
	if f, err := os.Open(x.path); err != nil {
		return nil, p.Errorf("wasi_path", "cannot access wasm program at %s: %v", x.path, err)
	} else {
		_ = f.Close()
	}
	// Always the bounded engine: even without wasm_timeout a run must
	// stop when Floe shuts down.
	mod, err := rt.Compile(ctx, x.path)
	if err != nil {
		return nil, p.Errorf("wasi_path", "%v", err)
	}
	if need := mod.MinMemory(); need+uint64(x.heap) > uint64(x.memLimit) {
		return nil, p.Errorf("wasm_memory_limit", "wasm module %s needs %d bytes of memory at start (plus a heap of up to %d), over the limit of %d bytes",
			x.path, need, x.heap, x.memLimit)
	}
	x.mod = mod
	if !hasEntryPoint(mod) {
		x.log.Warn("WASI main function is not found: the module exports none of _start, main, __main_argc_argv, _main; every run will fail",
			"module", x.path)
	}
	x.log.Debug("exec_wasi ready", "module", x.path, "interval", x.period.String(), "oneshot", x.oneshot,
		"buf_size", bufSize, "compiled", rt.Compiler())
	return x, nil
}

func hasEntryPoint(m *wasmhost.Module) bool {
	for _, n := range entryPoints {
		if m.HasFunction(n) {
			return true
		}
	}
	return false
}

// Period is the time between runs (unused with oneshot).
func (x *ExecWASI) Period() time.Duration { return x.period }

// Run runs the program once (oneshot) or at every interval until ctx ends.
func (x *ExecWASI) Run(ctx context.Context, w plugin.Writer) error {
	defer x.parseDrops.Flush()
	tr := receipts.Tracker{Logger: x.log}
	if x.oneshot {
		if err := x.collect(ctx, w, &tr); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		plugin.FlushWriter(w)
		_ = tr.Wait(ctx) // a cancelled context ends the wait: nothing more to do
		return nil
	}

	// A timer on the grid start + k×period, as Fluent Bit's timer
	// collector: expirations missed during a run are coalesced into one
	// run right after it.
	base := time.Now()
	k := int64(1)
	timer := time.NewTimer(x.period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if err := x.collect(ctx, w, &tr); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		if passed := int64(now.Sub(base) / x.period); passed > k {
			k = passed // one or more expirations passed during the run
		} else {
			k++
		}
		timer.Reset(base.Add(time.Duration(k) * x.period).Sub(now))
	}
}

// collect is one run: instantiate, run, read the output, write the records.
// Failures of the program are logged and give no records; only a failed
// Write (or the end of ctx) is returned.
func (x *ExecWASI) collect(ctx context.Context, w plugin.Writer, tr *receipts.Tracker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	out := &capture{}
	defer out.close()
	timeout := x.timeout
	if timeout <= 0 {
		timeout = -1 // none
	}
	start := time.Now()
	inst, err := x.mod.Instantiate(ctx, wasmhost.InstanceConfig{
		Name:            x.name,
		AccessiblePaths: x.paths,
		HeapSize:        x.heap,
		StackSize:       x.stack,
		MemoryLimit:     x.memLimit,
		Timeout:         timeout,
		Stdout:          out,
		Logger:          x.log,
		Start:           true,
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		x.logRunError(err, time.Since(start))
		return nil
	}
	code, _ := inst.ExitCode()
	_ = inst.Close(context.WithoutCancel(ctx))
	if code != 0 {
		x.log.Debug("WASI program exited with a non-zero code", "module", x.path, "code", code)
	}
	if out.err != nil {
		x.log.Error("cannot keep the WASI program's output; it may be incomplete", "module", x.path, "error", out.err)
	}
	r, err := out.reader()
	if err != nil {
		x.log.Error("cannot read the WASI program's output", "module", x.path, "error", err)
		return nil
	}
	return x.emit(ctx, w, tr, bufio.NewReaderSize(r, readSize))
}

func (x *ExecWASI) logRunError(err error, took time.Duration) {
	switch {
	case errors.Is(err, wasmhost.ErrTimeout):
		x.log.Error("WASI program exceeded wasm_timeout and was stopped; its output is discarded",
			"module", x.path, "wasm_timeout", x.timeout.String(), "error", err)
	case !hasEntryPoint(x.mod):
		x.log.Error("WASI main function is not found", "module", x.path, "error", err)
	default:
		x.log.Error("WASI program failed; its output is discarded", "module", x.path, "took", took.String(), "error", err)
	}
}

// emit turns the captured lines into records and writes them.
func (x *ExecWASI) emit(ctx context.Context, w plugin.Writer, tr *receipts.Tracker, r *bufio.Reader) error {
	var (
		buf     []byte
		records int
		line    []byte
	)
	flush := func() error {
		if records == 0 {
			return nil
		}
		rc, err := w.Write(ctx, x.tag, buf, records)
		if err != nil {
			return err
		}
		tr.Add(rc)
		buf, records = nil, 0 // the writer may keep the bytes
		return nil
	}
	for {
		var err error
		line, err = readLine(r, x.limit, line[:0])
		if err != nil {
			if err != io.EOF {
				x.log.Error("cannot read the WASI program's output", "module", x.path, "error", err)
			}
			break
		}
		if x.parser != nil {
			t, m, perr := x.parser.Parse(line)
			if perr != nil {
				x.parseDrops.Drop(1, "parser", x.parserName, "error", perr, "text", truncate(line, 80))
				continue
			}
			if t == (event.Time{}) {
				t = event.Now()
			}
			ev := event.Event{Time: t, Body: m}
			buf = ev.AppendMsgpack(buf)
		} else {
			buf = appendStdoutRecord(buf, event.Now(), line)
		}
		records++
		if len(buf) >= maxWrite {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// readLine reads the next record as fgets(buf, limit+1) does: up to and
// including a newline, at most limit bytes; the newline is removed. At the
// end of the data it returns io.EOF.
func readLine(r *bufio.Reader, limit int, line []byte) ([]byte, error) {
	for len(line) < limit {
		if _, err := r.Peek(1); err != nil {
			if err == io.EOF && len(line) > 0 {
				return line, nil // last line without a newline
			}
			return line, err
		}
		chunk, _ := r.Peek(min(r.Buffered(), limit-len(line)))
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			line = append(line, chunk[:i]...)
			_, _ = r.Discard(i + 1)
			return line, nil
		}
		line = append(line, chunk...)
		_, _ = r.Discard(len(chunk))
	}
	return line, nil
}

// appendStdoutRecord encodes [[t, {}], {"wasi_stdout": line}].
func appendStdoutRecord(b []byte, t event.Time, line []byte) []byte {
	b = append(b, 0x92, 0x92)
	b = t.AppendMsgpack(b)
	b = append(b, 0x80, 0x81, 0xa0|11)
	b = append(b, "wasi_stdout"...)
	switch n := len(line); {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, line...)
}

// capture holds a run's stdout: in memory up to spillAt bytes, then in an
// unnamed temporary file. Its Write never fails while the output stays in
// memory; a failing temporary file fails the guest's write.
type capture struct {
	mem []byte
	f   *os.File
	err error // the temporary file could not be made or written
}

func (c *capture) Write(p []byte) (int, error) {
	if c.f == nil && c.err == nil && len(c.mem)+len(p) > spillAt {
		c.spill()
	}
	if c.f != nil {
		n, err := c.f.Write(p)
		if err != nil && c.err == nil {
			c.err = err
		}
		return n, err
	}
	c.mem = append(c.mem, p...)
	return len(p), nil
}

func (c *capture) spill() {
	f, err := os.CreateTemp("", "floe-exec-wasi-*")
	if err != nil {
		c.err = err // keep the output in memory
		return
	}
	_ = os.Remove(f.Name()) // unnamed where the system allows it
	if _, err := f.Write(c.mem); err != nil {
		c.err = err
		name := f.Name()
		_ = f.Close()
		_ = os.Remove(name)
		return
	}
	c.f, c.mem = f, nil
}

func (c *capture) reader() (io.Reader, error) {
	if c.f == nil {
		return bytes.NewReader(c.mem), nil
	}
	if _, err := c.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return c.f, nil
}

func (c *capture) close() {
	if c.f != nil {
		name := c.f.Name()
		_ = c.f.Close()
		_ = os.Remove(name)
		c.f = nil
	}
	c.mem = nil
}

// truncate is the start of a line for a log.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
