package plugin

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/tag"
)

// KeyType says how a configuration value is parsed and checked.
type KeyType int

const (
	String  KeyType = iota
	Int             // integer
	Bool            // true|on|yes / false|off|no
	Size            // decimal unit size: 5M = 5,000,000 bytes
	Seconds         // time string: number with optional s|m|h|d suffix
	Float           // decimal number
)

// Key documents one configuration key of a plugin.
type Key struct {
	Name    string // lowercase
	Type    KeyType
	Default string // "" means unset
	Multi   bool   // may repeat
	Enum    []string
	Desc    string
}

// Spec describes a plugin: its keys and its constructor.
type Spec struct {
	Kind Kind
	Name string
	Desc string
	Keys []Key
	// Exactly one of these is set, matching Kind.
	NewInput  func(ctx context.Context, set Settings, p *Props) (Input, error)
	NewFilter func(ctx context.Context, set Settings, p *Props) (Filter, error)
	NewOutput func(ctx context.Context, set Settings, p *Props) (Output, error)
	// Check, when set, verifies what key checks cannot (a WASM module's
	// exports and imports) so floe validate reports it; errors name the key.
	Check func(ctx context.Context, set Settings, p *Props) error
	// ServedBy names the stage that serves an output of this kind itself
	// instead of the output stage (vivo_exporter: "vivo"); NewOutput is unused then.
	ServedBy string
	// AnyKey accepts keys the spec does not list, as plain strings: Go
	// plugins built with fluent-bit-go declare no config map.
	AnyKey bool
	// Path is the file an external plugin was loaded from (plugins_file, -e).
	Path string
}

// Key returns the spec of a plugin key, including the keys every plugin of its kind takes.
func (s *Spec) Key(name string) (Key, bool) {
	name = strings.ToLower(name)
	for _, k := range s.Keys {
		if k.Name == name {
			return k, true
		}
	}
	for _, k := range CommonKeys(s.Kind) {
		if k.Name == name {
			return k, true
		}
	}
	for _, p := range commonPrefixes(s.Kind) {
		if strings.HasPrefix(name, p) {
			return Key{Name: name, Type: String, Multi: true}, true
		}
	}
	if s.AnyKey {
		return Key{Name: name, Type: String}, true
	}
	return Key{}, false
}

// CommonKeys are the generic keys Fluent Bit accepts on every instance of a kind.
func CommonKeys(k Kind) []Key {
	base := []Key{
		{Name: "name", Desc: "plugin name"},
		{Name: "alias", Desc: "display name in metrics and logs"},
		{Name: "log_level", Enum: []string{"off", "error", "warn", "warning", "info", "debug", "trace"}},
		{Name: "log_suppress_interval", Type: Seconds},
	}
	switch k {
	case KindInput:
		return append(base,
			Key{Name: "tag", Desc: "tag of the events; default <plugin>.<N>"},
			Key{Name: "mem_buf_limit", Type: Size, Desc: "pause the input when this much is buffered"},
			Key{Name: "routable", Type: Bool, Default: "true"},
			Key{Name: "threaded", Type: Bool, Default: "false"},
			Key{Name: "storage.type", Enum: []string{"memory", "filesystem", "memrb"}, Default: "memory"},
			Key{Name: "storage.pause_on_chunks_overlimit", Type: Bool, Default: "false"},
			Key{Name: "parser", Desc: "parser applied to the input's text"},
		)
	case KindFilter:
		return append(base,
			Key{Name: "match"},
			Key{Name: "match_regex"},
		)
	case KindOutput:
		return append(base,
			Key{Name: "match"},
			Key{Name: "match_regex"},
			Key{Name: "retry_limit", Default: "1", Desc: "N, no_limits, no_retries"},
			Key{Name: "workers", Type: Int, Default: "1"},
			Key{Name: "storage.total_limit_size", Type: Size},
			Key{Name: "storage.on_full", Enum: []string{"drop_oldest", "block"}, Default: "drop_oldest"},
			Key{Name: "tls", Type: Bool, Default: "off"},
		)
	}
	return base
}

func commonPrefixes(k Kind) []string {
	if k == KindOutput {
		return []string{"tls.", "net."}
	}
	return nil
}

// Registry holds the plugin specs of one Floe build.
type Registry struct {
	specs map[Kind]map[string]*Spec
	// external plugins (see external.go)
	loader ExternalLoader
	loaded map[string]*Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{specs: map[Kind]map[string]*Spec{}}
}

// Add registers a spec; a duplicate name is an error.
func (r *Registry) Add(s *Spec) error {
	m := r.specs[s.Kind]
	if m == nil {
		m = map[string]*Spec{}
		r.specs[s.Kind] = m
	}
	name := strings.ToLower(s.Name)
	if _, dup := m[name]; dup {
		return fmt.Errorf("plugin %s %q registered twice", s.Kind, name)
	}
	m[name] = s
	return nil
}

// MustAdd registers specs and panics on a duplicate (a programming error).
func (r *Registry) MustAdd(specs ...*Spec) *Registry {
	for _, s := range specs {
		if err := r.Add(s); err != nil {
			panic(err)
		}
	}
	return r
}

// Lookup finds a plugin by kind and case-insensitive name.
func (r *Registry) Lookup(k Kind, name string) (*Spec, bool) {
	s, ok := r.specs[k][strings.ToLower(name)]
	return s, ok
}

// Names lists the registered plugins of a kind, sorted.
func (r *Registry) Names(k Kind) []string {
	var out []string
	for n := range r.specs[k] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Props is a plugin section's configuration with the spec's defaults applied.
// Values were checked by Validate, so accessors do not fail.
type Props struct {
	Section *config.Section
	spec    *Spec
}

// NewProps binds a section to its spec.
func NewProps(spec *Spec, s *config.Section) *Props { return &Props{Section: s, spec: spec} }

// Has reports whether the user set key.
func (p *Props) Has(key string) bool {
	_, ok := p.Section.Get(key)
	return ok
}

// String returns the value of key or its default.
func (p *Props) String(key string) string {
	if v, ok := p.Section.Get(key); ok {
		return v
	}
	if k, ok := p.spec.Key(key); ok {
		return k.Default
	}
	return ""
}

// All returns every value of a repeatable key.
func (p *Props) All(key string) []string { return p.Section.GetAll(key) }

// Int returns an integer key (0 when unset and without default).
func (p *Props) Int(key string) int {
	v, _ := strconv.Atoi(strings.TrimSpace(p.String(key)))
	return v
}

// Float returns a decimal key.
func (p *Props) Float(key string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSpace(p.String(key)), 64)
	return v
}

// Bool returns a boolean key.
func (p *Props) Bool(key string) bool {
	v, _ := config.ParseBool(p.String(key))
	return v
}

// Size returns a unit size in bytes.
func (p *Props) Size(key string) int64 {
	s := p.String(key)
	if s == "" {
		return 0
	}
	v, _ := config.ParseSize(s)
	return v
}

// Seconds returns a time string in seconds.
func (p *Props) Seconds(key string) float64 {
	s := p.String(key)
	if s == "" {
		return 0
	}
	v, _ := config.ParseSeconds(s)
	return v
}

// Errorf makes a configuration error positioned at key.
func (p *Props) Errorf(key, format string, args ...any) error {
	file, line := p.Section.Pos(key)
	return &config.Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// CheckValue validates one value against a key spec.
func CheckValue(k Key, v string) error {
	switch k.Type {
	case Int:
		if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
	case Float:
		if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
	case Bool:
		if _, err := config.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not a boolean (on/off, true/false, yes/no)", v)
		}
	case Size:
		if _, err := config.ParseSize(v); err != nil {
			return fmt.Errorf("%q is not a size (e.g. 512K, 5M)", v)
		}
	case Seconds:
		if _, err := config.ParseSeconds(v); err != nil {
			return fmt.Errorf("%q is not a time (e.g. 5, 10s, 1m)", v)
		}
	}
	if len(k.Enum) > 0 {
		for _, e := range k.Enum {
			if strings.EqualFold(e, v) {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(k.Enum, ", "))
	}
	return nil
}

// ValidateSection checks a plugin section against its spec and returns every problem.
func (r *Registry) ValidateSection(kind Kind, s *config.Section) config.ErrorList {
	var errs config.ErrorList
	add := func(key, format string, args ...any) {
		file, line := s.Pos(key)
		if key == "" {
			file, line = s.File, s.Line
		}
		errs = append(errs, &config.Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	name := s.Plugin()
	if name == "" {
		if !s.Incomplete() { // else the parser already reported why
			add("", "%s section has no name", kind)
		}
		return errs
	}
	spec, ok := r.Lookup(kind, name)
	if !ok {
		add("name", "unknown %s plugin %q (known: %s)", kind, name, strings.Join(r.Names(kind), ", "))
		return errs
	}
	for _, prop := range s.Props {
		k, ok := spec.Key(prop.Key)
		if !ok {
			errs = append(errs, &config.Error{File: prop.File, Line: prop.Line, Key: prop.Key,
				Msg: fmt.Sprintf("unknown key for %s plugin %q", kind, name)})
			continue
		}
		if err := CheckValue(k, prop.Value); err != nil {
			errs = append(errs, &config.Error{File: prop.File, Line: prop.Line, Key: prop.Key, Msg: err.Error()})
		}
	}
	if kind != KindInput {
		m, _ := s.Get("match")
		re, _ := s.Get("match_regex")
		if _, err := tag.NewMatcher(m, re); err != nil {
			add("match_regex", "%v", err)
		}
	}
	return errs
}
