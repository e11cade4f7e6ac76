// Package rewritetag is Fluent Bit's rewrite_tag filter
// (plugins/filter_rewrite_tag): a record whose key matches a rule's regular
// expression is emitted again under a new tag, and kept or removed from the
// original stream.
//
// Each Rule is "$KEY REGEX NEW_TAG KEEP", as upstream:
//   - KEY is a record accessor ($log, $kubernetes['labels']['app']); only a
//     string value can match (a missing key, a number or a map never does);
//   - REGEX is searched in the value (unanchored);
//   - NEW_TAG is literal text with $TAG (the record's tag), $TAG[n] (the nth
//     part of the tag split on dots, from 0), $0..$9 (the regex's match and
//     groups) and record accessors ($key, $key['sub']) expanded; a part that
//     does not exist expands to nothing;
//   - KEEP (true/false) keeps the original record in its stream as well.
//
// A record whose new tag is empty or equal to its tag stays where it is,
// once (Fluent Bit would re-emit it under the same tag, into a loop).
//
// Rules are tried in order and the first that matches decides. A matched
// record is re-emitted byte for byte (time and metadata included).
//
// Re-emitted records re-enter the pipeline at the filter stage, through
// JetStream, under their new tag, with emitter_name (default
// emitter_for_<filter name>) as their source: they pass every filter whose
// Match fits their new tag, except this one — so a rule whose new tag this
// filter matches again does not loop. Records bounced between several
// rewrite_tag filters are dropped after 8 re-emissions and counted as
// filter errors.
package rewritetag

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/onig"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Spec describes the rewrite_tag filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "rewrite_tag",
		Desc: "rewrite records tags",
		Keys: []plugin.Key{
			{Name: "rule", Multi: true, Desc: "$KEY REGEX NEW_TAG KEEP"},
			{Name: "emitter_name", Desc: "name of the emitter the new records come from; default emitter_for_<filter>"},
			{Name: "emitter_storage.type", Default: "memory", Enum: []string{"memory", "filesystem"}, Desc: "accepted for compatibility: re-emitted records are stored in JetStream"},
			{Name: "emitter_mem_buf_limit", Type: plugin.Size, Default: "10M", Desc: "accepted for compatibility"},
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := New(ctx, set, p)
			return err
		},
	}
}

type partKind uint8

const (
	partText partKind = iota
	partTag
	partTagIndex
	partCapture
	partKey
)

type part struct {
	kind partKind
	text string
	n    int
	ra   *recordaccessor.Accessor
}

type rule struct {
	key  *recordaccessor.Accessor
	re   *onig.Regex
	tag  []part
	keep bool
}

// Filter is one rewrite_tag instance.
type Filter struct {
	rules   []rule
	emitter string
}

// New compiles the rules.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	f := &Filter{emitter: p.String("emitter_name")}
	if f.emitter == "" {
		f.emitter = "emitter_for_" + set.Name
	}
	var errs config.ErrorList
	for _, pr := range p.Section.Props {
		if !strings.EqualFold(pr.Key, "rule") {
			continue
		}
		r, err := parseRule(pr.Value)
		if err != nil {
			errs = append(errs, &config.Error{File: pr.File, Line: pr.Line, Key: pr.Key, Msg: err.Error()})
			continue
		}
		f.rules = append(f.rules, r)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if len(f.rules) == 0 {
		return nil, p.Errorf("name", "rewrite_tag needs at least one rule: $KEY REGEX NEW_TAG KEEP")
	}
	return f, nil
}

func parseRule(v string) (rule, error) {
	fs := recordaccessor.Split(v, 4)
	if len(fs) != 4 {
		return rule{}, fmt.Errorf("rule %q: want 4 fields $KEY REGEX NEW_TAG KEEP, got %d", v, len(fs))
	}
	key, err := recordaccessor.Parse(fs[0])
	if err != nil {
		return rule{}, fmt.Errorf("rule key %q: %v", fs[0], err)
	}
	if !key.Found {
		return rule{}, fmt.Errorf("rule key %q names no record key", fs[0])
	}
	re, err := onig.Compile(fs[1])
	if err != nil {
		return rule{}, fmt.Errorf("rule regex %q: %v", fs[1], err)
	}
	tag, err := parseTag(fs[2])
	if err != nil {
		return rule{}, err
	}
	keep, err := config.ParseBool(fs[3])
	if err != nil {
		return rule{}, fmt.Errorf("rule keep %q is not a boolean (true/false)", fs[3])
	}
	return rule{key: key, re: re, tag: tag, keep: keep}, nil
}

// parseTag splits a NEW_TAG template into literal text and expansions.
func parseTag(s string) ([]part, error) {
	var parts []part
	text := func(t string) {
		if t == "" {
			return
		}
		if n := len(parts); n > 0 && parts[n-1].kind == partText {
			parts[n-1].text += t
			return
		}
		parts = append(parts, part{kind: partText, text: t})
	}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			text(s[i:])
			break
		}
		text(s[i : i+j])
		i += j
		rest := s[i+1:]
		switch {
		case rest != "" && rest[0] >= '0' && rest[0] <= '9':
			parts = append(parts, part{kind: partCapture, n: int(rest[0] - '0')})
			i += 2
		case strings.HasPrefix(rest, "TAG["):
			end := strings.IndexByte(rest, ']')
			n, err := strconv.Atoi(rest[4:max(end, 4)])
			if end < 0 || err != nil || n < 0 {
				return nil, fmt.Errorf("new tag %q: $TAG[n] needs a number n", s)
			}
			parts = append(parts, part{kind: partTagIndex, n: n})
			i += 1 + end + 1
		case strings.HasPrefix(rest, "TAG") && !isIdent(rest, 3):
			parts = append(parts, part{kind: partTag})
			i += 4
		default:
			end := accessorEnd(rest)
			if end == 0 {
				text("$")
				i++
				continue
			}
			ra, err := recordaccessor.Parse("$" + rest[:end])
			if err != nil || !ra.Found {
				return nil, fmt.Errorf("new tag %q: bad record accessor $%s", s, rest[:end])
			}
			parts = append(parts, part{kind: partKey, ra: ra})
			i += 1 + end
		}
	}
	return parts, nil
}

func isIdent(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// accessorEnd is the length of the record accessor at the start of s (after
// its '$'): a name, then ['key'] or [n] steps.
func accessorEnd(s string) int {
	i := 0
	for isIdent(s, i) {
		i++
	}
	if i == 0 {
		return 0
	}
	for i < len(s) && s[i] == '[' {
		if i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"') {
			q := s[i+1]
			k := strings.IndexByte(s[i+2:], q)
			if k < 0 || i+2+k+1 >= len(s) || s[i+2+k+1] != ']' {
				return i
			}
			i += 2 + k + 2
			continue
		}
		k := strings.IndexByte(s[i:], ']')
		if k < 0 {
			return i
		}
		i += k + 1
	}
	return i
}

// EmitterName is the source of the records this filter re-emits.
func (f *Filter) EmitterName() string { return f.emitter }

// newTag expands a rule's template for one record.
func newTag(r *rule, tag string, body []byte, groups [][]byte) string {
	var b strings.Builder
	for _, p := range r.tag {
		switch p.kind {
		case partText:
			b.WriteString(p.text)
		case partTag:
			b.WriteString(tag)
		case partTagIndex:
			parts := strings.Split(tag, ".")
			if p.n < len(parts) {
				b.WriteString(parts[p.n])
			}
		case partCapture:
			if p.n < len(groups) {
				b.Write(groups[p.n])
			}
		case partKey:
			if v, ok := p.ra.Get(body); ok {
				b.WriteString(valueText(v))
			}
		}
	}
	return b.String()
}

// valueText renders a scalar for a tag, as flb_ra_translate does.
func valueText(v []byte) string {
	if s, ok := recordaccessor.StrOrBin(v); ok {
		return string(s)
	}
	val, _, err := event.Value(v, 0)
	if err != nil {
		return ""
	}
	switch x := val.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// FilterChunk re-emits the records a rule matches under their new tags.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	var kept []byte
	keptN := 0
	emitted := map[string]*chunk.Chunk{}
	var order []string
	matched := false
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		if raw.Kind() != event.KindRecord {
			kept = append(kept, raw.Raw...)
			continue
		}
		var groups [][]byte
		var r *rule
		for i := range f.rules {
			ru := &f.rules[i]
			if ru.key.MatchString(raw.Body, func(s []byte) bool {
				groups = ru.re.FindSubmatch(s)
				return groups != nil
			}) {
				r = ru
				break
			}
		}
		if r == nil {
			kept = append(kept, raw.Raw...)
			keptN++
			continue
		}
		t := newTag(r, c.Tag, raw.Body, groups)
		if t == "" || t == c.Tag {
			// An empty tag cannot be routed, and the same tag would only
			// bring the record back here: it stays where it is, once.
			kept = append(kept, raw.Raw...)
			keptN++
			continue
		}
		matched = true
		ec := emitted[t]
		if ec == nil {
			ec = &chunk.Chunk{Tag: t, Type: c.Type, Source: f.emitter, Emits: c.Emits + 1}
			emitted[t] = ec
			order = append(order, t)
		}
		ec.Data = append(ec.Data, raw.Raw...)
		ec.Records++
		if r.keep {
			kept = append(kept, raw.Raw...)
			keptN++
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !matched {
		return []*chunk.Chunk{c}, nil
	}
	var out []*chunk.Chunk
	if keptN > 0 {
		out = append(out, &chunk.Chunk{Tag: c.Tag, Type: c.Type, Records: keptN, Data: kept, Source: c.Source, Emits: c.Emits})
	}
	for _, t := range order {
		out = append(out, emitted[t])
	}
	return out, nil
}
