// Package plugin defines the contracts where Floe's stages meet their
// plugins: an input writes events and gets a receipt, a filter turns a chunk
// into zero or more chunks, an output flushes a chunk and answers OK, RETRY
// or ERROR. It also holds the registry of plugin specs that validation and
// the stages share.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/telemetry"
)

// Kind is the section kind a plugin serves.
type Kind string

const (
	KindInput  Kind = "input"
	KindFilter Kind = "filter"
	KindOutput Kind = "output"
)

// Service is the part of [SERVICE] that plugins may read.
type Service struct {
	Flush       time.Duration
	JSON        event.JSONOptions
	StoragePath string
}

// Settings are what Floe passes to a plugin besides its configuration.
type Settings struct {
	Name    string // instance name: "<plugin>.<N>"
	Alias   string // display name if set
	Logger  *slog.Logger
	Service Service
	// Telemetry is the process's metrics registry, for plugins with metrics
	// of their own (WASM modules); nil in tests that do not care.
	Telemetry *telemetry.Registry
	// Parsers resolves [PARSER] names; nil when none are configured.
	Parsers Parsers
	// MultilineParsers are the [MULTILINE_PARSER] sections of the
	// configuration and its parsers files (built by internal/multiline).
	MultilineParsers []*config.Section
	// Positions stores input positions; nil where there is no JetStream
	// (floe validate, unit tests), and inputs then start from scratch.
	Positions PositionStore
}

// Parser turns one line of text into a record, as a Fluent Bit [PARSER]
// does. A zero time means the parser found none (callers use the current time).
type Parser interface {
	Parse(data []byte) (event.Time, event.Map, error)
}

// RecordAppender is a Parser that can write the record it parses straight
// into MessagePack, which inputs prefer: no Map is built per line.
type RecordAppender interface {
	AppendRecord(dst, data []byte) (event.Time, []byte, error)
}

// AppendRecord parses data with p and appends the record to dst as a
// MessagePack map: through p's AppendRecord when it has one, else Parse. A
// text that parses to no record (a nil Map) is an error, as inputs keep such
// a line unparsed.
func AppendRecord(p Parser, dst, data []byte) (event.Time, []byte, error) {
	if ra, ok := p.(RecordAppender); ok {
		return ra.AppendRecord(dst, data)
	}
	t, m, err := p.Parse(data)
	if err != nil {
		return event.Time{}, dst, err
	}
	if m == nil {
		return event.Time{}, dst, errNoRecord
	}
	return t, m.AppendMsgpack(dst), nil
}

var errNoRecord = errors.New("parser gave no record")

// Parsers looks parsers up by name.
type Parsers interface {
	Lookup(name string) (Parser, bool)
}

// DisplayName is the alias when set, else the instance name (Fluent Bit's flb_*_name).
func (s Settings) DisplayName() string {
	if s.Alias != "" {
		return s.Alias
	}
	return s.Name
}

// Receipt resolves when the events written are durably stored in JetStream.
type Receipt interface {
	Done() <-chan struct{}
	Err() error // valid after Done is closed
}

// Writer is ingest's side of an input: it takes encoded events for one tag.
//
// Backpressure contract: Write blocks while the pipeline is paused (FLOE_IN
// full, or the input's mem_buf_limit reached) and returns when it resumes,
// so an input that simply calls Write stops reading its source meanwhile
// (stdin's writer blocks, dummy stops generating). Inputs that must answer
// their clients instead of blocking (HTTP: 503 with Retry-After) also
// implement Pauser.
//
// Write does not keep data after it returns: inputs reuse their buffers.
type Writer interface {
	Write(ctx context.Context, tag string, data []byte, records int) (Receipt, error)
}

// Flusher is implemented by a Writer that can close its open chunks at once.
type Flusher interface {
	Flush()
}

// FlushWriter asks w to close its open chunks now, if it can. An input that
// reached the end of its data calls it before waiting for its receipts, so
// it does not wait for the next flush tick.
func FlushWriter(w Writer) {
	if f, ok := w.(Flusher); ok {
		f.Flush()
	}
}

// Pauser is implemented by inputs that refuse new data while paused instead
// of blocking in Write (Fluent Bit's pause/resume callbacks).
type Pauser interface {
	Pause()
	Resume()
}

// Input produces events until its context ends or its source is exhausted.
type Input interface {
	Run(ctx context.Context, w Writer) error
}

// Filter turns a chunk into zero or more chunks. It must not modify c.Data
// in place; returning []*chunk.Chunk{c} passes the chunk on unchanged.
type Filter interface {
	FilterChunk(ctx context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error)
}

// PendingFlusher is implemented by filters that hold records across chunks
// (multiline joins a stack trace split over several chunks). The filter
// stage calls FlushPending periodically with all=false, and with all=true
// when it stops; the chunks returned continue through the filters after
// this one, as the records of FilterChunk do. Held records live in memory
// only: a crash loses them, as in Fluent Bit.
type PendingFlusher interface {
	FlushPending(ctx context.Context, now time.Time, all bool) []*chunk.Chunk
}

// Emitter is implemented by filters that re-route records under new tags
// (rewrite_tag). A chunk a filter returns with a tag other than the one it
// was given re-enters the filter stage under that tag, as the records of
// Fluent Bit's emitter input do, with Source set to EmitterName(); chunks
// from a filter's own emitter pass that filter untouched.
type Emitter interface {
	EmitterName() string
}

// Output delivers chunks to a sink. Flush returns nil for OK, an error made
// with Permanent for ERROR, and any other error for RETRY.
type Output interface {
	Flush(ctx context.Context, c *chunk.Chunk) error
}

// DataBorrower is implemented by outputs whose Flush reads the chunk's data
// only until it returns, keeping no reference to it: the output stage then
// decompresses chunks for them into a reused buffer instead of a fresh one
// per chunk.
type DataBorrower interface {
	BorrowsData()
}

// Closer is implemented by plugins that hold resources.
type Closer interface {
	Close(ctx context.Context) error
}

// Close closes p if it is a Closer.
func Close(ctx context.Context, p any) error {
	if c, ok := p.(Closer); ok {
		return c.Close(ctx)
	}
	return nil
}

// ---- error classes ----

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (Fluent Bit's FLB_ERROR).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type throttleError struct {
	err   error
	delay time.Duration
}

func (e *throttleError) Error() string { return e.err.Error() }
func (e *throttleError) Unwrap() error { return e.err }

// Throttle asks for a retry after at least d.
func Throttle(err error, d time.Duration) error { return &throttleError{err, d} }

// ThrottleDelay returns the delay an error asked for.
func ThrottleDelay(err error) (time.Duration, bool) {
	var t *throttleError
	if errors.As(err, &t) {
		return t.delay, true
	}
	return 0, false
}

// ErrNotConnected means the sink is unreachable; the chunk is retried.
var ErrNotConnected = errors.New("not connected")

// ---- record-at-a-time helper for filters ----

// RecordFunc edits one decoded event in place and reports whether to keep it.
type RecordFunc func(ev *event.Event) (keep bool, err error)

// ApplyRecords runs f over every record of c (group markers pass untouched)
// and returns the resulting chunk, or no chunk when every event was dropped.
// Modified reports whether anything changed, so callers can pass c on as is.
func ApplyRecords(c *chunk.Chunk, f RecordFunc) ([]*chunk.Chunk, error) {
	out := make([]byte, 0, len(c.Data))
	it := event.NewIter(c.Data)
	n := 0
	for it.Next() {
		raw := it.Event()
		if raw.Kind() != event.KindRecord {
			out = append(out, raw.Raw...)
			continue
		}
		ev, err := raw.Decode()
		if err != nil {
			return nil, err
		}
		keep, err := f(&ev)
		if err != nil {
			return nil, fmt.Errorf("record at byte offset %d: %w", raw.Offset, err)
		}
		if !keep {
			continue
		}
		out = ev.AppendMsgpack(out)
		n++
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out, Source: c.Source}}, nil
}

// EditRecords runs edit over each record of c; records it reports unchanged
// are copied byte for byte, and c itself is returned when none changed.
func EditRecords(c *chunk.Chunk, edit func(ev *event.Event) (changed bool)) ([]*chunk.Chunk, error) {
	var out []byte
	it := event.NewIter(c.Data)
	changed := false
	n := 0
	for it.Next() {
		raw := it.Event()
		if raw.Kind() != event.KindRecord {
			out = append(out, raw.Raw...)
			continue
		}
		n++
		ev, err := raw.Decode()
		if err != nil {
			return nil, err
		}
		if !edit(&ev) {
			out = append(out, raw.Raw...)
			continue
		}
		if !changed {
			changed = true
			// Grow once to roughly the input's size.
			out = append(make([]byte, 0, len(c.Data)+len(c.Data)/8), out...)
		}
		out = ev.AppendMsgpack(out)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !changed {
		return []*chunk.Chunk{c}, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out, Source: c.Source}}, nil
}
