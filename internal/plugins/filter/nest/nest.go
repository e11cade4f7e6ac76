// Package nest is Fluent Bit's nest filter (plugins/filter_nest): it moves
// top-level keys into a map (nest) or a map's keys up to the top level (lift).
//
// As in Fluent Bit:
//   - a Wildcard ending in '*' matches keys by prefix ("Mem.*" matches
//     "Mem.total"), any other Wildcard matches one key exactly; keys are
//     compared byte for byte;
//   - nest keeps the unmatched keys in order and appends Nest_under with the
//     matched ones, in record order; an existing key of that name is kept,
//     so the record then holds it twice, as upstream writes it;
//   - lift replaces every top-level Nested_under key whose value is a map by
//     that map's pairs, appended after the other keys; a Nested_under key
//     whose value is not a map stays as it is;
//   - Add_prefix / Remove_prefix rewrite the keys nested (nest) or lifted
//     (lift), never the others; Remove_prefix leaves keys without the prefix
//     unchanged; the two are exclusive;
//   - Nest_under and Nested_under name the same setting: either works for
//     either operation;
//   - a record with nothing to nest or lift is copied byte for byte, and a
//     chunk where nothing changes is passed on as is.
package nest

import (
	"context"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// Spec describes the nest filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "nest",
		Desc: "nest events by specified field values",
		Keys: []plugin.Key{
			{Name: "operation", Enum: []string{"nest", "lift"}, Desc: "select the operation nest or lift"},
			{Name: "wildcard", Multi: true, Desc: "nest records which field matches the wildcard (prefix match when it ends with *)"},
			{Name: "nest_under", Desc: "nest records matching the Wildcard under this key"},
			{Name: "nested_under", Desc: "lift records nested under the Nested_under key"},
			{Name: "add_prefix", Desc: "prefix affected keys with this string"},
			{Name: "prefix_with", Desc: "old name of add_prefix"},
			{Name: "remove_prefix", Desc: "remove prefix from affected keys if it matches this string"},
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := New(ctx, set, p)
			return err
		},
	}
}

type wildcard struct {
	key    string
	prefix bool
}

// Filter is one nest instance.
type Filter struct {
	lift      bool
	key       string
	wildcards []wildcard
	addPrefix bool
	rmPrefix  bool
	prefix    string
}

// New builds the filter from its section.
func New(_ context.Context, _ plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	f := &Filter{}
	switch strings.ToLower(p.String("operation")) {
	case "nest":
	case "lift":
		f.lift = true
	case "":
		return nil, p.Errorf("operation", "operation is required: nest or lift")
	default:
		return nil, p.Errorf("operation", "operation must be nest or lift, not %q", p.String("operation"))
	}
	// Upstream takes the last of Nest_under / Nested_under in section order.
	keyName := ""
	for _, pr := range p.Section.Props {
		switch strings.ToLower(pr.Key) {
		case "nest_under", "nested_under":
			f.key, keyName = pr.Value, strings.ToLower(pr.Key)
		case "add_prefix", "prefix_with":
			f.addPrefix, f.prefix = true, pr.Value
		case "remove_prefix":
			f.rmPrefix, f.prefix = true, pr.Value
		}
	}
	if keyName == "" {
		if f.lift {
			return nil, p.Errorf("operation", "operation lift needs nested_under")
		}
		return nil, p.Errorf("operation", "operation nest needs nest_under")
	}
	if f.addPrefix && f.rmPrefix {
		return nil, p.Errorf("remove_prefix", "add_prefix and remove_prefix are exclusive")
	}
	if (f.addPrefix || f.rmPrefix) && f.prefix == "" {
		key := "add_prefix"
		if f.rmPrefix {
			key = "remove_prefix"
		}
		return nil, p.Errorf(key, "a prefix has to be specified")
	}
	for _, w := range p.All("wildcard") {
		if w == "" {
			return nil, p.Errorf("wildcard", "empty wildcard")
		}
		if strings.HasSuffix(w, "*") {
			f.wildcards = append(f.wildcards, wildcard{key: w[:len(w)-1], prefix: true})
		} else {
			f.wildcards = append(f.wildcards, wildcard{key: w})
		}
	}
	if !f.lift && len(f.wildcards) == 0 {
		return nil, p.Errorf("operation", "operation nest needs at least one wildcard")
	}
	return f, nil
}

func (f *Filter) toNest(key string) bool {
	for _, w := range f.wildcards {
		if w.prefix && strings.HasPrefix(key, w.key) || !w.prefix && key == w.key {
			return true
		}
	}
	return false
}

func (f *Filter) rename(key string) string {
	switch {
	case f.addPrefix:
		return f.prefix + key
	case f.rmPrefix:
		return strings.TrimPrefix(key, f.prefix)
	}
	return key
}

// apply reshapes one body; it reports false when there is nothing to do.
func (f *Filter) apply(body event.Map) (event.Map, bool) {
	if f.lift {
		n := 0
		for _, kv := range body {
			if _, ok := kv.Value.(event.Map); ok && kv.Key == f.key {
				n++
			}
		}
		if n == 0 {
			return nil, false
		}
		out := make(event.Map, 0, len(body))
		var lifted event.Map
		for _, kv := range body {
			if m, ok := kv.Value.(event.Map); ok && kv.Key == f.key {
				for _, c := range m {
					lifted = append(lifted, event.KV{Key: f.rename(c.Key), Value: c.Value})
				}
				continue
			}
			out = append(out, kv)
		}
		return append(out, lifted...), true
	}
	var nested event.Map
	out := make(event.Map, 0, len(body))
	for _, kv := range body {
		if f.toNest(kv.Key) {
			nested = append(nested, event.KV{Key: f.rename(kv.Key), Value: kv.Value})
			continue
		}
		out = append(out, kv)
	}
	if len(nested) == 0 {
		return nil, false
	}
	return append(out, event.KV{Key: f.key, Value: nested}), true
}

// FilterChunk reshapes every record of c.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	return plugin.EditRecords(c, func(ev *event.Event) bool {
		body, ok := f.apply(ev.Body)
		if ok {
			ev.Body = body
		}
		return ok
	})
}
