// Package grep is Fluent Bit's grep filter (plugins/filter_grep): it keeps or
// drops records by matching regular expressions against record values.
//
// Each Regex or Exclude rule is "KEY REGEX": KEY is a record accessor
// ($kubernetes['labels']['app']) or a plain key name, which Fluent Bit turns
// into "$KEY" — so a plain "log.level" names the key "log", as upstream. A
// rule matches when KEY resolves to a MessagePack string that the regex
// finds (unanchored search); a missing key, a number, a boolean, a binary or
// a container never matches.
//
// Logical_Op decides how rules combine:
//
//   - legacy (default): rules run in configuration order; the first Exclude
//     that matches drops the record, the first Regex that does not match
//     drops it, and the first Regex that matches keeps it at once — later
//     rules are not consulted. So with several Regex rules only the first
//     one counts (fluent/fluent-bit#3259, #7035); upstream's documentation
//     says to put Excludes first and use a single Regex.
//   - AND / OR: every rule must be of one kind (mixing Regex and Exclude is a
//     configuration error); Regex rules keep a record when all (AND) or any
//     (OR) match, Exclude rules drop it when all (AND) or any (OR) match.
//
// Any other Logical_Op value means legacy, as in Fluent Bit (Floe logs a
// warning). Kept records are copied byte for byte; a chunk where nothing is
// dropped is passed on as is.
package grep

import (
	"context"
	"fmt"
	"github.com/floe-io/floe/internal/onig"
	"log/slog"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Spec describes the grep filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "grep",
		Desc: "grep events by specified field values",
		Keys: []plugin.Key{
			{Name: "regex", Multi: true, Desc: "KEY REGEX: keep records in which the content of KEY matches the regular expression"},
			{Name: "exclude", Multi: true, Desc: "KEY REGEX: exclude records in which the content of KEY matches the regular expression"},
			{Name: "logical_op", Default: "legacy", Desc: "how rules combine: legacy, AND or OR"},
		},
		NewFilter: New,
	}
}

type op uint8

const (
	opLegacy op = iota
	opOr
	opAnd
)

type rule struct {
	exclude bool
	ra      *recordaccessor.Accessor
	re      *onig.Regex
}

// Filter is a configured grep filter. It is safe for concurrent use.
type Filter struct {
	op    op
	rules []rule
}

// New builds a grep filter from its configuration.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{}
	// cb_grep_init: exact, case-insensitive "AND", "OR" or "legacy"; any
	// other value silently means legacy.
	switch v := p.String("logical_op"); {
	case strings.EqualFold(v, "and"):
		f.op = opAnd
	case strings.EqualFold(v, "or"):
		f.op = opOr
	case strings.EqualFold(v, "legacy"):
	default:
		log.Warn("grep: unknown logical_op, using legacy as Fluent Bit does", "logical_op", v)
	}
	var first *config.Prop
	for i := range p.Section.Props {
		prop := &p.Section.Props[i]
		var exclude bool
		switch {
		case strings.EqualFold(prop.Key, "regex"):
		case strings.EqualFold(prop.Key, "exclude"):
			exclude = true
		default:
			continue
		}
		if f.op != opLegacy && first != nil && !strings.EqualFold(first.Key, prop.Key) {
			return nil, propErr(prop, "both 'regex' and 'exclude' are set: with logical_op %s all rules must be of one kind (%s at %s:%d)",
				p.String("logical_op"), strings.ToLower(first.Key), first.File, first.Line)
		}
		if first == nil {
			first = prop
		}
		parts := recordaccessor.Split(prop.Value, 1)
		if len(parts) != 2 {
			return nil, propErr(prop, "invalid rule %q: expected KEY REGEX", prop.Value)
		}
		field := parts[0]
		if !strings.HasPrefix(field, "$") {
			field = "$" + field
		}
		ra, err := recordaccessor.Parse(field)
		if err != nil {
			return nil, propErr(prop, "%v", err)
		}
		for _, w := range ra.Warnings {
			log.Warn("grep: record accessor "+w+" (ignored, as Fluent Bit does)", "key", prop.Key, "pattern", field)
		}
		re, err := onig.Compile(parts[1])
		if err != nil {
			return nil, propErr(prop, "could not compile regex pattern %q: %v", parts[1], err)
		}
		f.rules = append(f.rules, rule{exclude: exclude, ra: ra, re: re})
	}
	return f, nil
}

func propErr(p *config.Prop, format string, args ...any) error {
	return &config.Error{File: p.File, Line: p.Line, Key: p.Key, Msg: fmt.Sprintf(format, args...)}
}

func (r *rule) match(body []byte) bool { return r.ra.MatchString(body, r.re.Match) }

// Keep reports whether a record body (an encoded map) passes the rules.
func (f *Filter) Keep(body []byte) bool {
	if len(f.rules) == 0 {
		return true
	}
	if f.op == opLegacy {
		for i := range f.rules {
			r := &f.rules[i]
			if r.match(body) {
				return !r.exclude // a matching Regex keeps at once
			}
			if !r.exclude {
				return false
			}
		}
		return true
	}
	found := false
	for i := range f.rules {
		found = f.rules[i].match(body)
		if (f.op == opOr && found) || (f.op == opAnd && !found) {
			break
		}
	}
	if f.rules[0].exclude {
		return !found
	}
	return found
}

// FilterChunk drops the records that fail the rules. Group markers stay in
// place; kept events are copied unchanged.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	var out []byte
	copied := 0 // c.Data[:copied] is accounted for in out
	kept, dropped := 0, false
	it := event.NewIter(c.Data)
	for it.Next() {
		ev := it.Event()
		if ev.Kind() != event.KindRecord {
			continue
		}
		if f.Keep(ev.Body) {
			kept++
			continue
		}
		if !dropped {
			out = make([]byte, 0, len(c.Data))
			dropped = true
		}
		out = append(out, c.Data[copied:ev.Offset]...)
		copied = ev.Offset + len(ev.Raw)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !dropped {
		return []*chunk.Chunk{c}, nil
	}
	if kept == 0 {
		return nil, nil
	}
	out = append(out, c.Data[copied:]...)
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: kept, Data: out}}, nil
}
