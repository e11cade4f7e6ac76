// Package multiline is Fluent Bit's multiline filter (plugins/filter_multiline,
// mode parser): it joins the records whose multiline.key_content holds one
// line of a stack trace into one record, with the parsers the tail input
// uses (docker, cri, go, python, java and [MULTILINE_PARSER] sections).
//
// A joined record is the first line's record (time, metadata, other keys)
// with key_content set to the joined text; a record no parser joins with
// another passes on byte for byte, and so does a record without a string
// key_content (in its place among the others, not held back).
//
// buffer on (the default): lines are joined across chunks, per tag and
// input (Fluent Bit's stream per input and tag); a record still open when
// a chunk ends is held until its next line arrives or flush_ms passes
// without one, and the filter stage then passes it on through the filters
// after this one (Fluent Bit re-emits it through an emitter input instead).
// Held lines are in memory only: a crash loses them, as in Fluent Bit.
// Chunks are fed in the order the filter stage hands them over. Without
// [SERVICE] ordering per_tag, a process's filter.workers (2) may take two
// chunks of a tag at once, and several filter replicas split a tag's
// chunks between them, so a trace cut across chunks may be joined only in
// part; ordering per_tag keeps each tag's chunks in order on one replica
// and is the setting to use with this filter.
//
// buffer off: lines are joined within each chunk only, and whatever is
// open at the end of a chunk is passed on at once.
//
// mode partial_message joins the pieces a container runtime split a long
// line into (Docker's fluentd log driver: partial_message, partial_id,
// partial_ordinal, partial_last keys); see partial.go.
package multiline

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	ml "github.com/floe-io/floe/internal/multiline"
	"github.com/floe-io/floe/internal/plugin"
)

// Spec describes the multiline filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "multiline",
		Desc: "concatenate multiline messages",
		Keys: []plugin.Key{
			{Name: "multiline.parser", Multi: true, Desc: "comma-separated multiline parsers (docker, cri, go, python, java or [MULTILINE_PARSER] names)"},
			{Name: "multiline.key_content", Desc: "key holding the text to join"},
			{Name: "mode", Default: "parser", Enum: []string{"parser", "partial_message"}, Desc: "parser, or partial_message to join Docker's split lines"},
			{Name: "buffer", Type: plugin.Bool, Default: "true", Desc: "join lines across chunks, holding an open record up to flush_ms"},
			{Name: "flush_ms", Type: plugin.Int, Default: "2000", Desc: "milliseconds an open record waits for its next line"},
			{Name: "emitter_name", Desc: "accepted for compatibility; held records re-enter after this filter"},
			{Name: "emitter_storage.type", Default: "memory", Enum: []string{"memory", "filesystem"}, Desc: "accepted for compatibility"},
			{Name: "emitter_mem_buf_limit", Type: plugin.Size, Default: "10M", Desc: "accepted for compatibility"},
			{Name: "debug_flush", Type: plugin.Bool, Default: "false", Desc: "accepted for compatibility"},
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := New(ctx, set, p)
			return err
		},
	}
}

// maxPendingBytes bounds one open record, as the tail input does.
const maxPendingBytes = 2 << 20

// Filter is one multiline instance.
type Filter struct {
	parsers []*ml.Parser
	key     string
	buffer  bool
	flush   time.Duration
	now     func() time.Time

	mu      sync.Mutex
	streams map[streamKey]*stream

	partial bool // mode partial_message
	packers map[partialKey]*packer
	packSeq int64
}

type streamKey struct{ tag, source string }

// stream is the open state of one tag and input.
type stream struct {
	s       *ml.Stream
	typ     string
	next    int64                 // index of the next line fed
	lines   map[int64]event.Event // records of lines that may start a joined record
	raws    map[int64][]byte      // their encoded form, to pass single lines on unchanged
	last    time.Time             // when the last line arrived
	pending bool
}

// New builds the filter from its section.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	if strings.EqualFold(p.String("mode"), "partial_message") {
		return newPartial(p)
	}
	vals := p.All("multiline.parser")
	if len(vals) == 0 {
		return nil, p.Errorf("name", "mode parser needs at least one multiline.parser")
	}
	reg, err := ml.Load(set.MultilineParsers, set.Parsers)
	if err != nil {
		return nil, err
	}
	parsers, err := reg.Resolve(vals)
	if err != nil {
		return nil, p.Errorf("multiline.parser", "%v", err)
	}
	if len(parsers) == 0 {
		return nil, p.Errorf("multiline.parser", "no parser named")
	}
	key := p.String("multiline.key_content")
	if key == "" {
		return nil, p.Errorf("name", "multiline.key_content is required: the key that holds each line")
	}
	ms := p.Int("flush_ms")
	if ms <= 0 {
		return nil, p.Errorf("flush_ms", "flush_ms must be a positive number of milliseconds, not %q", p.String("flush_ms"))
	}
	return &Filter{
		parsers: parsers, key: key, buffer: p.Bool("buffer"),
		flush: time.Duration(ms) * time.Millisecond, now: time.Now,
		streams: map[streamKey]*stream{},
	}, nil
}

func (f *Filter) newStream(typ string) *stream {
	return &stream{
		s: ml.NewStream(f.parsers, ml.Options{MaxBytes: maxPendingBytes}), typ: typ,
		lines: map[int64]event.Event{}, raws: map[int64][]byte{},
	}
}

// content is the line a record holds under the filter's key.
func (f *Filter) content(ev *event.Event) ([]byte, bool) {
	v, ok := ev.Body.Get(f.key)
	if !ok {
		return nil, false
	}
	switch s := v.(type) {
	case string:
		return []byte(s), true
	case []byte:
		return s, true
	}
	return nil, false
}

// emitter appends joined records to out.
func (f *Filter) emitter(st *stream, out *[]byte, n *int) func(ml.Record) {
	return func(r ml.Record) {
		*n++
		first, ok := st.lines[r.Start]
		raw := st.raws[r.Start]
		delete(st.lines, r.Start)
		delete(st.raws, r.Start)
		if !ok {
			// Cannot happen: every line fed is kept until emitted. Keep the
			// text rather than lose it.
			first = event.Event{Time: event.Now(), Body: event.Map{}}
		}
		if r.Lines == 1 && ok {
			*out = append(*out, raw...)
			return
		}
		text := string(r.Text)
		if r.Body != nil {
			if v, ok := r.Body.Get(f.key); ok {
				if s, ok := v.(string); ok {
					text = s
				}
			}
		}
		body := first.Body.Clone()
		body.Set(f.key, text)
		first.Body = body
		*out = first.AppendMsgpack(*out)
	}
}

// prune forgets the continuation lines already consumed: every line before
// the oldest one still open.
func (st *stream) prune() {
	min, ok := st.s.Pending()
	st.pending = ok
	for i := range st.lines {
		if !ok || i < min {
			delete(st.lines, i)
			delete(st.raws, i)
		}
	}
}

// FilterChunk feeds every record of c to its stream.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.partial {
		return f.filterPartial(c)
	}
	key := streamKey{c.Tag, c.Source}
	st := f.streams[key]
	if st == nil || !f.buffer {
		st = f.newStream(c.Type)
		if f.buffer {
			f.streams[key] = st
		}
	}
	now := f.now()
	out := make([]byte, 0, len(c.Data))
	n := 0
	emit := f.emitter(st, &out, &n)
	it := event.NewIter(c.Data)
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
		line, ok := f.content(&ev)
		if !ok {
			out = append(out, raw.Raw...)
			n++
			continue
		}
		idx := st.next
		st.next++
		st.lines[idx] = ev
		st.raws[idx] = append([]byte(nil), raw.Raw...)
		st.s.Feed(line, ev.Time, idx, idx+1, now, emit)
		st.prune()
		st.last = now
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !f.buffer {
		st.s.FlushAll(emit)
	}
	if n == 0 && len(out) == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out, Source: c.Source}}, nil
}

// FlushPending passes on the open records that got no line for flush_ms
// (every open record when all is set).
func (f *Filter) FlushPending(_ context.Context, now time.Time, all bool) []*chunk.Chunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.partial {
		return f.flushPartial(now, all)
	}
	var res []*chunk.Chunk
	for key, st := range f.streams {
		if !st.pending {
			if now.Sub(st.last) > 10*f.flush+time.Minute {
				delete(f.streams, key) // idle: forget the tag
			}
			continue
		}
		if !all && now.Sub(st.last) < f.flush {
			continue
		}
		var out []byte
		n := 0
		st.s.FlushAll(f.emitter(st, &out, &n))
		st.prune()
		if n > 0 {
			res = append(res, &chunk.Chunk{Tag: key.tag, Type: st.typ, Records: n, Data: out, Source: key.source})
		}
	}
	return res
}

// FlushInterval is how often the filter stage should call FlushPending.
func (f *Filter) FlushInterval() time.Duration { return f.flush / 4 }
