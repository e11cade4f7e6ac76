package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"gopkg.in/yaml.v3"
)

// ParseYAML parses Fluent Bit YAML configuration data. path is used in
// messages and to resolve `includes` (relative to the including file's
// directory). env is the process environment for ${VAR} (nil: none).
//
// Every problem found is returned in an ErrorList; the Config is returned
// even then, holding what could be parsed.
func ParseYAML(path string, data []byte, env Lookup) (*Config, error) {
	return parseYAML(osFS{}, path, data, env)
}

type yamlParser struct {
	cfg        *Config
	errs       ErrorList
	files      fileSet
	serviceSet bool
	stop       bool
	last       *Section // the section added last, in document order
}

func (p *yamlParser) add(s *Section) {
	p.cfg.add(s)
	p.last = s
}

func parseYAML(fsys fileSystem, path string, data []byte, env Lookup) (*Config, error) {
	cfg := newConfig("yaml")
	p := &yamlParser{cfg: cfg}
	p.files = fileSet{fsys: fsys, files: &cfg.Files}
	p.files.addMain(path)
	p.parseFile(path, data)
	finish(cfg, env, &p.errs)
	return cfg, p.errs.Err()
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *yamlParser) parseFile(file string, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	docs := 0
	for !p.stop {
		var doc yaml.Node
		err := safeDecode(dec, &doc)
		if err == io.EOF {
			return
		}
		if err != nil {
			line, col, msg := yamlErrorPos(data, err)
			p.errs = append(p.errs, &Error{File: file, Line: line, Column: col, Msg: "invalid YAML: " + msg})
			p.checkPrefix(file, data, line, docs)
			return
		}
		docs++
		p.document(file, &doc)
	}
}

// yamlErrorPos places a syntax error. yaml.v3 (libyaml's rules, as Fluent
// Bit reads YAML) gives a line only, and often the line where the enclosing
// block starts rather than the mistake's; goccy/go-yaml's parser gives the
// offending token's line and column, so it is asked where the problem is.
// Its answer is kept when it agrees that the text is invalid and does not
// point before yaml.v3's line; the message stays libyaml's.
func yamlErrorPos(data []byte, err error) (line, col int, msg string) {
	msg = err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if gl, gc, ok := goccyErrorPos(data); ok && gl >= line {
		line, col = gl, gc
	}
	return line, col, msg
}

func goccyErrorPos(data []byte) (line, col int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := goccyparser.ParseBytes(data, 0, goccyparser.AllowDuplicateMapKey())
	var ge goccy.Error
	if err == nil || !errors.As(err, &ge) {
		return 0, 0, false
	}
	tk := ge.GetToken()
	if tk == nil || tk.Position == nil || tk.Position.Line <= 0 {
		return 0, 0, false
	}
	return tk.Position.Line, tk.Position.Column, true
}

// checkPrefix still checks what parses of a document with a syntax error:
// the lines before the error are parsed again on their own and, when they
// form valid YAML, the part of the broken document they hold is read like
// any other. done is how many documents were read already. The last section
// read may have been cut short: it is marked so that only what it holds is
// checked, not what it lacks.
func (p *yamlParser) checkPrefix(file string, data []byte, line, done int) {
	if line <= 1 || p.stop {
		return
	}
	end := 0
	for n := 1; n < line; n++ {
		i := bytes.IndexByte(data[end:], '\n')
		if i < 0 {
			return // the error is on the last line: the whole text failed
		}
		end += i + 1
	}
	dec := yaml.NewDecoder(bytes.NewReader(data[:end]))
	var docs []*yaml.Node
	for {
		doc := &yaml.Node{}
		err := safeDecode(dec, doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return // the prefix is broken too: nothing more can be read
		}
		docs = append(docs, doc)
	}
	if len(docs) != done+1 {
		return // no part of the broken document precedes the error
	}
	p.last = nil
	p.document(file, docs[done])
	if p.last != nil {
		p.last.bad = true
	}
}

func safeDecode(dec *yaml.Decoder, doc *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(doc)
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null" && (n.Value == "" || n.Value == "~" || asciiEqualFold(n.Value, "null")))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "unexpected content"
}

func (p *yamlParser) document(file string, doc *yaml.Node) {
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.errs.add(file, root.Line, "", "the top level must be a map, not %s", kindName(root))
		return
	}
	for i := 0; i+1 < len(root.Content) && !p.stop; i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errs.add(file, k.Line, "", "section names must be strings")
			continue
		}
		name := k.Value
		switch asciiLower(name) {
		case "env":
			p.env(file, v)
		case "includes":
			p.includes(file, v)
		case "service":
			if p.serviceSet {
				p.errs.add(file, k.Line, "", "duplicated definition of 'service'")
				continue
			}
			p.serviceSet = true
			if s := p.mapSection(file, TypeService, name, k, v); s != nil {
				p.add(s)
			}
		case "pipeline":
			p.pipeline(file, v)
		case "customs":
			p.sectionList(file, TypeCustom, name, k, v)
		case "parsers":
			p.sectionList(file, TypeParser, name, k, v)
		case "multiline_parsers":
			p.sectionList(file, TypeMultilineParser, name, k, v)
		case "plugins":
			p.plugins(file, name, k, v)
		case "upstream_servers":
			p.sectionList(file, TypeUpstreamServers, name, k, v)
		case "stream_processor":
			p.mapOrList(file, TypeStreamProcessor, name, k, v)
		default:
			// extensions and unknown sections: kept as "other"
			p.mapOrList(file, TypeOther, name, k, v)
		}
	}
}

func (p *yamlParser) pipeline(file string, v *yaml.Node) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errs.add(file, v.Line, "", "'pipeline' must be a map, not %s", kindName(v))
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, lv := resolve(v.Content[i]), resolve(v.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errs.add(file, k.Line, "", "pipeline component names must be strings")
			continue
		}
		switch asciiLower(k.Value) {
		case "inputs":
			p.sectionList(file, TypeInput, k.Value, k, lv)
		case "filters":
			p.sectionList(file, TypeFilter, k.Value, k, lv)
		case "outputs":
			p.sectionList(file, TypeOutput, k.Value, k, lv)
		case "customs":
			p.sectionList(file, TypeCustom, k.Value, k, lv)
		default:
			p.errs.add(file, k.Line, "", "the pipeline component '%s' is not valid; "+
				"try one of these values: customs, inputs, filters or outputs", k.Value)
		}
	}
}

// sectionList handles a list of maps, one section per entry.
func (p *yamlParser) sectionList(file, typ, header string, k, v *yaml.Node) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.SequenceNode {
		p.errs.add(file, v.Line, "", "'%s' must be a list of maps, not %s", header, kindName(v))
		return
	}
	for _, item := range v.Content {
		item = resolve(item)
		if item.Kind != yaml.MappingNode {
			p.errs.add(file, item.Line, "", "each entry of '%s' must be a map, not %s", header, kindName(item))
			continue
		}
		if s := p.mapSection(file, typ, header, item, item); s != nil {
			p.add(s)
		}
	}
}

// mapOrList accepts one map (one section) or a list of maps.
func (p *yamlParser) mapOrList(file, typ, header string, k, v *yaml.Node) {
	switch {
	case isNull(v):
		return
	case v.Kind == yaml.MappingNode:
		if s := p.mapSection(file, typ, header, k, v); s != nil {
			p.add(s)
		}
	case v.Kind == yaml.SequenceNode:
		p.sectionList(file, typ, header, k, v)
	default:
		p.errs.add(file, v.Line, "", "section '%s' must be a map or a list of maps, not %s", header, kindName(v))
	}
}

// mapSection turns a YAML map into a section. pos gives the section position.
func (p *yamlParser) mapSection(file, typ, header string, pos, v *yaml.Node) *Section {
	s := &Section{Type: typ, Header: header, File: file, Line: pos.Line}
	if isNull(v) {
		return s
	}
	if v.Kind != yaml.MappingNode {
		p.errs.add(file, v.Line, "", "'%s' must be a map, not %s", header, kindName(v))
		return nil
	}
	plugin := typ == TypeInput || typ == TypeFilter || typ == TypeOutput || typ == TypeCustom
	for i := 0; i+1 < len(v.Content); i += 2 {
		kn, vn := resolve(v.Content[i]), resolve(v.Content[i+1])
		key, ok := p.key(file, kn)
		if !ok {
			continue
		}
		lk := asciiLower(key)
		if plugin && (lk == "processors" || lk == "routes") {
			continue // not handled by this package (yet); Fluent Bit skips 'routes' as a property
		}
		if plugin && flattenKeys[lk] && vn.Kind != yaml.ScalarNode {
			p.flatten(file, s, key, vn)
			continue
		}
		switch vn.Kind {
		case yaml.ScalarNode:
			// the scalar's text, as libyaml gives it (null, ~, yes stay words);
			// an empty value is dropped later as "not set"
			s.Props = append(s.Props, Prop{Key: key, Value: trimC(vn.Value), File: file, Line: vn.Line})
		case yaml.SequenceNode:
			p.listValue(file, s, key, vn, typ == TypeOther)
		case yaml.MappingNode:
			if typ == TypeOther {
				continue // free-form sections may nest; nothing to record
			}
			p.errs.add(file, vn.Line, key, "a map is not a valid property value")
		default:
			p.errs.add(file, vn.Line, key, "invalid property value")
		}
	}
	return s
}

// listValue adds a list: scalars are repeated properties, maps are groups.
func (p *yamlParser) listValue(file string, s *Section, key string, vn *yaml.Node, lenient bool) {
	for _, item := range vn.Content {
		item = resolve(item)
		switch item.Kind {
		case yaml.ScalarNode:
			// Fluent Bit does not trim list entries.
			s.Props = append(s.Props, Prop{Key: key, Value: item.Value, File: file, Line: item.Line})
		case yaml.MappingNode:
			g := &Group{Name: key, File: file, Line: item.Line}
			for i := 0; i+1 < len(item.Content); i += 2 {
				gk, gv := resolve(item.Content[i]), resolve(item.Content[i+1])
				k, ok := p.key(file, gk)
				if !ok {
					continue
				}
				switch gv.Kind {
				case yaml.ScalarNode:
					g.Props = append(g.Props, Prop{Key: k, Value: trimC(gv.Value), File: file, Line: gv.Line})
				case yaml.SequenceNode:
					for _, e := range gv.Content {
						e = resolve(e)
						if e.Kind != yaml.ScalarNode {
							if !lenient {
								p.errs.add(file, e.Line, k, "list entries must be scalars")
							}
							continue
						}
						g.Props = append(g.Props, Prop{Key: k, Value: e.Value, File: file, Line: e.Line})
					}
				default:
					if !lenient {
						p.errs.add(file, gv.Line, k, "a map is not a valid property value")
					}
				}
			}
			s.Groups = append(s.Groups, g)
		default:
			if !lenient {
				p.errs.add(file, item.Line, key, "nested lists are not a valid property value")
			}
		}
	}
}

// key translates a property name with Fluent Bit's YAML rule.
func (p *yamlParser) key(file string, kn *yaml.Node) (string, bool) {
	if kn.Kind != yaml.ScalarNode {
		p.errs.add(file, kn.Line, "", "property names must be strings")
		return "", false
	}
	key := trimC(yamlKey(kn.Value))
	if key == "" {
		p.errs.add(file, kn.Line, "", "empty property name")
		return "", false
	}
	return key, true
}

// yamlKey is flb_cf_key_translate for YAML: a key that starts with a
// lowercase letter, has no '_' and has uppercase letters is camelCase and
// becomes snake_case (logLevel → log_level); a key with '_' that starts
// lowercase is lowercased; a key that does not start lowercase is verbatim.
func yamlKey(k string) string {
	if k == "" || !('a' <= k[0] && k[0] <= 'z') {
		return k
	}
	if strings.IndexByte(k, '_') >= 0 {
		return asciiLower(k)
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// plugins: a list of shared-object paths, kept as one [PLUGINS]-like section
// with a repeated "path" property.
func (p *yamlParser) plugins(file, header string, k, v *yaml.Node) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.SequenceNode {
		p.errs.add(file, v.Line, "", "'plugins' must be a list of paths, not %s", kindName(v))
		return
	}
	s := &Section{Type: TypePlugins, Header: header, File: file, Line: k.Line}
	for _, item := range v.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode {
			p.errs.add(file, item.Line, "", "each entry of 'plugins' must be a path, not %s", kindName(item))
			continue
		}
		s.Props = append(s.Props, Prop{Key: "path", Value: trimC(item.Value), File: file, Line: item.Line})
	}
	p.add(s)
}

// env: a map NAME: value, or a list of {name, value} / {name, uri} entries.
func (p *yamlParser) env(file string, v *yaml.Node) {
	switch {
	case isNull(v):
	case v.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := resolve(v.Content[i]), resolve(v.Content[i+1])
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				p.errs.add(file, k.Line, "", "env variable names must be non-empty strings")
				continue
			}
			if val.Kind != yaml.ScalarNode {
				p.errs.add(file, val.Line, k.Value, "env value must be a scalar, not %s", kindName(val))
				continue
			}
			p.cfg.Env[k.Value] = scalarText(val)
		}
	case v.Kind == yaml.SequenceNode:
		for _, item := range v.Content {
			item = resolve(item)
			if item.Kind != yaml.MappingNode {
				p.errs.add(file, item.Line, "", "each env entry must be a map with 'name' and 'value' or 'uri'")
				continue
			}
			p.envEntry(file, item)
		}
	default:
		p.errs.add(file, v.Line, "", "'env' must be a map or a list, not %s", kindName(v))
	}
}

func (p *yamlParser) envEntry(file string, item *yaml.Node) {
	var name, value, uri *yaml.Node
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, val := resolve(item.Content[i]), resolve(item.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errs.add(file, k.Line, "", "env entry keys must be strings")
			continue
		}
		if val.Kind != yaml.ScalarNode {
			p.errs.add(file, val.Line, k.Value, "env entry values must be scalars")
			continue
		}
		switch asciiLower(k.Value) {
		case "name":
			name = val
		case "value":
			value = val
		case "uri":
			uri = val
		case "refresh_interval", "refreshinterval":
			// file-backed secrets are read once here; refreshing is the caller's business
		default:
			p.errs.add(file, k.Line, k.Value, "unknown env entry key")
		}
	}
	if name == nil || name.Value == "" {
		p.errs.add(file, item.Line, "", "env entry without a 'name'")
		return
	}
	switch {
	case value != nil && uri != nil:
		p.errs.add(file, item.Line, name.Value, "env entry has both 'value' and 'uri'")
	case value != nil:
		p.cfg.Env[name.Value] = scalarText(value)
	case uri != nil:
		const scheme = "file://"
		if !strings.HasPrefix(uri.Value, scheme) {
			p.errs.add(file, uri.Line, name.Value, "unsupported env uri %q (only file:// is supported)", uri.Value)
			return
		}
		path := uri.Value[len(scheme):]
		if !filepath.IsAbs(path) && file != "" {
			path = filepath.Join(filepath.Dir(file), path)
		}
		data, err := readConfigFile(p.files.fsys, path)
		if err != nil {
			p.errs.add(file, uri.Line, name.Value, "env uri %q: %v", uri.Value, err)
			return
		}
		p.cfg.Env[name.Value] = strings.TrimRight(string(data), "\r\n")
		p.cfg.Files = append(p.cfg.Files, path)
	default:
		p.cfg.Env[name.Value] = ""
	}
}

func scalarText(n *yaml.Node) string { return n.Value }

// includes: a list of paths or globs relative to the including file.
func (p *yamlParser) includes(file string, v *yaml.Node) {
	var items []*yaml.Node
	switch {
	case isNull(v):
		return
	case v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	default:
		p.errs.add(file, v.Line, "", "'includes' must be a list of paths, not %s", kindName(v))
		return
	}
	dir := ""
	if file != "" {
		dir = filepath.Dir(file)
	}
	for _, item := range items {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode || isNull(item) || trimC(item.Value) == "" {
			p.errs.add(file, item.Line, "", "each include must be a path")
			continue
		}
		pattern := trimC(item.Value)
		if !filepath.IsAbs(pattern) && dir != "" {
			pattern = filepath.Join(dir, pattern)
		}
		paths := []string{pattern}
		if hasGlob(pattern) {
			m, err := p.files.glob(pattern)
			if err != nil {
				p.errs.add(file, item.Line, "", "includes: %v", err)
				continue
			}
			paths = m
		}
		for _, path := range paths {
			if p.files.count() >= maxFiles {
				p.errs.add(file, item.Line, "", "includes: too many configuration files (limit %d)", maxFiles)
				p.stop = true
				return
			}
			data, err := p.files.open(path)
			if err != nil {
				p.errs.add(file, item.Line, "", "includes: %v", err)
				continue
			}
			p.cfg.includedAt[path] = filePos{file: file, line: item.Line}
			p.parseFile(path, data)
			if p.stop {
				return
			}
		}
	}
}
