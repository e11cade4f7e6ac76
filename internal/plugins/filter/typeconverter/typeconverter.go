// Package typeconverter is Fluent Bit's type_converter filter
// (plugins/filter_type_converter with src/flb_typecast.c): it converts a
// key's value to another type and appends it under a new key.
//
// Each rule is "<src_key> <dst_key> <type>" under the key that names the
// source's type: int_key, uint_key, float_key, str_key or bool_key. The
// source is a record accessor (or a plain key name) and must hold a value
// of that type, else the rule does nothing for the record. Conversions, as
// flb_typecast does:
//
//	int, uint   → string (decimal), float, uint/int (two's complement cast)
//	float       → string ("%.1f" when integral, else "%.16g"), int, uint (truncated)
//	string      → int, uint (decimal prefix, as strtoimax; no digits fails),
//	              hex (base 16, "0x" allowed; a zero result fails), float
//	              (longest numeric prefix, as atof: "abc" gives 0), bool
//	              ("true"/"false" prefix, any case)
//	bool        → string
//
// The new pair is appended to the record, after the others (an existing
// key of that name is kept, as upstream writes it).
package typeconverter

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Spec describes the type_converter filter.
func Spec() *plugin.Spec {
	k := func(name, desc string) plugin.Key {
		return plugin.Key{Name: name, Multi: true, Desc: "SRC_KEY DST_KEY TYPE: " + desc}
	}
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "type_converter",
		Desc: "data type converter",
		Keys: []plugin.Key{
			k("int_key", "convert an integer source to uint, float or string"),
			k("uint_key", "convert an unsigned integer source to int, float or string"),
			k("float_key", "convert a float source to int, uint or string"),
			k("str_key", "convert a string source to int, uint, hex, float or bool"),
			k("bool_key", "convert a boolean source to string"),
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := New(ctx, set, p)
			return err
		},
	}
}

type typ uint8

const (
	tInt typ = iota
	tUint
	tFloat
	tHex
	tString
	tBool
)

var typeNames = map[string]typ{"int": tInt, "uint": tUint, "float": tFloat, "hex": tHex, "string": tString, "bool": tBool}

var sources = map[string]typ{"int_key": tInt, "uint_key": tUint, "float_key": tFloat, "str_key": tString, "bool_key": tBool}

// supported lists the conversions flb_typecast implements.
var supported = map[typ][]typ{
	tInt:    {tString, tFloat, tUint},
	tUint:   {tString, tFloat, tInt},
	tFloat:  {tString, tInt, tUint},
	tString: {tInt, tUint, tHex, tFloat, tBool},
	tBool:   {tString},
}

type rule struct {
	from, to typ
	src      *recordaccessor.Accessor
	dst      string
}

// Filter is one type_converter instance.
type Filter struct{ rules []rule }

// New parses the rules.
func New(_ context.Context, _ plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	f := &Filter{}
	var errs config.ErrorList
	for _, pr := range p.Section.Props {
		from, ok := sources[strings.ToLower(pr.Key)]
		if !ok {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, &config.Error{File: pr.File, Line: pr.Line, Key: pr.Key, Msg: fmt.Sprintf(format, args...)})
		}
		fs := strings.Fields(pr.Value)
		if len(fs) != 3 {
			bad("want SRC_KEY DST_KEY TYPE, got %q", pr.Value)
			continue
		}
		to, ok := typeNames[strings.ToLower(fs[2])]
		if !ok {
			bad("unknown type %q (int, uint, float, hex, string, bool)", fs[2])
			continue
		}
		if !contains(supported[from], to) {
			bad("%s cannot convert to %s", strings.ToLower(pr.Key), fs[2])
			continue
		}
		src, err := recordaccessor.Parse(fs[0])
		if err != nil || !src.Found {
			bad("bad source key %q", fs[0])
			continue
		}
		f.rules = append(f.rules, rule{from: from, to: to, src: src, dst: fs[1]})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if len(f.rules) == 0 {
		return nil, p.Errorf("name", "type_converter needs at least one int_key, uint_key, float_key, str_key or bool_key")
	}
	return f, nil
}

func contains(list []typ, t typ) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

// convert applies r to the encoded value v.
func convert(r *rule, v []byte) (any, bool) {
	x, _, err := event.Value(v, 0)
	if err != nil {
		return nil, false
	}
	switch r.from {
	case tInt, tUint:
		var i int64
		var u uint64
		switch n := x.(type) {
		case int64:
			i, u = n, uint64(n)
		case uint64:
			i, u = int64(n), n
		default:
			return nil, false
		}
		switch r.to {
		case tString:
			if r.from == tInt {
				return strconv.FormatInt(i, 10), true
			}
			return strconv.FormatUint(u, 10), true
		case tFloat:
			if r.from == tInt {
				return float64(i), true
			}
			return float64(u), true
		case tUint:
			return u, true
		case tInt:
			return i, true
		}
	case tFloat:
		var d float64
		switch n := x.(type) {
		case float64:
			d = n
		case float32:
			d = float64(n)
		default:
			return nil, false
		}
		switch r.to {
		case tString:
			if d == math.Trunc(d) && math.Abs(d) < 1<<63 {
				return strconv.FormatFloat(d, 'f', 1, 64), true
			}
			return strconv.FormatFloat(d, 'g', 16, 64), true
		case tInt:
			return int64(d), true
		case tUint:
			return uint64(d), true
		}
	case tString:
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		switch r.to {
		case tInt:
			return strtoi(s)
		case tUint:
			v, ok := strtoi(s)
			if !ok {
				return nil, false
			}
			return uint64(v.(int64)), true
		case tHex:
			t := strings.TrimLeft(s, " \t\n\r\f\v")
			t = strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
			end := 0
			for end < len(t) && strings.IndexByte("0123456789abcdefABCDEF", t[end]) >= 0 {
				end++
			}
			u, err := strconv.ParseUint(t[:end], 16, 64)
			if err != nil && end > 0 {
				u = math.MaxUint64 // strtoumax saturates
			}
			if u == 0 {
				return nil, false
			}
			return u, true
		case tFloat:
			m := floatPrefix.FindString(s)
			d, err := strconv.ParseFloat(strings.TrimSpace(m), 64)
			if err != nil {
				d = 0
			}
			return d, true
		case tBool:
			ls := strings.ToLower(s)
			switch {
			case strings.HasPrefix(ls, "true"):
				return true, true
			case strings.HasPrefix(ls, "false"):
				return false, true
			}
			return nil, false
		}
	case tBool:
		b, ok := x.(bool)
		if !ok {
			return nil, false
		}
		return strconv.FormatBool(b), true
	}
	return nil, false
}

var floatPrefix = regexp.MustCompile(`^\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)`)

// strtoi reads a decimal integer prefix as strtoimax does (saturating).
func strtoi(s string) (any, bool) {
	t := strings.TrimLeft(s, " \t\n\r\f\v")
	end := 0
	if end < len(t) && (t[end] == '+' || t[end] == '-') {
		end++
	}
	digits := end
	for end < len(t) && t[end] >= '0' && t[end] <= '9' {
		end++
	}
	if end == digits {
		return nil, false
	}
	v, err := strconv.ParseInt(t[:end], 10, 64)
	if err != nil {
		if t[0] == '-' {
			v = math.MinInt64
		} else {
			v = math.MaxInt64
		}
	}
	return v, true
}

// FilterChunk appends the converted values.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	return plugin.EditRecords(c, func(ev *event.Event) bool {
		body := ev.Body.AppendMsgpack(nil)
		changed := false
		for i := range f.rules {
			r := &f.rules[i]
			v, ok := r.src.Get(body)
			if !ok {
				continue
			}
			if out, ok := convert(r, v); ok {
				ev.Body = append(ev.Body, event.KV{Key: r.dst, Value: out})
				changed = true
			}
		}
		return changed
	})
}
