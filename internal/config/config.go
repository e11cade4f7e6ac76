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

	bad bool // a line of this section had an error: skip follow-up checks
}

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
}

func newConfig(format string) *Config {
	return &Config{Env: map[string]string{}, Format: format}
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
	File string
	Line int
	Key  string
	Msg  string
}

// Error formats "FILE:LINE: key KEY: MSG", omitting the key part when Key is
// empty and the line part when Line is 0.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
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

// sortByPosition orders errors by the order files were read, then by line.
func sortByPosition(l []*Error, files []string) {
	idx := map[string]int{}
	for i, f := range files {
		if _, ok := idx[f]; !ok {
			idx[f] = i
		}
	}
	rank := func(f string) int {
		if i, ok := idx[f]; ok {
			return i
		}
		return len(files)
	}
	sort.SliceStable(l, func(i, j int) bool {
		ri, rj := rank(l[i].File), rank(l[j].File)
		if ri != rj {
			return ri < rj
		}
		return l[i].Line < l[j].Line
	})
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
			}
		}
	}
	sortByPosition(*errs, cfg.Files)
	sortByPosition(cfg.Warnings, cfg.Files)
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
