// Package config reads Fluent Bit configuration: the classic `.conf` format
// (with @INCLUDE and @SET), the YAML format, and the fluent-bit command-line
// shorthand (-i/-F/-o/-p/-t/-m ...). It produces a format-neutral Config made
// of Sections of properties, each property remembering the file and line it
// came from so that later stages can report errors precisely.
//
// The package does not know plugins and does not fill in defaults: it only
// reproduces Fluent Bit's parsing rules (see spec/fluentbit.md §0 and §6).
package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Section types.
const (
	TypeService         = "service"
	TypeInput           = "input"
	TypeFilter          = "filter"
	TypeOutput          = "output"
	TypeCustom          = "custom"
	TypeParser          = "parser"
	TypeMultilineParser = "multiline_parser"
	TypePlugins         = "plugins"
	TypeUpstreamServers = "upstream_servers"
	TypeStreamProcessor = "stream_processor"
	TypeOther           = "other"
)

// CommandLine is the File of properties that come from FromArgs.
const CommandLine = "<command line>"

// Lookup looks a variable up in the process environment (os.LookupEnv shape).
type Lookup func(string) (string, bool)

// Prop is one property. Key is lowercased (classic, command line) or converted
// with the YAML camelCase→snake_case rule; Value is trimmed and ${VAR}-expanded.
type Prop struct {
	Key, Value string
	File       string
	Line       int
}

// Group is a sub-block of a section: classic indented `[name]` groups, or in
// YAML a list of maps under a key (e.g. multiline parser `rules`, upstream
// `nodes`); Name is then the key.
type Group struct {
	Name  string
	Props []Prop
	File  string
	Line  int
}

// Section is a configuration section ([INPUT], one YAML pipeline entry, ...).
type Section struct {
	Type   string // one of the Type* constants
	Header string // the raw section name as written, e.g. "INPUT" or "inputs"
	Props  []Prop
	Groups []*Group
	File   string // where the section starts
	Line   int

	bad bool // a problem in this section was already reported: skip follow-up checks
}

// Incomplete reports whether a problem inside the section was already
// reported (a syntax error in one of its lines, or its missing name): what
// is missing from it is a consequence, and checks for missing keys should
// stay silent rather than report the same mistake twice.
func (s *Section) Incomplete() bool { return s != nil && s.bad }

// Get returns the first value of key (case-insensitive).
func (s *Section) Get(key string) (string, bool) {
	if s == nil {
		return "", false
	}
	return propsGet(s.Props, key)
}

// GetAll returns every value of key, in order.
func (s *Section) GetAll(key string) []string {
	if s == nil {
		return nil
	}
	return propsGetAll(s.Props, key)
}

// Plugin returns the lowercased value of "name" ("" when absent).
func (s *Section) Plugin() string {
	v, _ := s.Get("name")
	return asciiLower(v)
}

// Pos returns where key is first set, else where the section starts.
func (s *Section) Pos(key string) (file string, line int) {
	if s == nil {
		return "", 0
	}
	for _, p := range s.Props {
		if asciiEqualFold(p.Key, key) {
			return p.File, p.Line
		}
	}
	return s.File, s.Line
}

// Get returns the first value of key in the group (case-insensitive).
func (g *Group) Get(key string) (string, bool) {
	if g == nil {
		return "", false
	}
	return propsGet(g.Props, key)
}

// GetAll returns every value of key in the group, in order.
func (g *Group) GetAll(key string) []string {
	if g == nil {
		return nil
	}
	return propsGetAll(g.Props, key)
}

func propsGet(props []Prop, key string) (string, bool) {
	for _, p := range props {
		if asciiEqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

func propsGetAll(props []Prop, key string) []string {
	var out []string
	for _, p := range props {
		if asciiEqualFold(p.Key, key) {
			out = append(out, p.Value)
		}
	}
	return out
}

// Config is a parsed configuration.
type Config struct {
	Service          *Section // never nil after parsing
	Inputs           []*Section
	Filters          []*Section
	Outputs          []*Section
	Customs          []*Section
	Parsers          []*Section
	MultilineParsers []*Section
	Plugins          []*Section
	Other            []*Section        // unknown sections, upstream_servers, stream_processor
	Env              map[string]string // @SET / YAML env values
	Files            []string          // every file read (main + includes + env files)
	Format           string            // "classic", "yaml" or "args"
	Warnings         []*Error          // things Fluent Bit accepts but that are probably mistakes

	// includedAt maps each included file to where it was included, so
	// that its problems sort where the include appears.
	includedAt map[string]filePos
}

type filePos struct {
	file string
	line int
}

func newConfig(format string) *Config {
	return &Config{Env: map[string]string{}, Format: format, includedAt: map[string]filePos{}}
}

// add files a section into the list of its type. A second service section is
// merged into the first (Fluent Bit keeps a single service section).
func (c *Config) add(s *Section) {
	switch s.Type {
	case TypeService:
		if c.Service == nil {
			c.Service = s
		} else {
			c.Service.Props = append(c.Service.Props, s.Props...)
			c.Service.Groups = append(c.Service.Groups, s.Groups...)
		}
	case TypeInput:
		c.Inputs = append(c.Inputs, s)
	case TypeFilter:
		c.Filters = append(c.Filters, s)
	case TypeOutput:
		c.Outputs = append(c.Outputs, s)
	case TypeCustom:
		c.Customs = append(c.Customs, s)
	case TypeParser:
		c.Parsers = append(c.Parsers, s)
	case TypeMultilineParser:
		c.MultilineParsers = append(c.MultilineParsers, s)
	case TypePlugins:
		c.Plugins = append(c.Plugins, s)
	default:
		c.Other = append(c.Other, s)
	}
}

// sections returns every section, service first.
func (c *Config) sections() []*Section {
	var out []*Section
	if c.Service != nil {
		out = append(out, c.Service)
	}
	for _, l := range [][]*Section{c.Customs, c.Inputs, c.Filters, c.Outputs, c.Parsers,
		c.MultilineParsers, c.Plugins, c.Other} {
		out = append(out, l...)
	}
	return out
}

// Error is one configuration problem.
type Error struct {
	File   string
	Line   int
	Column int // 1-based; 0 when unknown (set for YAML syntax errors)
	Key    string
	Msg    string
}

// Error formats "FILE:LINE[:COLUMN]: key KEY: MSG", omitting the key part
// when Key is empty, the line part when Line is 0 and the column when it is
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	col := ""
	if e.Column > 0 && e.Line > 0 {
		col = fmt.Sprintf(":%d", e.Column)
	}
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d%s: ", e.File, e.Line, col)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d%s: ", e.Line, col)
	}
	if e.Key != "" {
		b.WriteString("key " + e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found; it is the error type returned by the
// parsers (use errors.As).
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Err returns nil when the list is empty, else the list.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l *ErrorList) add(file string, line int, key, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	*l = append(*l, &Error{File: file, Line: line, Key: key, Msg: msg})
}

// SortErrors orders problems as a reader meets them: by line in the main
// file, with the problems of an included file where its @INCLUDE (or YAML
// include) appears, then problems in other files (parsers files, the
// command line) by file in order of first appearance, then problems with
// no file. Equal positions keep their order, and so do problems of a Config
// without files.
func (c *Config) SortErrors(l []*Error) {
	if c == nil {
		return
	}
	rank := map[string]int{}
	for i, f := range c.Files {
		if _, ok := rank[f]; !ok {
			rank[f] = i
		}
	}
	type keyed struct {
		e     *Error
		group int   // 0: file read by the parser, 1: another file, 2: no file
		rank  int   // root file's reading order, or first appearance in l
		chain []int // include lines from the root file down, then the line itself
	}
	other := map[string]int{}
	ks := make([]keyed, len(l))
	for i, e := range l {
		k := keyed{e: e, chain: []int{e.Line}}
		f := e.File
		for n := 0; n < maxFiles; n++ { // bounded: includes cannot loop, but be safe
			at, ok := c.includedAt[f]
			if !ok {
				break
			}
			k.chain = append([]int{at.line}, k.chain...)
			f = at.file
		}
		if r, ok := rank[f]; ok {
			k.rank = r
		} else if f == "" {
			k.group = 2
		} else {
			k.group = 1
			if _, seen := other[f]; !seen {
				other[f] = len(other)
			}
			k.rank = other[f]
		}
		ks[i] = k
	}
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if a.group != b.group {
			return a.group < b.group
		}
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		for n := 0; n < len(a.chain) && n < len(b.chain); n++ {
			if a.chain[n] != b.chain[n] {
				return a.chain[n] < b.chain[n]
			}
		}
		// The include line itself comes before the included file's lines.
		if len(a.chain) != len(b.chain) {
			return len(a.chain) < len(b.chain)
		}
		return a.e.Column < b.e.Column
	})
	for i := range ks {
		l[i] = ks[i].e
	}
}

// Load reads a configuration file: .yaml/.yml (any case) as YAML, anything
// else as classic. Variables are looked up in the process environment
// (HOSTNAME falls back to the host name, as Fluent Bit presets it). On error
// the returned ErrorList holds every problem found and the Config holds what
// could be parsed (it is nil only when the file itself cannot be read).
func Load(path string) (*Config, error) {
	data, err := readConfigFile(osFS{}, path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: err.Error()}}
	}
	if isYAMLPath(path) {
		return ParseYAML(path, data, processEnv)
	}
	return ParseClassic(path, data, processEnv)
}

// processEnv is os.LookupEnv plus Fluent Bit's HOSTNAME preset.
func processEnv(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok {
		return v, true
	}
	if name == "HOSTNAME" {
		if h, err := os.Hostname(); err == nil {
			return h, true
		}
	}
	return "", false
}

func isYAMLPath(path string) bool {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return false
	}
	ext := asciiLower(path[i:])
	return ext == ".yaml" || ext == ".yml"
}

// finish runs the steps common to every format once everything is read:
// ${VAR} expansion (config variables are complete by then, so @SET/env
// position does not matter), dropping of properties whose value is empty,
// and the checks that need the final values.
func finish(cfg *Config, env Lookup, errs *ErrorList) {
	if cfg.Service == nil {
		cfg.Service = &Section{Type: TypeService}
	}
	for _, s := range cfg.sections() {
		if len(s.Props) == 0 && len(s.Groups) == 0 && s.File != "" && s.File != CommandLine {
			cfg.Warnings = append(cfg.Warnings, &Error{File: s.File, Line: s.Line,
				Msg: fmt.Sprintf("section [%s] has no keys", s.Header)})
		}
		s.Props = expandProps(s.Props, cfg.Env, env)
		for _, g := range s.Groups {
			g.Props = expandProps(g.Props, cfg.Env, env)
		}
	}
	for _, l := range [][]*Section{cfg.Customs, cfg.Inputs, cfg.Filters, cfg.Outputs,
		cfg.Parsers, cfg.MultilineParsers} {
		for _, s := range l {
			if _, ok := s.Get("name"); !ok && !s.bad {
				errs.add(s.File, s.Line, "", "section '%s' is missing the 'name' property", s.Type)
				s.bad = true // reported: the plugin checks need not say it again
			}
		}
	}
	cfg.SortErrors(*errs)
	cfg.SortErrors(cfg.Warnings)
}

func expandProps(props []Prop, vars map[string]string, env Lookup) []Prop {
	out := props[:0]
	for _, p := range props {
		p.Value = Expand(p.Value, vars, env)
		if p.Value == "" {
			continue // an empty value means "not set"
		}
		out = append(out, p)
	}
	return out
}

// ASCII-only helpers: Fluent Bit uses strncasecmp/tolower in the C locale,
// so non-ASCII letters (e.g. 'ſ', the Kelvin sign) never fold.

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// cSpace is C isspace(): the characters flb_sds_trim removes.
const cSpace = " \t\n\v\f\r"

func trimC(s string) string { return strings.Trim(s, cSpace) }

func isBlank(c byte) bool { return c == ' ' || c == '\t' } // C isblank()
