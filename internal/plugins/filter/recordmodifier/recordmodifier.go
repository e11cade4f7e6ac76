// Package recordmodifier is Fluent Bit's record_modifier filter
// (plugins/filter_record_modifier): it removes keys (Remove_key), keeps only
// some keys (Allowlist_key, alias Whitelist_key), appends fixed key/value
// pairs (Record) and a random UUID (UUID_key).
//
// As in Fluent Bit:
//   - key names match case-insensitively (ASCII), string or binary keys
//     only; a name ending in '*' matches every key starting with the rest;
//   - Remove_key and Allowlist_key cannot be used together;
//   - Record is "KEY VALUE", split on spaces with "..." quoting (\" is a
//     quote); the value is always a string; a Record that is not exactly
//     two words is reported and ignored; records are appended in
//     configuration order after the kept keys, even when KEY already
//     exists (the record then holds the key twice);
//   - UUID_key appends a random version 4 UUID string, last;
//   - a record left with no keys at all is dropped — and when that happens
//     to every record of a chunk, Fluent Bit's filter has produced nothing
//     and the chunk goes on unchanged. Floe reproduces both.
package recordmodifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Spec describes the record_modifier filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "record_modifier",
		Desc: "modify record",
		Keys: []plugin.Key{
			{Name: "record", Multi: true, Desc: "KEY VALUE: append fields"},
			{Name: "remove_key", Multi: true, Desc: "if the key is matched, that field is removed (a trailing * matches by prefix)"},
			{Name: "allowlist_key", Multi: true, Desc: "if the key is not matched, that field is removed (a trailing * matches by prefix)"},
			{Name: "whitelist_key", Multi: true, Desc: "alias of allowlist_key"},
			{Name: "uuid_key", Desc: "if set, a random UUID is appended per record under this key"},
		},
		NewFilter: New,
	}
}

type keyPattern struct {
	name   []byte
	prefix bool // name had a trailing '*'
}

// Filter is a configured record_modifier filter. It is safe for concurrent use.
type Filter struct {
	keys      []keyPattern
	allowlist bool   // keys are the allowlist (else the remove list)
	records   []byte // encoded key/value pairs to append
	nRecords  int
	uuidKey   []byte // encoded key, nil when unset
}

// New builds a record_modifier filter from its configuration.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{}
	var remove, allow []keyPattern
	var firstRemove, firstAllow *config.Prop
	for i := range p.Section.Props {
		prop := &p.Section.Props[i]
		switch strings.ToLower(prop.Key) {
		case "record":
			parts := recordaccessor.SplitTokens(prop.Value, 2)
			if len(parts) != 2 {
				// configure() logs this and carries on without the record.
				log.Error("record_modifier: invalid record parameters, expects 'KEY VALUE'; ignored as Fluent Bit does",
					"value", prop.Value, "file", prop.File, "line", prop.Line)
				continue
			}
			f.records = event.AppendString(f.records, parts[0])
			f.records = event.AppendString(f.records, parts[1])
			f.nRecords++
		case "remove_key":
			remove = append(remove, pattern(prop.Value))
			if firstRemove == nil {
				firstRemove = prop
			}
		case "allowlist_key", "whitelist_key":
			allow = append(allow, pattern(prop.Value))
			if firstAllow == nil {
				firstAllow = prop
			}
		}
	}
	if len(remove) > 0 && len(allow) > 0 {
		return nil, &config.Error{File: firstAllow.File, Line: firstAllow.Line, Key: firstAllow.Key,
			Msg: fmt.Sprintf("remove_key and %s are exclusive with each other (remove_key at %s:%d)",
				strings.ToLower(firstAllow.Key), firstRemove.File, firstRemove.Line)}
	}
	f.keys, f.allowlist = remove, false
	if len(allow) > 0 {
		f.keys, f.allowlist = allow, true
	}
	// uuid_key is a single-valued config_map entry: the last one set wins,
	// and an empty name is still a key.
	if all := p.All("uuid_key"); len(all) > 0 {
		f.uuidKey = event.AppendString(nil, all[len(all)-1])
	}
	return f, nil
}

func pattern(v string) keyPattern {
	if strings.HasSuffix(v, "*") {
		return keyPattern{name: []byte(v[:len(v)-1]), prefix: true}
	}
	return keyPattern{name: []byte(v)}
}

// matches mirrors make_bool_map: strncasecmp over the pattern's length, the
// key's length equal to it (or at least it, for a '*' pattern).
func (k *keyPattern) matches(key []byte) bool {
	if len(key) < len(k.name) || (!k.prefix && len(key) != len(k.name)) {
		return false
	}
	for i, c := range k.name {
		d := key[i]
		if d == 0 {
			return false // strncasecmp stops at NUL; a pattern holds none
		}
		if lower(c) != lower(d) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// keep reports whether a pair survives Remove_key / Allowlist_key.
func (f *Filter) keep(key []byte) bool {
	if len(f.keys) == 0 {
		return true
	}
	name, ok := recordaccessor.StrOrBin(key)
	matched := false
	if ok {
		for i := range f.keys {
			if f.keys[i].matches(name) {
				matched = true
				break
			}
		}
	}
	return matched == f.allowlist
}

// appendUUID appends a random version 4 UUID as a MessagePack string, in the
// form flb_utils_uuid_v4_gen prints (lowercase 8-4-4-4-12 hex).
func appendUUID(b []byte) []byte {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	b = append(b, 0xd9, 36) // str 8 (a fixstr holds at most 31 bytes)
	return append(b, s[:]...)
}

// FilterChunk rewrites the records. Group markers and untouched records are
// copied unchanged.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	if len(f.keys) == 0 && f.nRecords == 0 && f.uuidKey == nil {
		return []*chunk.Chunk{c}, nil
	}
	var (
		pairs   []recordaccessor.Pair
		out     []byte
		copied  int
		emitted int
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
		n := len(pairs)
		kept := pairs[:0]
		for _, p := range pairs {
			if f.keep(p.Key) {
				kept = append(kept, p)
			}
		}
		if len(kept) == n && f.nRecords == 0 && f.uuidKey == nil {
			emitted++
			continue // unchanged
		}
		if !changed {
			out = make([]byte, 0, len(c.Data)+len(c.Data)/4)
			changed = true
		}
		out = append(out, c.Data[copied:ev.Offset]...)
		copied = ev.Offset + len(ev.Raw)
		total := len(kept) + f.nRecords
		if f.uuidKey != nil {
			total++
		}
		if total == 0 {
			continue // nothing left: upstream emits no record
		}
		emitted++
		out = event.AppendRaw(out, ev.Time, ev.Meta, nil)
		out = event.AppendMapHeader(out, total)
		for _, p := range kept {
			out = append(out, p.Key...)
			out = append(out, p.Val...)
		}
		out = append(out, f.records...)
		if f.uuidKey != nil {
			out = append(out, f.uuidKey...)
			out = appendUUID(out)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if !changed || emitted == 0 {
		// Upstream returns FLB_FILTER_NOTOUCH when its output is empty.
		return []*chunk.Chunk{c}, nil
	}
	out = append(out, c.Data[copied:]...)
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: emitted, Data: out}}, nil
}
