package multiline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
)

// Rules of the built-in parsers, as src/multiline/flb_ml_parser_{go,python,java}.c
// define them (they come from fluent-plugin-detect-exceptions).
var builtinRules = map[string][][3]string{
	"go": {
		{"start_state", `/\bpanic: /`, "go_after_panic"},
		{"start_state", `/http: panic serving/`, "go_goroutine"},
		{"go_after_panic", `/^$/`, "go_goroutine"},
		{"go_after_panic, go_after_signal, go_frame_1", `/^$/`, "go_goroutine"},
		{"go_after_panic", `/^\[signal /`, "go_after_signal"},
		{"go_goroutine", `/^goroutine \d+ \[[^\]]+\]:$/`, "go_frame_1"},
		{"go_frame_1", `/^(?:[^\s.:]+\.)*[^\s.():]+\(|^created by /`, "go_frame_2"},
		{"go_frame_2", `/^\s/`, "go_frame_1"},
	},
	"python": {
		{"start_state", `/^Traceback \(most recent call last\):$/`, "python"},
		{"python", `/^[\t ]+File /`, "python_code"},
		{"python_code", `/[^\t ]/`, "python"},
		{"python", `/^(?:[^\s.():]+\.)*[^\s.():]+:/`, "start_state"},
	},
	"java": {
		{"start_state, java_start_exception", `/(.)(?:Exception|Error|Throwable|V8 errors stack trace)[:\r\n]/`, "java_after_exception"},
		{"java_after_exception", `/^[\t ]*nested exception is:[\t ]*/`, "java_start_exception"},
		{"java_after_exception", `/^[\r\n]*$/`, "java_after_exception"},
		{"java_after_exception, java", `/^[\t ]+(?:eval )?at /`, "java"},
		{"java_after_exception, java", `/^[\t ]+--- End of inner exception stack trace ---$/`, "java"},
		{"java_after_exception, java", `/^--- End of stack trace from previous location where exception was thrown ---$/`, "java"},
		{"java_after_exception, java", `/^[\t ]*(?:Caused by|Suppressed):/`, "java_after_exception"},
		{"java_after_exception, java", `/^[\t ]*... \d+ (?:more|common frames omitted)/`, "java"},
	},
}

// Builtin returns a built-in parser: docker, cri, go, python or java.
func Builtin(name string) (*Parser, bool) {
	switch name {
	case "docker":
		// flb_ml_parser_docker.c: JSON lines {"log","stream","time"}; a log
		// not ending in a newline was split by Docker at 16 KiB and continues
		// in the next line of the same stream.
		lp := mustLineParser("_ml_json_docker", "json", "", "%Y-%m-%dT%H:%M:%S.%L%z")
		return &Parser{Name: name, Type: EndsWith, FlushTimeout: DefaultFlushTimeout, matchString: "\n",
			keyContent: "log", keyGroup: "stream", lineParser: lp}, true
	case "cri":
		// flb_ml_parser_cri.c: "<time> <stream> <P|F> <log>"; P marks a
		// partial line, F the last part.
		lp := mustLineParser("_ml_cri", "regex", `^(?<time>.+?) (?<stream>stdout|stderr) (?<_p>F|P) (?<log>.*)$`, "%Y-%m-%dT%H:%M:%S.%L%z")
		return &Parser{Name: name, Type: Equal, FlushTimeout: DefaultFlushTimeout, matchString: "F",
			keyContent: "log", keyPattern: "_p", keyGroup: "stream", lineParser: lp}, true
	}
	rules, ok := builtinRules[name]
	if !ok {
		return nil, false
	}
	p, err := NewRegexParser(name, DefaultFlushTimeout, rules)
	if err != nil {
		panic(err) // the built-in rules are fixed; a failure is a bug caught by tests
	}
	return p, true
}

// BuiltinNames lists the built-in parsers.
func BuiltinNames() []string { return []string{"cri", "docker", "go", "java", "python"} }

func mustLineParser(name, format, regex, timeFormat string) plugin.Parser {
	s := &config.Section{Type: config.TypeParser, File: "<built-in multiline parser>"}
	add := func(k, v string) { s.Props = append(s.Props, config.Prop{Key: k, Value: v}) }
	add("name", name)
	add("format", format)
	if regex != "" {
		add("regex", regex)
	}
	add("time_key", "time")
	add("time_format", timeFormat)
	add("time_keep", "on")
	p, err := parser.New(s)
	if err != nil {
		panic(fmt.Sprintf("built-in multiline line parser %s: %v", name, err))
	}
	return p
}

// Registry resolves multiline parser names: the user's sections first, then the built-ins.
type Registry struct {
	byName map[string]*Parser
}

// Load builds the user's [MULTILINE_PARSER] sections. parsers resolves the
// `parser` key ([PARSER] names); it may be nil. Every problem is returned
// at once as a config.ErrorList naming file, line and key.
func Load(sections []*config.Section, parsers plugin.Parsers) (*Registry, error) {
	r := &Registry{byName: map[string]*Parser{}}
	var errs config.ErrorList
	for _, s := range sections {
		p, err := fromSection(s, parsers)
		if err != nil {
			errs = append(errs, asConfigErrors(s, err)...)
			continue
		}
		if _, dup := r.byName[p.Name]; dup {
			file, line := s.Pos("name")
			errs = append(errs, &config.Error{File: file, Line: line, Key: "name", Msg: fmt.Sprintf("multiline parser %q is defined twice", p.Name)})
			continue
		}
		r.byName[p.Name] = p
	}
	return r, errs.Err()
}

func asConfigErrors(s *config.Section, err error) config.ErrorList {
	if ce, ok := err.(*config.Error); ok {
		return config.ErrorList{ce}
	}
	if cl, ok := err.(config.ErrorList); ok {
		return cl
	}
	return config.ErrorList{{File: s.File, Line: s.Line, Msg: err.Error()}}
}

// Lookup finds a parser by name: a user's section, else a built-in.
func (r *Registry) Lookup(name string) (*Parser, bool) {
	if r != nil {
		if p, ok := r.byName[name]; ok {
			return p, true
		}
	}
	return Builtin(name)
}

// Names lists the user's parsers and the built-ins.
func (r *Registry) Names() []string {
	names := BuiltinNames()
	if r != nil {
		for n := range r.byName {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Resolve turns a multiline.parser value (a comma list, possibly repeated) into parsers.
func (r *Registry) Resolve(values []string) ([]*Parser, error) {
	var out []*Parser
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			p, ok := r.Lookup(name)
			if !ok {
				return nil, fmt.Errorf("unknown multiline parser %q (known: %s)", name, strings.Join(r.Names(), ", "))
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// fromSection builds a [MULTILINE_PARSER] section (flb_ml_parser.c's config keys).
func fromSection(s *config.Section, parsers plugin.Parsers) (*Parser, error) {
	errf := func(key, format string, args ...any) error {
		file, line := s.Pos(key)
		if key == "" {
			file, line = s.File, s.Line
		}
		return &config.Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	name, ok := s.Get("name")
	if !ok || strings.TrimSpace(name) == "" {
		return nil, errf("", "multiline parser section has no 'name'")
	}
	p := &Parser{Name: name, FlushTimeout: DefaultFlushTimeout}
	typ, _ := s.Get("type")
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "regex":
		p.Type = Regex
	case "endswith":
		p.Type = EndsWith
	case "equal", "eq":
		p.Type = Equal
	case "":
		return nil, errf("type", "multiline parser %q has no 'type' (regex, endswith or equal)", name)
	default:
		return nil, errf("type", "multiline parser %q: unknown type %q (regex, endswith or equal)", name, typ)
	}
	if v, ok := s.Get("flush_timeout"); ok {
		ms, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || ms <= 0 {
			return nil, errf("flush_timeout", "%q is not a positive number of milliseconds", v)
		}
		p.FlushTimeout = time.Duration(ms) * time.Millisecond
	}
	p.matchString, _ = s.Get("match_string")
	if v, ok := s.Get("negate"); ok {
		b, err := config.ParseBool(v)
		if err != nil {
			return nil, errf("negate", "%q is not a boolean", v)
		}
		p.negate = b
	}
	p.keyContent, _ = s.Get("key_content")
	p.keyPattern, _ = s.Get("key_pattern")
	p.keyGroup, _ = s.Get("key_group")
	if pn, ok := s.Get("parser"); ok && pn != "" {
		var lp plugin.Parser
		if parsers != nil {
			lp, ok = parsers.Lookup(pn)
		} else {
			ok = false
		}
		if !ok {
			return nil, errf("parser", "multiline parser %q points to an undefined parser %q", name, pn)
		}
		if p.keyContent == "" {
			return nil, errf("parser", "multiline parser %q has a parser but no key_content naming the parsed field to join", name)
		}
		p.lineParser = lp
	}
	if p.Type != Regex && p.matchString == "" {
		return nil, errf("match_string", "multiline parser %q of type %s needs match_string", name, typ)
	}
	if p.Type == Regex {
		n := 0
		for _, prop := range s.Props {
			if !strings.EqualFold(prop.Key, "rule") {
				continue
			}
			n++
			fields, err := splitRule(prop.Value)
			if err == nil && len(fields) != 3 {
				err = fmt.Errorf("expected 3 quoted fields (state, regex, next state), found %d", len(fields))
			}
			if err == nil {
				err = p.addRule(fields[0], fields[1], fields[2])
			}
			if err != nil {
				return nil, &config.Error{File: prop.File, Line: prop.Line, Key: "rule", Msg: fmt.Sprintf("multiline parser %q: %v", name, err)}
			}
		}
		// YAML: rules is a list of {state, regex, next_state} maps.
		for _, g := range s.Groups {
			if !strings.EqualFold(g.Name, "rules") && !strings.EqualFold(g.Name, "rule") {
				continue
			}
			n++
			st, _ := g.Get("state")
			re, _ := g.Get("regex")
			next, _ := g.Get("next_state")
			if err := p.addRule(st, re, next); err != nil {
				return nil, &config.Error{File: g.File, Line: g.Line, Key: "rules", Msg: fmt.Sprintf("multiline parser %q: %v", name, err)}
			}
		}
		if n == 0 {
			return nil, errf("rule", "multiline parser %q of type regex has no rules", name)
		}
		if err := p.checkRules(); err != nil {
			return nil, errf("rule", "multiline parser %q: %v", name, err)
		}
	}
	return p, nil
}

// splitRule splits a classic rule value: fields in double quotes separated by
// blanks; \" inside quotes is a quote. Other backslashes are kept, since
// they belong to the regular expression.
func splitRule(v string) ([]string, error) {
	var out []string
	i := 0
	for i < len(v) {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i >= len(v) {
			break
		}
		if v[i] != '"' {
			j := i
			for j < len(v) && v[j] != ' ' && v[j] != '\t' {
				j++
			}
			out = append(out, v[i:j])
			i = j
			continue
		}
		i++
		var b strings.Builder
		closed := false
		for i < len(v) {
			c := v[i]
			if c == '\\' && i+1 < len(v) && v[i+1] == '"' {
				b.WriteByte(v[i+1])
				i += 2
				continue
			}
			if c == '"' {
				closed = true
				i++
				break
			}
			b.WriteByte(c)
			i++
		}
		if !closed {
			return nil, fmt.Errorf("unterminated quote in %q", v)
		}
		out = append(out, b.String())
	}
	return out, nil
}
