package multiline

import (
	"sort"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// mode partial_message, as plugins/filter_multiline/ml_concat.c:
//   - a record whose partial_message is the string "true" (any case; Floe
//     also takes a boolean true) is a piece of a line split by the runtime;
//     pieces are joined per partial_id, tag and input, in arrival order;
//   - the piece whose partial_last is "true" completes the line: the joined
//     record has the first piece's time, no metadata, the first piece's keys
//     except multiline.key_content and the partial_* keys, then
//     multiline.key_content last holding every piece's text concatenated
//     (no separator: the runtime cut one line);
//   - a line whose last piece does not come within flush_ms of its latest
//     piece is passed on as far as it got, through the filters after this
//     one;
//   - other records, and pieces without a partial_id or without a string
//     multiline.key_content, pass on unchanged in their place.
//
// Held pieces are in memory only, per filter replica: as with mode parser,
// set [SERVICE] ordering per_tag so that one line's pieces reach one
// replica in order. (Upstream's key comparisons also take prefixes, so a
// key "p" counts as a partial_* key there; Floe compares whole keys.)

const (
	partialMessageKey = "partial_message"
	partialIDKey      = "partial_id"
	partialLastKey    = "partial_last"
	partialPrefix     = "partial_"
)

type partialKey struct{ tag, source, id string }

// packer is one line being put back together.
type packer struct {
	seq  int64 // creation order, to release timed-out lines in order
	typ  string
	time event.Time
	body event.Map // the first piece's keys, without the content and partial_* keys
	key  string    // the content key as the record spells it
	text []byte
	last time.Time // when the latest piece arrived
}

func newPartial(p *plugin.Props) (plugin.Filter, error) {
	if len(p.All("multiline.parser")) > 0 {
		return nil, p.Errorf("multiline.parser", "multiline.parser cannot be used with mode partial_message: the two modes are exclusive")
	}
	key := p.String("multiline.key_content")
	if key == "" {
		return nil, p.Errorf("name", "multiline.key_content is required: the key that holds each piece of the line")
	}
	ms := p.Int("flush_ms")
	if ms <= 0 {
		return nil, p.Errorf("flush_ms", "flush_ms must be a positive number of milliseconds, not %q", p.String("flush_ms"))
	}
	return &Filter{key: key, partial: true, flush: time.Duration(ms) * time.Millisecond, now: time.Now,
		packers: map[partialKey]*packer{}}, nil
}

// isTrue is upstream's strncasecmp("true", value, 4) on a string value.
func isTrue(v any, ok bool) bool {
	if !ok {
		return false
	}
	switch v := v.(type) {
	case string:
		return len(v) >= 4 && strings.EqualFold(v[:4], "true")
	case []byte:
		return len(v) >= 4 && strings.EqualFold(string(v[:4]), "true")
	case bool:
		return v
	}
	return false
}

func pieceText(v any, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	}
	return "", false
}

// filterPartial holds the pieces of split lines and passes on the rest;
// f.mu is held.
func (f *Filter) filterPartial(c *chunk.Chunk) ([]*chunk.Chunk, error) {
	now := f.now()
	var out []byte
	n, pieces := 0, 0
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		if raw.Kind() == event.KindRecord {
			ev, err := raw.Decode()
			if err != nil {
				return nil, err
			}
			if f.addPiece(c, &ev, now, &out, &n) {
				pieces++
				continue
			}
		}
		out = append(out, raw.Raw...)
		if raw.Kind() == event.KindRecord {
			n++
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if pieces == 0 {
		return []*chunk.Chunk{c}, nil
	}
	if len(out) == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out, Source: c.Source}}, nil
}

// addPiece takes ev when it is a piece of a split line, appending the
// joined record to out when ev completes it.
func (f *Filter) addPiece(c *chunk.Chunk, ev *event.Event, now time.Time, out *[]byte, n *int) bool {
	if !isTrue(ev.Body.Get(partialMessageKey)) {
		return false
	}
	id, ok := pieceText(ev.Body.Get(partialIDKey))
	if !ok {
		return false
	}
	piece, ok := pieceText(ev.Body.Get(f.key))
	if !ok {
		return false
	}
	k := partialKey{c.Tag, c.Source, id}
	p := f.packers[k]
	if p == nil {
		f.packSeq++
		p = &packer{seq: f.packSeq, typ: c.Type, time: ev.Time, key: f.key}
		for _, kv := range ev.Body {
			if kv.Key == f.key || strings.HasPrefix(kv.Key, partialPrefix) {
				continue
			}
			p.body = append(p.body, kv)
		}
		f.packers[k] = p
	}
	p.text = append(p.text, piece...)
	p.last = now
	if isTrue(ev.Body.Get(partialLastKey)) {
		delete(f.packers, k)
		*out = p.record().AppendMsgpack(*out)
		*n++
	}
	return true
}

func (p *packer) record() *event.Event {
	body := append(p.body[:len(p.body):len(p.body)], event.KV{Key: p.key, Value: string(p.text)})
	return &event.Event{Time: p.time, Body: body}
}

// flushPartial passes on the lines whose last piece is overdue (all of them
// when all is set), one chunk per tag and input; f.mu is held.
func (f *Filter) flushPartial(now time.Time, all bool) []*chunk.Chunk {
	type due struct {
		k partialKey
		p *packer
	}
	var ds []due
	for k, p := range f.packers {
		if all || now.Sub(p.last) > f.flush {
			ds = append(ds, due{k, p})
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].p.seq < ds[j].p.seq })
	var res []*chunk.Chunk
	at := map[streamKey]*chunk.Chunk{}
	for _, d := range ds {
		delete(f.packers, d.k)
		sk := streamKey{d.k.tag, d.k.source}
		c := at[sk]
		if c == nil {
			c = &chunk.Chunk{Tag: d.k.tag, Type: d.p.typ, Source: d.k.source}
			at[sk] = c
			res = append(res, c)
		}
		c.Data = d.p.record().AppendMsgpack(c.Data)
		c.Records++
	}
	return res
}
