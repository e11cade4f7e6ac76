// Package modify is Fluent Bit's modify filter (plugins/filter_modify): it
// changes records with rules, applied when every condition holds.
//
// As in Fluent Bit:
//   - rule and condition names are case-insensitive, their parameters are
//     not: record keys are compared byte for byte (string or binary keys);
//   - conditions are evaluated first, all of them, on the incoming record,
//     wherever they appear among the rules; the rules then run in
//     configuration order, each on the result of the previous one;
//   - parameters are split on spaces with ' or " quoting (\" \' \\ escapes);
//     values written by rules are always strings;
//   - Remove_wildcard, Move_to_start and Move_to_end match keys by prefix
//     ("Mem" matches "Mem.total"; a '*' in the parameter is literal);
//   - regular expressions (Remove_regex, A_key_matches, ...) match string
//     keys and values, and booleans as "true"/"false"; binary values never
//     match;
//   - condition keys of Key_exists, Key_value_* are record accessors
//     ($a['b']) or plain top-level key names;
//   - every rule's parameters are compiled as regular expressions at start,
//     so a rule whose KEY or VALUE is not a valid regex (Set msg ***) is a
//     configuration error, exactly as upstream reports "Unable to create
//     regex(val)";
//   - a rule with three parameters ("Set k v extra") is executed by Fluent
//     Bit as Rename of the first parameter to the last one (its rule type is
//     left at zero, which is RENAME); Floe does the same and logs a warning.
//
// Unmodified records are copied byte for byte; a chunk where nothing changes
// is passed on as is.
package modify

import (
	"bytes"
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

// Spec describes the modify filter.
func Spec() *plugin.Spec {
	k := func(name, desc string) plugin.Key { return plugin.Key{Name: name, Multi: true, Desc: desc} }
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "modify",
		Desc: "modify records by applying rules",
		Keys: []plugin.Key{
			k("set", "KEY VALUE: add a key/value pair; if KEY already exists, this field is overwritten"),
			k("add", "KEY VALUE: add a key/value pair if KEY does not exist"),
			k("remove", "KEY: remove a key/value pair with key KEY if it exists"),
			k("remove_wildcard", "KEY: remove all key/value pairs whose key starts with KEY"),
			k("remove_regex", "REGEX: remove all key/value pairs whose key matches REGEX"),
			k("move_to_start", "KEY: move key/value pairs whose key starts with KEY to the start of the record"),
			k("move_to_end", "KEY: move key/value pairs whose key starts with KEY to the end of the record"),
			k("rename", "KEY RENAMED_KEY: rename KEY if it exists and RENAMED_KEY does not"),
			k("hard_rename", "KEY RENAMED_KEY: rename KEY if it exists; an existing RENAMED_KEY is overwritten"),
			k("copy", "KEY COPIED_KEY: copy KEY to COPIED_KEY if KEY exists and COPIED_KEY does not"),
			k("hard_copy", "KEY COPIED_KEY: copy KEY to COPIED_KEY if KEY exists; an existing COPIED_KEY is overwritten"),
			k("condition", "CONDITION KEY [VALUE]: Key_exists, Key_does_not_exist, A_key_matches, No_key_matches, "+
				"Key_value_equals, Key_value_does_not_equal, Key_value_matches, Key_value_does_not_match, "+
				"Matching_keys_have_matching_values, Matching_keys_do_not_have_matching_values; all must hold"),
		},
		NewFilter: New,
	}
}

type ruleType uint8

// Rule types, in upstream's enum order (RENAME is zero).
const (
	ruleRename ruleType = iota
	ruleHardRename
	ruleAdd
	ruleSet
	ruleRemove
	ruleRemoveWildcard
	ruleRemoveRegex
	ruleCopy
	ruleHardCopy
	ruleMoveToStart
	ruleMoveToEnd
)

var oneParam = map[string]ruleType{
	"remove":          ruleRemove,
	"remove_wildcard": ruleRemoveWildcard,
	"remove_regex":    ruleRemoveRegex,
	"move_to_start":   ruleMoveToStart,
	"move_to_end":     ruleMoveToEnd,
}

var twoParams = map[string]ruleType{
	"rename":      ruleRename,
	"hard_rename": ruleHardRename,
	"add":         ruleAdd,
	"set":         ruleSet,
	"copy":        ruleCopy,
	"hard_copy":   ruleHardCopy,
}

type rule struct {
	typ      ruleType
	key, val string
	keyB     []byte // key as bytes, for comparisons
	valB     []byte
	keyEnc   []byte // key as a MessagePack str
	valEnc   []byte // val as a MessagePack str
	keyRe    *onig.Regex
}

type condType uint8

const (
	condKeyExists condType = iota
	condKeyDoesNotExist
	condAKeyMatches
	condNoKeyMatches
	condKeyValueEquals
	condKeyValueDoesNotEqual
	condKeyValueMatches
	condKeyValueDoesNotMatch
	condMatchingKeysHaveMatchingValues
	condMatchingKeysDoNotHaveMatchingValues
)

var condNames = map[string]condType{
	"key_exists":                                condKeyExists,
	"key_does_not_exist":                        condKeyDoesNotExist,
	"a_key_matches":                             condAKeyMatches,
	"no_key_matches":                            condNoKeyMatches,
	"key_value_equals":                          condKeyValueEquals,
	"key_value_does_not_equal":                  condKeyValueDoesNotEqual,
	"key_value_matches":                         condKeyValueMatches,
	"key_value_does_not_match":                  condKeyValueDoesNotMatch,
	"matching_keys_have_matching_values":        condMatchingKeysHaveMatchingValues,
	"matching_keys_do_not_have_matching_values": condMatchingKeysDoNotHaveMatchingValues,
}

type condition struct {
	typ      condType
	b        []byte // VALUE of Key_value_(does_not_)equal; nil when absent
	ra       *recordaccessor.Accessor
	aRe, bRe *onig.Regex
}

// Filter is a configured modify filter. It is safe for concurrent use.
type Filter struct {
	conds []condition
	rules []rule
}

// New builds a modify filter from its configuration.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{}
	for i := range p.Section.Props {
		prop := &p.Section.Props[i]
		name := strings.ToLower(prop.Key)
		_, one := oneParam[name]
		_, two := twoParams[name]
		if name != "condition" && !one && !two {
			continue // common keys (name, match, alias, ...)
		}
		parts, err := recordaccessor.SplitQuoted(prop.Value, 3)
		if err != nil {
			return nil, propErr(prop, "invalid value %q: %v", prop.Value, err)
		}
		if len(parts) == 0 || len(parts) > 3 {
			return nil, propErr(prop, "invalid value %q: expected at most 3 space-separated parameters (quote values that contain spaces)", prop.Value)
		}
		if name == "condition" {
			c, err := newCondition(parts)
			if err != nil {
				return nil, propErr(prop, "%v", err)
			}
			f.conds = append(f.conds, c)
			continue
		}
		r := rule{key: parts[0], val: parts[len(parts)-1]}
		switch len(parts) {
		case 1:
			t, ok := oneParam[name]
			if !ok {
				return nil, propErr(prop, "invalid operation %s %q: %s takes KEY VALUE", prop.Key, prop.Value, name)
			}
			r.typ = t
		case 2:
			t, ok := twoParams[name]
			if !ok {
				return nil, propErr(prop, "invalid operation %s %q: %s takes a single KEY", prop.Key, prop.Value, name)
			}
			r.typ = t
		case 3:
			// Upstream leaves the rule type at its zero value: RENAME.
			r.typ = ruleRename
			log.Warn("modify: rule with three parameters runs as Rename of the first to the last, as in Fluent Bit; quote values that contain spaces",
				"key", prop.Key, "value", prop.Value, "file", prop.File, "line", prop.Line)
		}
		// setup() compiles KEY and VALUE of every rule as regexes.
		if r.keyRe, err = onig.Compile(r.key); err != nil {
			return nil, propErr(prop, "unable to create regex(key) from %q: %v", r.key, err)
		}
		if _, err = onig.Compile(r.val); err != nil {
			return nil, propErr(prop, "unable to create regex(val) from %q: %v", r.val, err)
		}
		r.keyB, r.valB = []byte(r.key), []byte(r.val)
		r.keyEnc = event.AppendString(nil, r.key)
		r.valEnc = event.AppendString(nil, r.val)
		f.rules = append(f.rules, r)
	}
	return f, nil
}

func newCondition(parts []string) (condition, error) {
	t, ok := condNames[strings.ToLower(parts[0])]
	if !ok {
		return condition{}, fmt.Errorf("unknown condition %q", parts[0])
	}
	if len(parts) < 2 {
		return condition{}, fmt.Errorf("condition %s needs a KEY", parts[0])
	}
	c := condition{typ: t}
	a := parts[1]
	var b *string
	if len(parts) == 3 {
		b = &parts[2]
		c.b = []byte(parts[2])
	}
	aRegex, bRegex := false, false
	switch t {
	case condAKeyMatches, condNoKeyMatches:
		aRegex = true
	case condKeyValueMatches, condKeyValueDoesNotMatch:
		bRegex = true
	case condMatchingKeysHaveMatchingValues, condMatchingKeysDoNotHaveMatchingValues:
		aRegex, bRegex = true, true
	}
	var err error
	if aRegex {
		if a == "" {
			return c, fmt.Errorf("unable to create regex for condition %s: empty KEY", parts[0])
		}
		// Upstream does not check this compilation and crashes on the
		// first record; Floe reports it.
		if c.aRe, err = onig.Compile(a); err != nil {
			return c, fmt.Errorf("unable to create regex from %q: %v", a, err)
		}
	}
	if bRegex {
		if b == nil || *b == "" {
			return c, fmt.Errorf("unable to create regex for condition %s: missing VALUE", parts[0])
		}
		if c.bRe, err = onig.Compile(*b); err != nil {
			return c, fmt.Errorf("unable to create regex from %q: %v", *b, err)
		}
	}
	if !aRegex {
		// Upstream does not check flb_ra_create either, and crashes when the
		// condition is evaluated.
		if c.ra, err = recordaccessor.Parse(a); err != nil {
			return c, err
		}
	}
	return c, nil
}

func propErr(p *config.Prop, format string, args ...any) error {
	return &config.Error{File: p.File, Line: p.Line, Key: p.Key, Msg: fmt.Sprintf(format, args...)}
}

// ---- matching helpers (modify.c's helper_msgpack_object_matches_*) ----

// matchesStr: a string or binary equal to s.
func matchesStr(v, s []byte) bool {
	b, ok := recordaccessor.StrOrBin(v)
	return ok && bytes.Equal(b, s)
}

// matchesPrefix: a string or binary starting with prefix (the "wildcard").
func matchesPrefix(v []byte, prefix string) bool {
	b, ok := recordaccessor.StrOrBin(v)
	return ok && len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

var (
	trueText  = []byte("true")
	falseText = []byte("false")
)

// matchesRegex: a string, or a boolean as "true"/"false"; never a binary.
func matchesRegex(v []byte, re *onig.Regex) bool {
	if s, ok := recordaccessor.Str(v); ok {
		return re.Match(s)
	}
	if b, ok := recordaccessor.Bool(v); ok {
		if b {
			return re.Match(trueText)
		}
		return re.Match(falseText)
	}
	return false
}

func (c *condition) eval(body []byte, pairs []recordaccessor.Pair) bool {
	switch c.typ {
	case condKeyExists:
		_, ok := c.ra.Get(body)
		return ok
	case condKeyDoesNotExist:
		_, ok := c.ra.Get(body)
		return !ok
	case condAKeyMatches, condNoKeyMatches:
		any := false
		for _, p := range pairs {
			if matchesRegex(p.Key, c.aRe) {
				any = true
				break
			}
		}
		return any == (c.typ == condAKeyMatches)
	case condKeyValueEquals, condKeyValueDoesNotEqual:
		v, ok := c.ra.Get(body)
		if !ok {
			return false
		}
		return matchesStr(v, c.b) == (c.typ == condKeyValueEquals)
	case condKeyValueMatches, condKeyValueDoesNotMatch:
		v, ok := c.ra.Get(body)
		if !ok {
			return false
		}
		return matchesRegex(v, c.bRe) == (c.typ == condKeyValueMatches)
	case condMatchingKeysHaveMatchingValues, condMatchingKeysDoNotHaveMatchingValues:
		all := true
		for _, p := range pairs {
			if matchesRegex(p.Key, c.aRe) && !matchesRegex(p.Val, c.bRe) {
				all = false
				break
			}
		}
		return all == (c.typ == condMatchingKeysHaveMatchingValues)
	}
	return false
}

// apply runs one rule on in, writing the result to out (reset first). It
// reports false, leaving out unspecified, when the rule does not apply.
func (r *rule) apply(in []recordaccessor.Pair, out []recordaccessor.Pair) ([]recordaccessor.Pair, bool) {
	out = out[:0]
	key, val := r.keyB, r.valB
	count := func(s []byte) int {
		n := 0
		for _, p := range in {
			if matchesStr(p.Key, s) {
				n++
			}
		}
		return n
	}
	switch r.typ {
	case ruleRename:
		if count(key) == 0 || count(val) > 0 {
			return out, false
		}
		for _, p := range in {
			if matchesStr(p.Key, key) {
				p.Key = r.valEnc
			}
			out = append(out, p)
		}
	case ruleHardRename:
		if count(key) == 0 {
			return out, false
		}
		for _, p := range in {
			if matchesStr(p.Key, val) {
				continue // the old RENAMED_KEY (or, when KEY == RENAMED_KEY, KEY itself)
			}
			if matchesStr(p.Key, key) {
				p.Key = r.valEnc
			}
			out = append(out, p)
		}
	case ruleCopy, ruleHardCopy:
		if count(key) != 1 {
			return out, false
		}
		conflicts := count(val)
		if (r.typ == ruleCopy && conflicts > 0) || conflicts > 1 {
			return out, false
		}
		for _, p := range in {
			if conflicts > 0 && matchesStr(p.Key, val) {
				continue
			}
			out = append(out, p)
			if matchesStr(p.Key, key) {
				out = append(out, recordaccessor.Pair{Key: r.valEnc, Val: p.Val})
			}
		}
	case ruleAdd:
		if count(key) != 0 {
			return out, false
		}
		out = append(append(out, in...), recordaccessor.Pair{Key: r.keyEnc, Val: r.valEnc})
	case ruleSet:
		for _, p := range in {
			if !matchesStr(p.Key, key) {
				out = append(out, p)
			}
		}
		out = append(out, recordaccessor.Pair{Key: r.keyEnc, Val: r.valEnc})
	case ruleRemove, ruleRemoveWildcard, ruleRemoveRegex:
		for _, p := range in {
			if !r.keyMatches(p.Key) {
				out = append(out, p)
			}
		}
		if len(out) == len(in) {
			return out, false
		}
	case ruleMoveToStart, ruleMoveToEnd:
		first := r.typ == ruleMoveToStart
		for pass := 0; pass < 2; pass++ {
			for _, p := range in {
				if matchesPrefix(p.Key, r.key) == first {
					out = append(out, p)
				}
			}
			first = !first
		}
		moved := false
		for _, p := range in {
			if matchesPrefix(p.Key, r.key) {
				moved = true
				break
			}
		}
		if !moved {
			return out, false
		}
	default:
		return out, false
	}
	return out, true
}

func (r *rule) keyMatches(k []byte) bool {
	switch r.typ {
	case ruleRemoveWildcard:
		return matchesPrefix(k, r.key)
	case ruleRemoveRegex:
		return matchesRegex(k, r.keyRe)
	}
	return matchesStr(k, r.keyB)
}

// scratch holds the buffers one FilterChunk call reuses across records.
type scratch struct {
	a, b []recordaccessor.Pair
}

// modifyBody applies the filter to one record body and returns the pairs of
// the new body, or ok == false when the record is left as is.
func (f *Filter) modifyBody(body []byte, s *scratch) ([]recordaccessor.Pair, bool, error) {
	var err error
	s.a, err = recordaccessor.AppendPairs(s.a[:0], body)
	if err != nil {
		return nil, false, err
	}
	for i := range f.conds {
		if !f.conds[i].eval(body, s.a) {
			return nil, false, nil
		}
	}
	modified := false
	for i := range f.rules {
		out, ok := f.rules[i].apply(s.a, s.b)
		s.b = out
		if ok {
			s.a, s.b = s.b, s.a
			modified = true
		}
	}
	return s.a, modified, nil
}

// FilterChunk applies the rules to every record whose conditions hold.
// Group markers and unmodified records are copied unchanged.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	if len(f.rules) == 0 {
		return []*chunk.Chunk{c}, nil
	}
	var (
		s       scratch
		out     []byte
		copied  int
		records int
		changed bool
	)
	it := event.NewIter(c.Data)
	for it.Next() {
		ev := it.Event()
		if ev.Kind() != event.KindRecord {
			continue
		}
		records++
		pairs, ok, err := f.modifyBody(ev.Body, &s)
		if err != nil {
			return nil, fmt.Errorf("record at byte offset %d: %w", ev.Offset, err)
		}
		if !ok {
			continue
		}
		if !changed {
			out = make([]byte, 0, len(c.Data)+len(c.Data)/8)
			changed = true
		}
		out = append(out, c.Data[copied:ev.Offset]...)
		out = event.AppendRaw(out, ev.Time, ev.Meta, nil)
		out = recordaccessor.AppendMap(out, pairs)
		copied = ev.Offset + len(ev.Raw)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !changed {
		return []*chunk.Chunk{c}, nil
	}
	out = append(out, c.Data[copied:]...)
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: records, Data: out}}, nil
}
