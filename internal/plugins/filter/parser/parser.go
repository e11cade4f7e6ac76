// Package parser is Fluent Bit's parser filter (plugins/filter_parser): it
// parses the value of one field of each record with [PARSER] definitions
// and replaces the record with the result.
//
// As in Fluent Bit:
//   - Key_Name names a top-level field (string or binary key); a value that
//     is not a string (or binary) is not parsed. A Key_Name starting with '$'
//     is a record accessor ($log['inner']);
//   - the Parser entries are tried in order; the first that succeeds wins.
//     When none does, the record goes on unchanged;
//   - on success the record becomes the parsed fields, followed by the other
//     original fields when Reserve_Data is on, followed by (or keeping, with
//     Reserve_Data) the Key_Name field when Preserve_Key is on. With a
//     record accessor Key_Name, Reserve_Data keeps every original field and
//     Preserve_Key alone keeps nothing more. Nest_Under puts the parsed
//     fields under that key. Duplicate keys are kept, not merged;
//   - the event time becomes the parsed time when the parser found one;
//     metadata is kept;
//   - every field named Key_Name is parsed in turn (a record rarely holds
//     the key twice): the last successful parse gives the record, provided
//     the last parse attempted succeeded;
//   - Unescape_Key is deprecated upstream and ignored.
//
// Unlike Fluent Bit, which logs an unknown parser name and carries on with
// the others, Floe refuses the configuration.
package parser

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Spec describes the parser filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "parser",
		Desc: "Parse events",
		Keys: []plugin.Key{
			{Name: "key_name", Desc: "field of the record to parse (a $ record accessor is allowed)"},
			{Name: "parser", Multi: true, Desc: "parser to apply; several are tried in order"},
			{Name: "preserve_key", Type: plugin.Bool, Default: "false", Desc: "keep the Key_Name field in the parsed record"},
			{Name: "reserve_data", Type: plugin.Bool, Default: "false", Desc: "keep the other original fields in the parsed record"},
			{Name: "nest_under", Desc: "put the parsed fields under this key"},
			{Name: "unescape_key", Desc: "deprecated, ignored"},
		},
		NewFilter: New,
	}
}

// Filter is a configured parser filter. It is safe for concurrent use.
type Filter struct {
	keyName     []byte
	ra          *recordaccessor.Accessor // Key_Name starting with '$'
	parsers     []plugin.Parser
	preserveKey bool
	reserveData bool
	nestUnder   string
}

// New builds a parser filter. Parser names are resolved through set.Parsers.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{
		preserveKey: p.Bool("preserve_key"),
		reserveData: p.Bool("reserve_data"),
		nestUnder:   p.String("nest_under"),
	}
	key := p.String("key_name")
	if key == "" {
		return nil, p.Errorf("key_name", "missing 'key_name'")
	}
	f.keyName = []byte(key)
	if key[0] == '$' {
		ra, err := recordaccessor.Parse(key)
		if err != nil {
			return nil, p.Errorf("key_name", "invalid record accessor pattern %q: %v", key, err)
		}
		f.ra = ra
	}
	if p.Has("unescape_key") {
		file, line := p.Section.Pos("unescape_key")
		log.Warn("parser: unescape_key is deprecated and ignored", "file", file, "line", line)
	}
	var errs config.ErrorList
	for _, prop := range p.Section.Props {
		if !strings.EqualFold(prop.Key, "parser") {
			continue
		}
		var ps plugin.Parser
		ok := false
		if set.Parsers != nil {
			ps, ok = set.Parsers.Lookup(prop.Value)
		}
		if !ok {
			errs = append(errs, &config.Error{File: prop.File, Line: prop.Line, Key: "parser",
				Msg: fmt.Sprintf("requested parser %q not found", prop.Value)})
			continue
		}
		f.parsers = append(f.parsers, ps)
	}
	switch {
	case len(errs) == 1:
		return nil, errs[0]
	case len(errs) > 1:
		return nil, errs
	case len(f.parsers) == 0:
		return nil, p.Errorf("parser", "at least one 'parser' is required")
	}
	return f, nil
}

// parse tries the parsers in order on one value.
func (f *Filter) parse(v []byte) (event.Time, event.Map, bool) {
	for _, ps := range f.parsers {
		t, m, err := ps.Parse(v)
		if err == nil {
			return t, m, true
		}
	}
	return event.Time{}, nil, false
}

// FilterChunk parses the records. Group markers and records left unchanged
// are copied as they are.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	var (
		pairs   []recordaccessor.Pair
		keep    []bool
		out     []byte
		copied  int
		changed bool
	)
	it := event.NewIter(c.Data)
	for it.Next() {
		ev := it.Event()
		if ev.Kind() != event.KindRecord {
			continue
		}
		var err error
		pairs, err = recordaccessor.AppendPairs(pairs[:0], ev.Body)
		if err != nil {
			return nil, fmt.Errorf("record at byte offset %d: %w", ev.Offset, err)
		}
		keep = keep[:0]
		for range pairs {
			keep = append(keep, f.reserveData)
		}
		t := ev.Time
		var parsed event.Map
		lastOK := false
		preserved := -1 // Preserve_Key without Reserve_Data: the field kept
		try := func(v []byte) bool {
			pt, m, ok := f.parse(v)
			lastOK = ok
			if !ok {
				return false
			}
			parsed = m
			if pt != (event.Time{}) {
				t = pt
			}
			return true
		}
		if f.ra != nil {
			if v, ok := f.ra.Get(ev.Body); ok {
				if s, ok := recordaccessor.StrOrBin(v); ok {
					try(s)
				}
			}
		} else {
			for i, pr := range pairs {
				k, ok := recordaccessor.StrOrBin(pr.Key)
				if !ok || !bytes.Equal(k, f.keyName) {
					continue
				}
				v, ok := recordaccessor.StrOrBin(pr.Val)
				if !ok || !try(v) {
					continue
				}
				switch {
				case !f.preserveKey:
					keep[i] = false
				case !f.reserveData:
					preserved = i
				}
			}
		}
		bodyChanged := parsed != nil && lastOK
		if !bodyChanged && t == ev.Time {
			continue
		}
		if !changed {
			out = make([]byte, 0, len(c.Data)+len(c.Data)/2)
			changed = true
		}
		out = append(out, c.Data[copied:ev.Offset]...)
		copied = ev.Offset + len(ev.Raw)
		out = event.AppendRaw(out, t, ev.Meta, nil)
		if !bodyChanged {
			out = append(out, ev.Body...)
			continue
		}
		n := len(parsed)
		if f.nestUnder != "" {
			n = 1
		}
		if preserved >= 0 {
			keep[preserved] = true
		}
		for _, k := range keep {
			if k {
				n++
			}
		}
		out = event.AppendMapHeader(out, n)
		if f.nestUnder != "" {
			out = event.AppendString(out, f.nestUnder)
			out = parsed.AppendMsgpack(out)
		} else {
			for _, kv := range parsed {
				out = event.AppendString(out, kv.Key)
				out = event.AppendValue(out, kv.Value)
			}
		}
		for i, pr := range pairs {
			if keep[i] {
				out = append(out, pr.Key...)
				out = append(out, pr.Val...)
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !changed {
		return []*chunk.Chunk{c}, nil
	}
	out = append(out, c.Data[copied:]...)
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: c.Records, Data: out}}, nil
}
