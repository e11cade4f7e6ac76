package config

import (
	"bytes"
	"path/filepath"
	"strings"
)

// ParseClassic parses Fluent Bit classic-format configuration data. path is
// used in messages and to resolve relative @INCLUDE paths (tried against the
// working directory first, then against path's directory; globs are rooted
// at path's directory). env is the process environment for ${VAR} (nil: none).
//
// Every problem found is returned in an ErrorList; the Config is returned
// even then, holding what could be parsed.
func ParseClassic(path string, data []byte, env Lookup) (*Config, error) {
	return parseClassic(osFS{}, path, data, env, false)
}

// ParseParsersFile reads a parsers file (the `parsers_file` service key or
// `-R`), classic or YAML by extension, and returns its [PARSER] and
// [MULTILINE_PARSER] sections (other sections are ignored, as Fluent Bit
// does). Values are expanded with the file's own @SET variables, then env: to
// make the main configuration's variables visible, pass a Lookup that
// consults Config.Env first.
func ParseParsersFile(path string, env Lookup) (parsers, multilineParsers []*Section, err error) {
	data, rerr := readConfigFile(osFS{}, path)
	if rerr != nil {
		return nil, nil, ErrorList{{File: path, Msg: rerr.Error()}}
	}
	var cfg *Config
	if isYAMLPath(path) {
		cfg, err = parseYAML(osFS{}, path, data, env)
	} else {
		cfg, err = parseClassic(osFS{}, path, data, env, true)
	}
	return cfg.Parsers, cfg.MultilineParsers, err
}

const maxLineSize = 32 << 20 // Fluent Bit's classic line limit

type meta struct {
	cmd, params string
	file        string
	line        int
}

type classicParser struct {
	cfg         *Config
	errs        ErrorList
	files       fileSet
	root        string // directory of the main file: base of relative includes
	parsersFile bool   // [PARSER] / [MULTILINE_PARSER] allowed
	metas       []meta
	stop        bool // a fatal condition (file limit) was reached
}

// classicFile is the per-file state: Fluent Bit keeps the indentation unit
// and the current section local to each file, so an included file starts
// with no section and its sections do not capture the includer's lines.
type classicFile struct {
	indent string
	sec    *Section
	group  *Group
	skip   bool // ignore key lines until the next header (after an error)
}

// lineFailed records that a line of the current section was rejected. Only
// when it may have been the name line ("Name\tdummy" has the key
// "name\tdummy") is the section's missing name a consequence not worth a
// second message; a broken Tag line does not excuse a missing Name.
func (st *classicFile) lineFailed(key string) {
	if st.sec != nil && (key == "" || strings.HasPrefix(key, "name")) {
		st.sec.bad = true
	}
}

func parseClassic(fsys fileSystem, path string, data []byte, env Lookup, parsersFile bool) (*Config, error) {
	cfg := newConfig("classic")
	p := &classicParser{cfg: cfg, parsersFile: parsersFile}
	p.files = fileSet{fsys: fsys, files: &cfg.Files}
	if path != "" {
		p.root = filepath.Dir(absPath(path))
	}
	p.files.addMain(path)
	p.parse(path, data)
	p.runMetas()
	finish(cfg, env, &p.errs)
	return cfg, p.errs.Err()
}

// runMetas executes the meta commands after every file has been read, so
// that a variable set anywhere is visible everywhere (Fluent Bit runs all
// metas before processing any section).
func (p *classicParser) runMetas() {
	for _, m := range p.metas {
		if !asciiEqualFold(m.cmd, "SET") {
			p.cfg.Warnings = append(p.cfg.Warnings, &Error{File: m.file, Line: m.line,
				Msg: "unknown meta command @" + m.cmd + " ignored"})
			continue
		}
		eq := strings.IndexByte(m.params, '=')
		if eq < 0 {
			// Fluent Bit refuses the file; the variable would silently be unset.
			p.errs.add(m.file, m.line, "", "@SET: invalid parameter '%s' (expected KEY=VALUE)", m.params)
			continue
		}
		// Like Fluent Bit, the name and value are not trimmed around '='.
		p.cfg.Env[m.params[:eq]] = m.params[eq+1:]
	}
}

func (p *classicParser) parse(file string, data []byte) {
	st := &classicFile{}
	indentSet := false
	lineNo := 0
	for len(data) > 0 && !p.stop {
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
			if n := len(raw); n > 0 && raw[n-1] == '\r' {
				raw = raw[:n-1]
			}
		} else {
			raw, data = data, nil
		}
		lineNo++
		if len(raw) >= maxLineSize {
			p.errs.add(file, lineNo, "", "line exceeds the limit of %d bytes", maxLineSize)
			continue
		}
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			raw = raw[:i] // C strings end at NUL
		}
		line := string(raw)

		if line == "" || line[0] == '#' {
			continue
		}
		// Whitespace-only lines and indented comments are skipped whatever
		// their indentation (Fluent Bit checks their indentation first).
		if t := strings.TrimLeft(line, cSpace); t == "" || t[0] == '#' {
			continue
		}
		if len(line) > 9 && asciiEqualFold(line[:9], "@INCLUDE ") {
			p.include(file, lineNo, trimC(line[9:]))
			continue
		}
		if line[0] == '@' {
			p.meta(file, lineNo, line)
			continue
		}
		if line[0] == '[' {
			p.header(st, file, lineNo, line)
			continue
		}
		if st.skip {
			continue
		}

		// Key line: the first one of the file fixes the indentation unit.
		if !indentSet {
			i := 0
			for i < len(line) && isBlank(line[i]) {
				i++
			}
			if i == 0 {
				p.errs.add(file, lineNo, lineKey(line), "indentation level is too low (key lines must be indented)")
				st.lineFailed(lineKey(line))
				continue
			}
			st.indent, indentSet = line[:i], true
		}
		level, group, msg := checkIndent(line, st.indent)
		if msg != "" {
			p.errs.add(file, lineNo, lineKey(line), "%s", msg)
			st.lineFailed(lineKey(line))
			continue
		}
		if !group {
			st.group = nil
		}
		p.keyLine(st, file, lineNo, line[level:])
	}
}

// lineKey is the key a badly indented line would set, to name it in the
// message ("" for a group line).
func lineKey(line string) string {
	t := trimC(line)
	if t == "" || t[0] == '[' {
		return ""
	}
	if sp := strings.IndexByte(t, ' '); sp >= 0 {
		t = t[:sp]
	}
	return asciiLower(trimC(t))
}

// checkIndent is Fluent Bit's check_indent: the line must start with the
// indentation unit byte for byte; more indentation is only allowed as
// exactly twice the unit (group content).
func checkIndent(line, indent string) (level int, group bool, msg string) {
	k := 0
	for k < len(indent) && k < len(line) && line[k] == indent[k] {
		k++
	}
	if k < len(indent) {
		if k < len(line) && isBlank(line[k]) {
			return 0, false, "inconsistent use of tab and space"
		}
		return 0, false, "indentation level is too low"
	}
	if k < len(line) && isBlank(line[k]) {
		extra := 0
		for k+extra < len(line) && isBlank(line[k+extra]) {
			extra++
		}
		if extra == k {
			return k + extra, true, ""
		}
		return 0, false, "extra indentation level found"
	}
	return k, false, ""
}

func (p *classicParser) header(st *classicFile, file string, lineNo int, line string) {
	st.group = nil
	end := strings.IndexByte(line, ']')
	if end < 0 {
		p.errs.add(file, lineNo, "", "bad header definition (missing ']')")
		st.sec, st.skip = nil, true
		return
	}
	st.skip = false
	name := line[1:end]
	typ := classicSectionType(name)
	sec := &Section{Type: typ, Header: name, File: file, Line: lineNo}
	switch {
	case (typ == TypeParser || typ == TypeMultilineParser) && !p.parsersFile:
		p.errs.add(file, lineNo, "", "section [%s] is not valid in the main configuration file: "+
			"'parser' and 'multiline_parser' sections belong in a parsers_file", name)
		st.sec = sec // parsed for errors, then discarded
	case typ == TypeOther && !p.parsersFile:
		// Fluent Bit keeps unknown sections and ignores them, so a typo such
		// as [OUTPT] silently loses a whole output: report it, and skip its
		// keys (they belong to no plugin) until the next header.
		p.errs.add(file, lineNo, "", "unknown section [%s] (known: SERVICE, INPUT, FILTER, OUTPUT, CUSTOM, "+
			"PLUGINS, UPSTREAM_SERVERS, STREAM_PROCESSOR)", name)
		st.sec, st.skip = nil, true
	case typ == TypeService && p.cfg.Service != nil:
		st.sec = p.cfg.Service // Fluent Bit keeps a single service section
	default:
		p.cfg.add(sec)
		st.sec = sec
	}
}

// classicSectionType reproduces get_section_type: the header is compared
// with each known name over the header's length only, so prefixes match
// ("[IN]" is an input, "[S]" the service).
func classicSectionType(name string) string {
	if name == "" {
		return TypeOther
	}
	for _, t := range classicTypes {
		for _, n := range t.names {
			if len(name) <= len(n) && asciiEqualFold(name, n[:len(name)]) {
				return t.typ
			}
		}
	}
	return TypeOther
}

var classicTypes = []struct {
	names []string
	typ   string
}{
	{[]string{"service"}, TypeService},
	{[]string{"parser"}, TypeParser},
	{[]string{"multiline_parser"}, TypeMultilineParser},
	{[]string{"stream_processor"}, TypeStreamProcessor},
	{[]string{"plugins"}, TypePlugins},
	{[]string{"upstream_servers"}, TypeUpstreamServers},
	{[]string{"custom", "customs"}, TypeCustom},
	{[]string{"input", "inputs"}, TypeInput},
	{[]string{"filter", "filters"}, TypeFilter},
	{[]string{"output", "outputs"}, TypeOutput},
}

func (p *classicParser) keyLine(st *classicFile, file string, lineNo int, rest string) {
	if rest[0] == '[' {
		p.group(st, file, lineNo, rest)
		return
	}
	sp := strings.IndexByte(rest, ' ') // only a space separates: tabs belong to the key
	if sp < 0 {
		key := asciiLower(trimC(rest))
		p.errs.add(file, lineNo, key, "key has no value")
		st.lineFailed(key)
		return
	}
	key := asciiLower(trimC(rest[:sp]))
	val := rest[sp+1:]
	if val == "" {
		p.errs.add(file, lineNo, key, "key has an empty value")
		st.lineFailed(key)
		return
	}
	if key == "" {
		p.errs.add(file, lineNo, "", "empty key")
		st.lineFailed("")
		return
	}
	if st.sec == nil {
		p.errs.add(file, lineNo, key, "property defined outside of any section")
		st.skip = true
		return
	}
	prop := Prop{Key: key, Value: trimC(val), File: file, Line: lineNo}
	if st.group != nil {
		st.group.Props = append(st.group.Props, prop)
	} else {
		st.sec.Props = append(st.sec.Props, prop)
	}
}

func (p *classicParser) group(st *classicFile, file string, lineNo int, rest string) {
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		p.errs.add(file, lineNo, "", "expected a valid group name: [..]")
		return
	}
	if st.sec == nil {
		p.errs.add(file, lineNo, "", "group [%s] has no parent section", rest[1:end])
		st.skip = true
		return
	}
	if st.group != nil && len(st.group.Props) == 0 {
		p.errs.add(file, lineNo, "", "previous group [%s] did not have keys", st.group.Name)
	}
	name := rest[1:end]
	if name == "" {
		return
	}
	g := &Group{Name: name, File: file, Line: lineNo}
	st.sec.Groups = append(st.sec.Groups, g)
	st.group = g
}

func (p *classicParser) meta(file string, lineNo int, line string) {
	sp := strings.IndexByte(line, ' ')
	if len(line) <= 3 || sp < 0 {
		p.errs.add(file, lineNo, "", "invalid meta command %q (expected '@COMMAND PARAMS')", line)
		return
	}
	p.metas = append(p.metas, meta{cmd: trimC(line[1:sp]), params: trimC(line[sp+1:]), file: file, line: lineNo})
}

// include splices the named file(s) in: a relative path is tried against
// the working directory, then the main file's directory; a pattern with '*'
// is a glob rooted at the main file's directory, read in sorted order.
func (p *classicParser) include(file string, lineNo int, pattern string) {
	if pattern == "" {
		p.errs.add(file, lineNo, "", "@INCLUDE without a path")
		return
	}
	var paths []string
	if hasGlob(pattern) {
		g := pattern
		if !filepath.IsAbs(g) && p.root != "" {
			g = filepath.Join(p.root, g)
		}
		m, err := p.files.glob(g)
		if err != nil {
			p.errs.add(file, lineNo, "", "@INCLUDE: %v", err)
			return
		}
		paths = m
	} else {
		path := pattern
		if _, err := p.files.fsys.Stat(path); err != nil && !filepath.IsAbs(path) && p.root != "" {
			path = filepath.Join(p.root, pattern)
		}
		paths = []string{path}
	}
	for _, path := range paths {
		if p.files.count() >= maxFiles {
			p.errs.add(file, lineNo, "", "@INCLUDE: too many configuration files (limit %d)", maxFiles)
			p.stop = true
			return
		}
		data, err := p.files.open(path)
		if err != nil {
			p.errs.add(file, lineNo, "", "@INCLUDE: %v", err)
			continue
		}
		p.cfg.includedAt[path] = filePos{file: file, line: lineNo}
		p.parse(path, data)
		if p.stop {
			return
		}
	}
}
