// Package stdin is Fluent Bit's stdin input: it reads a stream of JSON
// values from the standard input until end of file.
//
// Without a parser, as plugins/in_stdin/in_stdin.c does, the input is a
// stream of JSON values, separated by any whitespace or nothing, each of
// which may span lines:
//
//   - an object becomes the body of a record stamped with the time it is read;
//   - an array must be an event, [TIME, BODY] or [[TIME, METADATA], BODY]
//     with TIME a number of seconds (integer or fractional); it keeps its
//     time and metadata;
//   - any other value is logged ("invalid record found, it's not a JSON map
//     or array") and dropped.
//
// Text that is not JSON is not wrapped into a record: it is logged ("invalid
// JSON message, skipping") and dropped.

// Every drop is counted in floe_dropped_records_total{stage="ingest",
// plugin=<instance>, reason} (not_json, not_a_record, invalid_event,
// too_long, incomplete) and logged at warning level with its byte offset and
// line number in the input and the start of the bad text (as much of it as
// was read when the problem was found): the first drop of
// a burst at once, the rest in a summary every 10 s (telemetry.Dropper). Upstream drops its whole read buffer
// at that point, which may hold valid values read in the same read(2); Floe
// drops only up to the end of the line the error is on and resumes with the
// next line, so the result does not depend on how reads split the input.
//
// parser: Floe has no parsers yet. A configured parser is reported as not
// found and the input falls back to JSON (upstream refuses to start).
//
// buffer_size (default 16k, at least 16000 bytes as upstream requires) is the
// size of each read. Unlike upstream, where a value must fit in the buffer, a
// value may be longer than buffer_size: reads are accumulated until the value
// is complete, up to 64 MiB (or buffer_size if larger); a longer value is
// logged and skipped up to the next line.
//
// Batching: decoded events are collected and written with one Write of up
// to 512 KiB; a partial batch is written as soon as no more input is
// immediately available, so a slow producer's events are not held back. A
// goroutine does the blocking reads. At end of input the input writes what
// is left, waits for every write to be stored and returns nil.
package stdin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/jsonscan"
	"github.com/floe-io/floe/internal/plugins/input/internal/receipts"
	"github.com/floe-io/floe/internal/telemetry"
)

const (
	defaultBufferSize = "16k"
	minBufferSize     = 16000     // upstream DEFAULT_BUF_SIZE
	maxBatch          = 480 << 10 // write when a batch reaches this size
	maxValue          = 64 << 20  // longest value kept, unless buffer_size is larger
	sampleLen         = 80        // bytes of a dropped value shown in the log
)

// Spec describes the stdin input plugin. parser is one of the keys every
// input takes.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: "stdin",
		Desc: "Standard Input",
		Keys: []plugin.Key{
			{Name: "buffer_size", Type: plugin.Size, Default: defaultBufferSize,
				Desc: "size of each read from the standard input (at least 16000 bytes)"},
		},
		NewInput: New,
	}
}

// Stdin is a configured stdin input.
type Stdin struct {
	tag      string
	log      *slog.Logger
	in       io.Reader
	readSize int
	maxValue int
	now      func() event.Time
	drops    drops
	scanOnly bool // tests: take the scanning path for every value
}

// drops are the input's drop sites, one per reason.
type drops struct {
	notJSON, notRecord, invalidEvent, tooLong, incomplete *telemetry.Dropper
}

func (d *drops) flush() {
	for _, x := range []*telemetry.Dropper{d.notJSON, d.notRecord, d.invalidEvent, d.tooLong, d.incomplete} {
		x.Flush()
	}
}

// New builds a stdin input reading os.Stdin.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	return newStdin(set, p, os.Stdin)
}

func newStdin(set plugin.Settings, p *plugin.Props, in io.Reader) (*Stdin, error) {
	s := &Stdin{tag: p.String("tag"), log: set.Logger, in: in, now: event.Now}
	if s.tag == "" {
		s.tag = set.Name
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	size := p.Size("buffer_size")
	if size < minBufferSize {
		return nil, p.Errorf("buffer_size", "buffer_size %d must be at least %d bytes", size, minBufferSize)
	}
	if size > 1<<30 {
		return nil, p.Errorf("buffer_size", "buffer_size %d is larger than 1G", size)
	}
	s.readSize = int(size)
	s.maxValue = max(maxValue, s.readSize)
	if name := p.String("parser"); name != "" {
		s.log.Error("requested parser not found, reading JSON", "parser", name)
	}
	site := func(reason, msg string) *telemetry.Dropper {
		return set.Telemetry.Dropper(s.log, telemetry.DropSite{Stage: "ingest", Plugin: set.DisplayName(),
			Reason: reason, Msg: msg, Level: slog.LevelWarn})
	}
	s.drops = drops{
		notJSON:      site(telemetry.DropNotJSON, "invalid JSON message, skipping"),
		notRecord:    site(telemetry.DropNotRecord, "invalid record found, it's not a JSON map or array"),
		invalidEvent: site(telemetry.DropInvalidEvent, "invalid event array, skipping"),
		tooLong:      site(telemetry.DropTooLong, "JSON value too long, skipping to the next line"),
		incomplete:   site(telemetry.DropIncomplete, "incomplete JSON at end of input, dropped"),
	}
	return s, nil
}

type readResult struct {
	data []byte
	err  error
}

// Run reads until end of input or until ctx ends.
func (s *Stdin) Run(ctx context.Context, w plugin.Writer) error {
	src := sourceFor(s.in, s.readSize)
	ch, free := src.ch, src.free

	st := &state{s: s, w: w, src: src}
	st.tr.Logger = s.log
	st.pending, st.skip, st.pos = src.takeCarry()
	var readErr error
	for {
		var m readResult
		var ok bool
		select {
		case m, ok = <-ch:
		default:
			// Nothing more to read right now: decode and write what we have.
			if st.due() {
				st.process(false)
			}
			if st.records > 0 {
				if err := st.flush(ctx); err != nil {
					return st.exit(ctx, err)
				}
				continue
			}
			select {
			case m, ok = <-ch:
			case <-ctx.Done():
				return st.stop(ctx, src)
			}
		}
		if !ok {
			break
		}
		if len(m.data) > 0 {
			st.pending = append(st.pending, m.data...)
			select {
			case free <- m.data[:cap(m.data)]:
			default:
			}
			if st.due() {
				st.process(false)
			}
			if len(st.batch) >= maxBatch {
				if err := st.flush(ctx); err != nil {
					return st.exit(ctx, err)
				}
			}
		}
		if m.err != nil {
			if !errors.Is(m.err, io.EOF) {
				readErr = m.err
			}
			break
		}
	}
	if readErr != nil {
		s.log.Error("read error, stopping", "error", readErr)
	} else {
		s.log.Warn("end of file (stdin closed by remote end)")
	}
	st.process(true)
	if err := st.flush(ctx); err != nil {
		return st.exit(ctx, err)
	}
	plugin.FlushWriter(w)
	_ = st.tr.Wait(ctx)
	s.drops.flush()
	if readErr != nil {
		return fmt.Errorf("stdin: read: %w", readErr)
	}
	return nil
}

// source owns the reads of one reader for the whole process, so that an
// instance started by a hot reload continues exactly where the stopped one
// left off: nothing read from stdin is lost between them.
type source struct {
	ch    chan readResult
	free  chan []byte
	mu    sync.Mutex
	carry []byte // read by a stopped instance but not yet decoded
	skip  bool
	pos   position // of carry[0]
}

var (
	sourcesMu sync.Mutex
	sources   = map[io.Reader]*source{}
)

func sourceFor(r io.Reader, readSize int) *source {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	if src, ok := sources[r]; ok {
		return src
	}
	src := &source{ch: make(chan readResult, 4), free: make(chan []byte, 6)}
	sources[r] = src
	go src.read(r, readSize)
	return src
}

func (src *source) takeCarry() ([]byte, bool, position) {
	src.mu.Lock()
	defer src.mu.Unlock()
	b, skip, pos := src.carry, src.skip, src.pos
	src.carry, src.skip = nil, false
	return b, skip, pos
}

// read feeds ch with what it reads until an error or end of input.
func (src *source) read(in io.Reader, readSize int) {
	defer close(src.ch)
	for {
		var buf []byte
		select {
		case buf = <-src.free:
		default:
			buf = make([]byte, readSize)
		}
		if cap(buf) < readSize {
			buf = make([]byte, readSize)
		}
		n, err := in.Read(buf[:readSize])
		if n == 0 && err == nil {
			continue
		}
		src.ch <- readResult{data: buf[:n], err: err}
		if err != nil {
			return
		}
	}
}

// stop ends a Run cut short (shutdown, hot reload): complete values already
// read are written and waited for, and the undecoded rest is handed back to
// the source for the next instance.
func (st *state) stop(ctx context.Context, src *source) error {
	st.process(false)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if st.records > 0 {
		if err := st.flush(wctx); err != nil {
			st.s.log.Error("events read before stopping were not written", "error", err)
		}
	}
	plugin.FlushWriter(st.w)
	_ = st.tr.Wait(wctx)
	st.s.drops.flush()
	src.mu.Lock()
	src.carry = append(src.carry, st.pending...)
	src.skip = st.skip
	src.pos = st.pos
	src.mu.Unlock()
	return nil
}

// state is one Run's decoding state.
type state struct {
	s       *Stdin
	src     *source
	w       plugin.Writer
	tr      receipts.Tracker
	pending []byte // input not yet decoded
	// An incomplete value is scanned again from its start only when the
	// tracker sees that it may have ended, or, to find syntax errors the
	// tracker cannot see, once pending has doubled (rescanAt). A value
	// spanning many reads thus costs linear, not quadratic, time. The
	// tracker is fed lazily, by due, only while pending is short of rescanAt.
	track    tracker
	rescanAt int
	skip     bool     // dropping input up to the next newline
	pos      position // of pending[0] in the whole input, for drop logs
	conv     []byte   // scratch for JSON→MessagePack of event arrays
	batch    []byte
	records  int
}

// process decodes every complete value in pending. atEOF: the input has ended.
func (st *state) process(atEOF bool) {
	b := st.pending
	off := 0
	incomplete := 0
	lines := lineCounter{b: b}
	// One clock read per pass: these values arrived together, and reading
	// the clock per value cost more than converting a short one.
	now := st.s.now()
	at := func(i int) []any { // where in the input b[i] is, for a drop log
		return []any{"offset", st.pos.offset + int64(i), "line", st.pos.nls + lines.upTo(i) + 1, "text", sample(b, i)}
	}
	for {
		if st.skip {
			nl := indexNL(b, off)
			if nl < 0 {
				off = len(b)
				if atEOF {
					st.skip = false
				}
				break
			}
			off, st.skip = nl+1, false
		}
		i := jsonscan.SkipWS(b, off)
		if i >= len(b) {
			off = i
			break
		}
		if b[i] == '{' && !st.s.scanOnly {
			// Most input is one object per line: convert it straight into
			// the batch, finding its end in the same pass. An object that
			// is incomplete or malformed takes the scanning path below,
			// which tells the two apart and locates the error.
			mark := len(st.batch)
			out, n, err := event.AppendFromJSONPrefix(event.AppendHeader(st.batch, now, nil), b[i:])
			if err == nil {
				st.batch = out
				st.records++
				off = i + n
				continue
			}
			st.batch = st.batch[:mark]
		}
		end, err := jsonscan.Value(b, i, atEOF)
		if err == jsonscan.ErrIncomplete {
			if atEOF {
				st.s.drops.incomplete.Drop(1, append(at(i), "bytes", len(b)-i)...)
				off = len(b)
			} else if len(b)-i > st.s.maxValue {
				st.s.drops.tooLong.Drop(1, append(at(i), "limit", st.s.maxValue)...)
				off, st.skip = len(b), true
			} else {
				off = i
				incomplete = len(b) - i
			}
			break
		}
		var se *jsonscan.SyntaxError
		if errors.As(err, &se) {
			st.s.drops.notJSON.Drop(1, append(at(i), "error",
				fmt.Sprintf("%s at offset %d", se.Msg, st.pos.offset+int64(se.Off)))...)
			off, st.skip = se.Off, true
			continue
		}
		st.value(b[i:end], now, at, i)
		off = end
	}
	st.pos.advance(b[:off], lines)
	// Keep the undecoded tail at the front of pending.
	n := copy(st.pending, b[off:])
	st.pending = st.pending[:n]
	if cap(st.pending) > 4<<20 && n < cap(st.pending)/4 {
		st.pending = append([]byte(nil), st.pending...) // release a huge value's buffer
	}
	st.rescanAt = 2 * incomplete
	st.track = tracker{}
}

// due reports whether process may find something new in pending.
func (st *state) due() bool {
	if len(st.pending) == 0 {
		return false
	}
	if st.skip || len(st.pending) >= st.rescanAt {
		return true
	}
	// Only a long value still arriving gets here, so the tracker's byte-by-byte
	// walk is paid for that value's bytes, not for every line of a stream.
	st.track.feed(st.pending)
	return st.track.candidate
}

// tracker follows the bracket depth of the input process has not decoded,
// to tell when a value may have ended.
type tracker struct {
	n         int // bytes of pending fed so far
	depth     int
	inStr     bool
	esc       bool
	candidate bool // a value may end in the bytes fed
}

// feed follows pending[t.n:].
func (t *tracker) feed(pending []byte) {
	for _, c := range pending[t.n:] {
		if t.inStr {
			switch {
			case t.esc:
				t.esc = false
			case c == '\\':
				t.esc = true
			case c == '"':
				t.inStr = false
				if t.depth == 0 {
					t.candidate = true
				}
			case c < 0x20: // invalid in a string: process reports it
				t.candidate = true
			}
			continue
		}
		switch c {
		case '"':
			t.inStr = true
		case '{', '[':
			t.depth++
		case '}', ']':
			if t.depth--; t.depth <= 0 {
				t.depth, t.candidate = 0, true
			}
		case ' ', '\t', '\n', '\r':
		default:
			if t.depth == 0 { // a top-level scalar or garbage
				t.candidate = true
			}
		}
	}
	t.n = len(pending)
}

func indexNL(b []byte, off int) int {
	if i := bytes.IndexByte(b[off:], '\n'); i >= 0 {
		return off + i
	}
	return -1
}

// value turns one JSON value, at pending[i], into an event.
func (st *state) value(js []byte, now event.Time, at func(int) []any, i int) {
	var err error
	st.conv, err = event.AppendFromJSON(st.conv[:0], js)
	if err != nil {
		st.s.drops.notJSON.Drop(1, append(at(i), "error", err)...)
		return
	}
	b := st.conv
	switch c := b[0]; {
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		st.batch = event.AppendRaw(st.batch, now, nil, b)
		st.records++
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		ev, next, err := event.ParseEvent(b, 0)
		if err == nil && next != len(b) {
			err = errors.New("trailing data")
		}
		if err != nil {
			st.s.drops.invalidEvent.Drop(1, append(at(i), "error", err)...)
			return
		}
		st.batch = event.AppendRaw(st.batch, ev.Time, ev.Meta, ev.Body)
		st.records++
	default:
		st.s.drops.notRecord.Drop(1, at(i)...)
	}
}

// flush writes the batch.
func (st *state) flush(ctx context.Context) error {
	if st.records == 0 {
		return nil
	}
	r, err := st.w.Write(ctx, st.s.tag, st.batch, st.records)
	if err != nil {
		return err
	}
	st.tr.Add(r)
	st.batch = st.batch[:0] // Write keeps no reference to it
	if cap(st.batch) > 4*maxBatch {
		st.batch = nil // release a huge value's buffer
	}
	st.records = 0
	return nil
}

// exit ends Run after a failed write: a cancelled context is a normal stop.
func (st *state) exit(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return st.stop(ctx, st.src)
	}
	return fmt.Errorf("stdin: %w", err)
}

// position is a place in the whole input.
type position struct {
	offset int64 // bytes before it
	nls    int   // newlines before it
}

// advance moves p past consumed, the front of the buffer lc counts in.
func (p *position) advance(consumed []byte, lc lineCounter) {
	p.offset += int64(len(consumed))
	p.nls += lc.upTo(len(consumed))
}

// lineCounter counts the newlines before an index of b, moving forward only,
// so the drops of one buffer cost one pass over it in all.
type lineCounter struct {
	b   []byte
	at  int // newlines in b[:at] are counted
	nls int
}

func (c *lineCounter) upTo(i int) int {
	if i < c.at { // not expected: indexes only grow within one process call
		return bytes.Count(c.b[:i], []byte{'\n'})
	}
	c.nls += bytes.Count(c.b[c.at:i], []byte{'\n'})
	c.at = i
	return c.nls
}

// sample is the start of the text at b[i], up to its line's end or as much
// of it as was read.
func sample(b []byte, i int) string {
	end := min(len(b), i+sampleLen)
	if nl := bytes.IndexByte(b[i:end], '\n'); nl >= 0 {
		end = i + nl
	}
	return string(bytes.TrimRight(b[i:end], "\r"))
}
