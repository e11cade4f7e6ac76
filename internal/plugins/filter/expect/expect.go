// Package expect is Fluent Bit's expect filter (plugins/filter_expect): it
// checks that records have the keys and values a pipeline expects.
//
// Every rule is checked on every record; keys are record accessors
// ($kubernetes['pod_name']) or plain top-level key names, as upstream:
//
//	key_exists KEY        the key exists
//	key_not_exists KEY    the key does not exist
//	key_val_is_null KEY   the key exists and its value is null
//	key_val_is_not_null   the key exists and its value is not null
//	key_val_eq KEY VALUE  the value, as text (numbers in decimal, booleans
//	                      true/false), equals VALUE
//
// When a rule fails, action says what happens: warn (the default) logs it
// and passes the record on; exit logs it and ends the process with status
// 255, as Fluent Bit does (meant for tests and CI pipelines); result_key
// adds result_key (default "matched") to every record: true when every rule
// holds, else false.
package expect

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Spec describes the expect filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "expect",
		Desc: "validate expected keys and values",
		Keys: []plugin.Key{
			{Name: "key_exists", Multi: true, Desc: "check that the key exists in the record"},
			{Name: "key_not_exists", Multi: true, Desc: "check that the key does not exist in the record"},
			{Name: "key_val_is_null", Multi: true, Desc: "check that the value of the key is null"},
			{Name: "key_val_is_not_null", Multi: true, Desc: "check that the value of the key is not null"},
			{Name: "key_val_eq", Multi: true, Desc: "KEY VALUE: check that the value of the key equals VALUE"},
			{Name: "action", Default: "warn", Enum: []string{"warn", "exit", "result_key"}, Desc: "what to do when a rule fails"},
			{Name: "result_key", Default: "matched", Desc: "key of the result with action result_key"},
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := New(ctx, set, p)
			return err
		},
	}
}

type ruleKind uint8

const (
	keyExists ruleKind = iota
	keyNotExists
	keyValIsNull
	keyValIsNotNull
	keyValEq
)

var kinds = map[string]ruleKind{
	"key_exists": keyExists, "key_not_exists": keyNotExists,
	"key_val_is_null": keyValIsNull, "key_val_is_not_null": keyValIsNotNull, "key_val_eq": keyValEq,
}

type rule struct {
	kind ruleKind
	prop string // "key_exists $a", for messages
	ra   *recordaccessor.Accessor
	val  string
}

// Filter is one expect instance.
type Filter struct {
	rules     []rule
	action    string
	resultKey string
	log       *slog.Logger
	name      string
	exit      func(code int)
}

// New builds the rules.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	f := &Filter{action: strings.ToLower(p.String("action")), resultKey: p.String("result_key"),
		log: set.Logger, name: set.DisplayName(), exit: os.Exit}
	if f.log == nil {
		f.log = slog.Default()
	}
	var errs config.ErrorList
	for _, pr := range p.Section.Props {
		k, ok := kinds[strings.ToLower(pr.Key)]
		if !ok {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, &config.Error{File: pr.File, Line: pr.Line, Key: pr.Key, Msg: fmt.Sprintf(format, args...)})
		}
		key, val := strings.TrimSpace(pr.Value), ""
		if k == keyValEq {
			parts := recordaccessor.Split(pr.Value, 2)
			if len(parts) != 2 {
				bad("want KEY VALUE, got %q", pr.Value)
				continue
			}
			key, val = parts[0], parts[1]
		}
		if key == "" {
			bad("a key is required")
			continue
		}
		if !strings.HasPrefix(key, "$") {
			key = "$" + key
		}
		ra, err := recordaccessor.Parse(key)
		if err != nil || !ra.Found {
			bad("bad record accessor %q", key)
			continue
		}
		f.rules = append(f.rules, rule{kind: k, prop: strings.ToLower(pr.Key) + " " + pr.Value, ra: ra, val: val})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if len(f.rules) == 0 {
		return nil, p.Errorf("name", "expect needs at least one rule (key_exists, key_not_exists, key_val_is_null, key_val_is_not_null, key_val_eq)")
	}
	return f, nil
}

// failed returns the first rule body does not satisfy, or nil.
func (f *Filter) failed(body []byte) *rule {
	for i := range f.rules {
		r := &f.rules[i]
		v, found := r.ra.Get(body)
		ok := false
		switch r.kind {
		case keyExists:
			ok = found
		case keyNotExists:
			ok = !found
		case keyValIsNull:
			ok = found && len(v) == 1 && v[0] == 0xc0
		case keyValIsNotNull:
			ok = found && !(len(v) == 1 && v[0] == 0xc0)
		case keyValEq:
			ok = found && text(v) == r.val
		}
		if !ok {
			return r
		}
	}
	return nil
}

func text(v []byte) string {
	if s, ok := recordaccessor.StrOrBin(v); ok {
		return string(s)
	}
	x, _, err := event.Value(v, 0)
	if err != nil {
		return ""
	}
	switch x := x.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return "\x00" // containers and null equal no configured value
}

// FilterChunk checks every record.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	if f.action == "result_key" {
		return plugin.EditRecords(c, func(ev *event.Event) bool {
			body := ev.Body.AppendMsgpack(nil)
			ev.Body = append(ev.Body, event.KV{Key: f.resultKey, Value: f.failed(body) == nil})
			return true
		})
	}
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		if raw.Kind() != event.KindRecord {
			continue
		}
		if r := f.failed(raw.Body); r != nil {
			if f.action == "exit" {
				f.log.Error("expect: rule failed, exiting with status 255 (action exit)", "filter", f.name, "tag", c.Tag, "rule", r.prop)
				f.exit(255)
				return nil, fmt.Errorf("expect %s: rule %q failed", f.name, r.prop)
			}
			f.log.Warn("expect: rule failed", "filter", f.name, "tag", c.Tag, "rule", r.prop)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	return []*chunk.Chunk{c}, nil
}
