// Package parser is Fluent Bit's parser engine (src/flb_parser*.c): the
// [PARSER] definitions of a parsers file or of the YAML "parsers" list, each
// turning one line of text into a record with the json, regex, ltsv or
// logfmt format, an optional time taken from one of its fields
// (Time_Key/Time_Format, with Fluent Bit's strptime and its %L fractional
// seconds), type casts (Types) and field decoders (Decode_Field,
// Decode_Field_As).
//
// A Parser is immutable once built and safe for concurrent use. A Registry
// holds the parsers of a configuration by name; it implements
// plugin.Parsers.
package parser

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Format is a parser's Format.
type Format int

const (
	FormatJSON Format = iota + 1
	FormatRegex
	FormatLTSV
	FormatLogfmt
)

func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatRegex:
		return "regex"
	case FormatLTSV:
		return "ltsv"
	case FormatLogfmt:
		return "logfmt"
	}
	return "unknown"
}

type typeKind int

const (
	typeString typeKind = iota
	typeInt
	typeFloat
	typeBool
	typeHex
)

type typeRule struct {
	key  string
	kind typeKind
}

// Parser is one [PARSER] definition. It implements plugin.Parser.
type Parser struct {
	name       string
	format     Format
	file       string // where Name is set
	line       int
	re         *regex
	skipEmpty  bool
	timeKey    string
	time       *timeFormat // nil without Time_Format
	timeKeep   bool
	noBareKeys bool
	types      []typeRule
	decoders   []*decoder
	warnings   []*config.Error
}

// Name is the parser's name.
func (p *Parser) Name() string { return p.name }

// Format is the parser's format.
func (p *Parser) Format() Format { return p.format }

// Warnings are the things of the definition Fluent Bit accepts but that are
// probably mistakes (unknown keys, unknown types, a Time_Format conversion
// strptime does not know...).
func (p *Parser) Warnings() []*config.Error { return p.warnings }

// knownKeys are the keys of a [PARSER] section.
var knownKeys = map[string]bool{
	"name": true, "format": true, "regex": true, "time_key": true, "time_format": true,
	"time_offset": true, "time_keep": true, "time_strict": true, "time_system_timezone": true,
	"types": true, "decode_field": true, "decode_field_as": true, "skip_empty_values": true,
	"logfmt_no_bare_keys": true,
}

// New builds a parser from a [PARSER] section. Errors are *config.Error
// naming the file, line and key at fault.
func New(s *config.Section) (*Parser, error) {
	errf := func(key, format string, args ...any) error {
		file, line := s.Pos(key)
		return &config.Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	p := &Parser{skipEmpty: true, timeKey: "time"}
	warnf := func(key, format string, args ...any) {
		file, line := s.Pos(key)
		p.warnings = append(p.warnings, &config.Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	name, ok := s.Get("name")
	if !ok {
		return nil, &config.Error{File: s.File, Line: s.Line, Msg: "parser section has no 'name'"}
	}
	p.name = name
	p.file, p.line = s.Pos("name")

	format, ok := s.Get("format")
	if !ok {
		return nil, errf("format", "parser %q has no 'format' (json, regex, ltsv or logfmt)", name)
	}
	switch strings.ToLower(format) {
	case "json":
		p.format = FormatJSON
	case "regex":
		p.format = FormatRegex
	case "ltsv":
		p.format = FormatLTSV
	case "logfmt":
		p.format = FormatLogfmt
	default:
		return nil, errf("format", "parser %q: invalid format %q (expected json, regex, ltsv or logfmt)", name, format)
	}

	if re, ok := s.Get("regex"); ok {
		if p.format == FormatRegex {
			var err error
			if p.re, err = compileRegex(re); err != nil {
				return nil, errf("regex", "parser %q: invalid regex: %v", name, err)
			}
			if len(p.re.groups) == 0 {
				warnf("regex", "parser %q: the regex has no named group (?<name>...): it never produces a record", name)
			}
		} else {
			warnf("regex", "parser %q: regex is only used by the regex format", name)
		}
	} else if p.format == FormatRegex {
		return nil, errf("format", "parser %q: format regex needs a 'regex'", name)
	}

	boolKey := func(key string, dst *bool) error {
		v, ok := s.Get(key)
		if !ok {
			return nil
		}
		b, err := config.ParseBool(v)
		if err != nil {
			return errf(key, "%v", err)
		}
		*dst = b
		return nil
	}
	timeStrict, systemTZ := true, false
	for _, b := range []struct {
		key string
		dst *bool
	}{
		{"skip_empty_values", &p.skipEmpty},
		{"time_keep", &p.timeKeep},
		{"time_strict", &timeStrict},
		{"time_system_timezone", &systemTZ},
		{"logfmt_no_bare_keys", &p.noBareKeys},
	} {
		if err := boolKey(b.key, b.dst); err != nil {
			return nil, err
		}
	}
	if v, ok := s.Get("time_key"); ok {
		p.timeKey = v
	}
	if f, ok := s.Get("time_format"); ok {
		p.time = newTimeFormat(f)
		p.time.strict = timeStrict
		p.time.systemTZ = systemTZ
		if bad := checkFormat(f); len(bad) > 0 {
			warnf("time_format", "parser %q: %s not supported by strptime: the time never matches", name, strings.Join(bad, ", "))
		}
		if off, ok := s.Get("time_offset"); ok {
			if systemTZ {
				warnf("time_offset", "parser %q: time_offset is ignored when time_system_timezone is on", name)
			} else {
				d, err := ParseOffset(off)
				if err != nil {
					return nil, errf("time_offset", "parser %q: %v", name, err)
				}
				p.time.offset = d
			}
		}
	} else {
		for _, k := range []string{"time_offset", "time_strict", "time_system_timezone"} {
			if _, ok := s.Get(k); ok {
				warnf(k, "parser %q: %s has no effect without time_format", name, k)
			}
		}
	}

	if v, ok := s.Get("types"); ok {
		if p.format == FormatJSON {
			warnf("types", "parser %q: types is not applied by the json format", name)
		}
		for _, entry := range recordaccessor.Split(v, 256) {
			key, typ, ok := strings.Cut(entry, ":")
			if !ok {
				warnf("types", "parser %q: types entry %q is not KEY:TYPE; ignored", name, entry)
				continue
			}
			r := typeRule{key: key}
			switch strings.ToLower(typ) {
			case "integer":
				r.kind = typeInt
			case "bool":
				r.kind = typeBool
			case "float":
				r.kind = typeFloat
			case "hex":
				r.kind = typeHex
			case "string":
			default:
				warnf("types", "parser %q: unknown type %q for %q (integer, bool, float, hex, string): kept as a string", name, typ, key)
			}
			p.types = append(p.types, r)
		}
	}

	var err error
	if p.decoders, err = newDecoders(s, name, warnf); err != nil {
		return nil, err
	}
	for _, prop := range s.Props {
		if !knownKeys[strings.ToLower(prop.Key)] {
			p.warnings = append(p.warnings, &config.Error{File: prop.File, Line: prop.Line, Key: prop.Key,
				Msg: fmt.Sprintf("parser %q: unknown key; ignored", name)})
		}
	}
	return p, nil
}

// ParseOffset parses a Time_Offset as flb_parser_tzone_offset does: "Z"
// (UTC), or a sign and hours and minutes, "+hhmm" or "+hh:mm". It returns
// seconds east of UTC.
func ParseOffset(s string) (int, error) {
	bad := fmt.Errorf("invalid time_offset %q (expected e.g. +0200, -05:30 or Z)", s)
	if strings.HasPrefix(s, "Z") {
		return 0, nil
	}
	if len(s) < 5 || (s[0] != '+' && s[0] != '-') {
		return 0, bad
	}
	d := s[1:]
	var hh, mm string
	switch {
	case len(d) == 5 && d[2] == ':':
		hh, mm = d[:2], d[3:]
	case len(d) == 4:
		hh, mm = d[:2], d[2:]
	default:
		return 0, bad
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || !isDigit(hh[0]) || !isDigit(mm[0]) || h > 59 || m > 59 {
		return 0, bad
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return off, nil
}

// ErrNoMatch is returned when the text is not in the parser's format.
var ErrNoMatch = errors.New("no match")

// Parse turns one line of text into a record. A zero time means the record
// holds no (valid) time: the caller keeps its own. An error means the text
// does not have the parser's format; the caller decides what to do.
func (p *Parser) Parse(data []byte) (event.Time, event.Map, error) {
	var (
		t   event.Time
		m   event.Map
		err error
	)
	switch p.format {
	case FormatJSON:
		return p.parseJSON(data)
	case FormatRegex:
		t, m, err = p.parseRegex(data)
	case FormatLTSV:
		t, m, err = p.parseLTSV(data)
	case FormatLogfmt:
		t, m, err = p.parseLogfmt(data)
	default:
		return event.Time{}, nil, fmt.Errorf("parser %q: unknown format", p.name)
	}
	if err != nil {
		return event.Time{}, nil, err
	}
	if len(p.decoders) > 0 {
		m = p.decode(m)
	}
	return t, m, nil
}

// AppendRecord is Parse with the record appended to dst as a MessagePack
// map. A text that parses to no record at all (nil) is refused with
// ErrNoMatch, as the inputs then keep the line unparsed. For the json
// format without decoders the text goes straight to MessagePack instead of
// through a Map and back, which is most of what a tail → json pipeline
// spends per line.
func (p *Parser) AppendRecord(dst, data []byte) (event.Time, []byte, error) {
	if p.format != FormatJSON || len(p.decoders) > 0 {
		t, m, err := p.Parse(data)
		if err != nil {
			return event.Time{}, dst, err
		}
		if m == nil {
			return event.Time{}, dst, p.errorf("%w: no fields", ErrNoMatch)
		}
		return t, m.AppendMsgpack(dst), nil
	}
	start := len(dst)
	out, err := event.AppendFromJSON(dst, data)
	if err != nil {
		return event.Time{}, dst, p.errorf("%w: %v", ErrNoMatch, err)
	}
	if !event.IsMap(out[start]) {
		// Not an object: MapFromJSON names the offset the same way Parse does.
		_, err := event.MapFromJSON(data)
		return event.Time{}, dst, p.errorf("%w: %v", ErrNoMatch, err)
	}
	if p.time == nil {
		return event.Time{}, out, nil
	}
	pair, found, _, _ := event.MapFind(out, start, p.timeKey)
	if !found {
		return event.Time{}, out, nil
	}
	s, ok := event.MapStringAt(out, pair.Value)
	if !ok {
		return event.Time{}, out, nil
	}
	t, err := p.time.lookup(string(s))
	if err != nil {
		return event.Time{}, out, nil
	}
	if !p.timeKeep {
		if out, err = event.MapRemove(out, start, pair); err != nil {
			return event.Time{}, dst, p.errorf("%w: %v", ErrNoMatch, err)
		}
	}
	return t, out, nil
}

func (p *Parser) errorf(format string, args ...any) error {
	return fmt.Errorf("parser %q: %w", p.name, fmt.Errorf(format, args...))
}

// ---- json (src/flb_parser_json.c) ----

// parseJSON: the text must be one JSON object. Decoders run first; then, with
// a Time_Format, the first Time_Key field holding a string is the time. A
// time that does not parse leaves the field in place and no time, as Fluent
// Bit does (it logs a warning). Types do not apply to json.
func (p *Parser) parseJSON(data []byte) (event.Time, event.Map, error) {
	m, err := event.MapFromJSON(data)
	if err != nil {
		return event.Time{}, nil, p.errorf("%w: %v", ErrNoMatch, err)
	}
	if len(p.decoders) > 0 {
		m = p.decode(m)
	}
	if p.time == nil {
		return event.Time{}, m, nil
	}
	i := m.Index(p.timeKey)
	if i < 0 {
		return event.Time{}, m, nil
	}
	s, ok := m[i].Value.(string)
	if !ok {
		return event.Time{}, m, nil
	}
	t, err := p.time.lookup(s)
	if err != nil {
		return event.Time{}, m, nil
	}
	if !p.timeKeep {
		m = append(m[:i:i], m[i+1:]...)
	}
	return t, m, nil
}

// ---- regex (src/flb_parser_regex.c) ----

// parseRegex: the named groups, in the order their names first appear in
// the pattern (all groups of a repeated name together), become the fields.
// Empty values are skipped with Skip_Empty_Values (the default); a Time_Key
// group whose time does not parse is dropped (Fluent Bit logs a warning).
func (p *Parser) parseRegex(data []byte) (event.Time, event.Map, error) {
	loc := p.re.find(data)
	if loc == nil {
		return event.Time{}, nil, p.errorf("%w: the regex does not match", ErrNoMatch)
	}
	m := make(event.Map, 0, p.re.count)
	var t event.Time
	last := -1
	for _, g := range p.re.groups {
		for _, idx := range g.idx {
			start, end := loc[2*idx], loc[2*idx+1]
			if end >= 0 {
				last = end
			}
			var val string
			if start >= 0 {
				val = string(data[start:end])
			}
			if val == "" && p.skipEmpty {
				continue
			}
			if p.time != nil && g.name == p.timeKey {
				tt, err := p.time.lookup(val)
				if err != nil {
					continue
				}
				t = tt
				if !p.timeKeep {
					continue
				}
			}
			m = append(m, event.KV{Key: g.name, Value: p.typecast(g.name, val)})
		}
	}
	if last < 0 {
		return event.Time{}, nil, p.errorf("%w: no named group of the regex matched", ErrNoMatch)
	}
	return t, m, nil
}

// ---- ltsv (src/flb_parser_ltsv.c) ----

var ltsvLabel, ltsvField, logfmtIdent [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		ltsvLabel[c] = isDigit(b) || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_' || b == '.' || b == '-'
		// The upstream table also stops at 0x0E.
		ltsvField[c] = b != 0 && b != '\t' && b != '\n' && b != '\r' && b != 0x0e
		logfmtIdent[c] = b > ' ' && b != '=' && b != '"'
	}
}

// parseLTSV reads label:value pairs separated by tabs, up to the end of the
// first line. Parsing stops at the first label not followed by ':'. A time
// that does not parse fails the whole parse, as upstream.
func (p *Parser) parseLTSV(data []byte) (event.Time, event.Map, error) {
	var (
		m event.Map
		t event.Time
	)
	c, end := 0, len(data)
	for c < end {
		label := c
		for c < end && ltsvLabel[data[c]] {
			c++
		}
		labelLen := c - label
		if c == end || data[c] != ':' {
			break
		}
		c++
		field := c
		for c < end && ltsvField[data[c]] {
			c++
		}
		if labelLen > 0 {
			key, val := string(data[label:label+labelLen]), string(data[field:c])
			found := false
			if p.time != nil && key == p.timeKey && val != "" {
				tt, err := p.time.lookup(val)
				if err != nil {
					return event.Time{}, nil, p.errorf("invalid time %q: %v", val, err)
				}
				t, found = tt, true
			}
			if !found || p.timeKeep {
				m = append(m, event.KV{Key: key, Value: p.typecast(key, val)})
			}
		}
		if c == end {
			break
		}
		if data[c] == '\t' {
			c++
		}
		if c == end {
			break
		}
		if data[c] == '\r' || data[c] == '\n' {
			break
		}
	}
	if len(m) == 0 {
		return event.Time{}, nil, p.errorf("%w: no LTSV field", ErrNoMatch)
	}
	return t, m, nil
}

// ---- logfmt (src/flb_parser_logfmt.c) ----

// parseLogfmt reads key=value pairs up to the end of the first line: a value
// is a run of bytes above ' ' other than '=' and '"', or a quoted string
// with backslash escapes; a key alone (or "key=") is true. With Types, every
// value is cast from its raw text instead (escapes are not decoded and a
// bare key is ""), as upstream.
func (p *Parser) parseLogfmt(data []byte) (event.Time, event.Map, error) {
	var (
		m event.Map
		t event.Time
	)
	c, end := 0, len(data)
	for c < end {
		for c < end && !logfmtIdent[data[c]] {
			c++
		}
		if c == end {
			break
		}
		key := c
		for c < end && logfmtIdent[data[c]] {
			c++
		}
		keyLen := c - key
		var value, valueLen int
		valueSet, valueStr, valueEscape := false, false, false
		if c < end && data[c] == '=' {
			valueSet = true
			c++
			if c < end {
				if data[c] == '"' {
					c++
					value = c
					valueStr = true
					for c < end {
						if data[c] != '\\' && data[c] != '"' {
							c++
						} else if data[c] == '\\' {
							valueEscape = true
							c++
							if c == end {
								break
							}
							c++
						} else {
							break
						}
					}
					valueLen = c - value
					if c < end && data[c] == '"' {
						c++
					}
				} else {
					value = c
					for c < end && logfmtIdent[data[c]] {
						c++
					}
					valueLen = c - value
				}
			}
		}
		if keyLen > 0 {
			if p.noBareKeys && valueLen == 0 && !valueSet {
				return event.Time{}, nil, p.errorf("%w: key %q has no value (logfmt_no_bare_keys)", ErrNoMatch, data[key:key+keyLen])
			}
			k := string(data[key : key+keyLen])
			raw := string(data[value : value+valueLen])
			found := false
			if p.time != nil && k == p.timeKey && valueLen > 0 {
				tt, err := p.time.lookup(raw)
				if err != nil {
					return event.Time{}, nil, p.errorf("invalid time %q: %v", raw, err)
				}
				t, found = tt, true
			}
			if !found || p.timeKeep {
				var v any
				switch {
				case len(p.types) > 0:
					v = p.typecast(k, raw)
				case valueLen == 0 && valueStr:
					v = ""
				case valueLen == 0:
					v = true
				case valueEscape:
					u := unescapeUTF8([]byte(raw))
					if i := strings.IndexByte(string(u), 0); i >= 0 {
						u = u[:i] // upstream takes strlen of the result
					}
					v = string(u)
				default:
					v = raw
				}
				m = append(m, event.KV{Key: k, Value: v})
			}
		}
		if c == end {
			break
		}
		if data[c] == '\r' || data[c] == '\n' {
			break
		}
	}
	if len(m) == 0 {
		return event.Time{}, nil, p.errorf("%w: no logfmt field", ErrNoMatch)
	}
	return t, m, nil
}

// ---- types (flb_parser_typecast) ----

// typecast converts a value per Types: the first rule for the key decides.
// integer is atoll, hex strtoull(16), float atof; bool accepts a value
// starting with "true" or "false" (any case) and keeps anything else as the
// string.
func (p *Parser) typecast(key, val string) any {
	for _, r := range p.types {
		if r.key != key {
			continue
		}
		switch r.kind {
		case typeInt:
			return atoll(val)
		case typeHex:
			u := strtoull16(val)
			if u <= math.MaxInt64 {
				return int64(u)
			}
			return u
		case typeFloat:
			return atof(val)
		case typeBool:
			switch {
			case hasPrefixFold(val, "true"):
				return true
			case hasPrefixFold(val, "false"):
				return false
			}
		}
		return val
	}
	return val
}

func skipCSpace(s string) string {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	return s[i:]
}

// atoll is C's atoll (strtoll base 10, saturating on overflow).
func atoll(s string) int64 {
	s = skipCSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var u uint64
	over := false
	for i := 0; i < len(s) && isDigit(s[i]); i++ {
		d := uint64(s[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			over = true
			break
		}
		u = u*10 + d
	}
	switch {
	case neg && (over || u > 1<<63):
		return math.MinInt64
	case neg:
		return -int64(u)
	case over || u > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(u)
}

func hexDigit(c byte) (uint64, bool) {
	switch {
	case isDigit(c):
		return uint64(c - '0'), true
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

// strtoull16 is strtoull(s, NULL, 16): optional sign (a minus negates the
// unsigned result) and "0x" prefix; ULLONG_MAX on overflow.
func strtoull16(s string) uint64 {
	s = skipCSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		if _, ok := hexDigit(s[2]); ok {
			s = s[2:]
		}
	}
	var u uint64
	for i := 0; i < len(s); i++ {
		d, ok := hexDigit(s[i])
		if !ok {
			break
		}
		if u > (math.MaxUint64-d)/16 {
			return math.MaxUint64
		}
		u = u*16 + d
	}
	if neg {
		return -u
	}
	return u
}

// atof is C's atof: the longest prefix that strtod reads (decimal,
// hexadecimal, inf, nan); 0 when there is none.
func atof(s string) float64 {
	s = skipCSpace(s)
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	neg := i > 0 && s[0] == '-'
	rest := s[i:]
	switch {
	case hasPrefixFold(rest, "inf"):
		if neg {
			return math.Inf(-1)
		}
		return math.Inf(1)
	case hasPrefixFold(rest, "nan"):
		return math.NaN()
	}
	if len(rest) > 2 && rest[0] == '0' && (rest[1]|0x20) == 'x' {
		j, digits, dot := 2, 0, false
		for j < len(rest) {
			if _, ok := hexDigit(rest[j]); ok {
				digits++
			} else if rest[j] == '.' && !dot {
				dot = true
			} else {
				break
			}
			j++
		}
		if digits > 0 {
			end := j
			if j < len(rest) && (rest[j]|0x20) == 'p' {
				k := j + 1
				if k < len(rest) && (rest[k] == '+' || rest[k] == '-') {
					k++
				}
				if k < len(rest) && isDigit(rest[k]) {
					for k < len(rest) && isDigit(rest[k]) {
						k++
					}
					end = k
				}
			}
			num := rest[:end]
			if end == j {
				num += "p0"
			}
			f, _ := strconv.ParseFloat(num, 64)
			if neg {
				f = -f
			}
			return f
		}
	}
	j, digits, dot := 0, 0, false
	for j < len(rest) {
		switch {
		case isDigit(rest[j]):
			digits++
		case rest[j] == '.' && !dot:
			dot = true
		default:
			goto done
		}
		j++
	}
done:
	if digits == 0 {
		return 0
	}
	end := j
	if j < len(rest) && (rest[j]|0x20) == 'e' {
		k := j + 1
		if k < len(rest) && (rest[k] == '+' || rest[k] == '-') {
			k++
		}
		if k < len(rest) && isDigit(rest[k]) {
			for k < len(rest) && isDigit(rest[k]) {
				k++
			}
			end = k
		}
	}
	f, _ := strconv.ParseFloat(s[:i+end], 64) // overflow gives ±Inf, as strtod
	return f
}

// setNow replaces the clock used for times without a year (tests).
func (p *Parser) setNow(now func() time.Time) {
	if p.time != nil {
		p.time.now = now
	}
}

// setLocation replaces the local zone (Time_System_Timezone, %Z) (tests).
func (p *Parser) setLocation(loc *time.Location) {
	if p.time != nil {
		p.time.loc = loc
	}
}
