package parser

import (
	"bytes"
	"github.com/floe-io/floe/internal/onig"
	"regexp"
	"strings"
)

// regex is a parser's compiled Regex with its named groups.
type regex struct {
	multi  *regexp.Regexp // '^' and '$' at line boundaries, as in Ruby
	single *regexp.Regexp // the same without the multi-line flag, for subjects without '\n'
	groups []group
	count  int // named groups, repeated names included
}

// group is one group name and the indexes of every group that bears it.
type group struct {
	name string
	idx  []int
}

// compileRegex compiles a Fluent Bit (Onigmo, Ruby syntax) regular
// expression for Go's RE2 with onig.Compile, which handles
// the "/re/opts" form, Ruby's line anchors and option letters. Named groups
// (?<name>...) are native in Go; (?'name'...) is rewritten to them. What RE2
// cannot do (look-around, back-references, atomic groups, possessive
// quantifiers) is an error.
//
// Groups are listed in the order their names first appear: Onigmo's name
// table, which Fluent Bit walks, keeps insertion order and lists every group
// of a name together.
func compileRegex(pattern string) (*regex, error) {
	rx, err := onig.Compile(quotedNames(pattern))
	if err != nil {
		return nil, err
	}
	src := rx.String()
	multi, err := regexp.Compile(src)
	if err != nil {
		return nil, err
	}
	r := &regex{multi: multi, single: multi}
	// CompileRegex builds "(?m<flags>)<body>"; without a newline in the
	// subject the body alone matches the same, and anchored expressions run
	// much faster without the multi-line flag.
	if rest, ok := strings.CutPrefix(src, "(?m"); ok {
		if j := strings.IndexByte(rest, ')'); j >= 0 && strings.Trim(rest[:j], "is") == "" {
			flags, body := rest[:j], rest[j+1:]
			if strings.ContainsAny(body, "^$") {
				if flags != "" {
					body = "(?" + flags + ")" + body
				}
				if single, err := regexp.Compile(body); err == nil {
					r.single = single
				}
			}
		}
	}
	pos := map[string]int{}
	for i, name := range multi.SubexpNames() {
		if name == "" {
			continue
		}
		r.count++
		if k, ok := pos[name]; ok {
			r.groups[k].idx = append(r.groups[k].idx, i)
			continue
		}
		pos[name] = len(r.groups)
		r.groups = append(r.groups, group{name: name, idx: []int{i}})
	}
	return r, nil
}

// find returns the submatch indexes of the first match, or nil.
func (r *regex) find(b []byte) []int {
	if r.single != r.multi && bytes.IndexByte(b, '\n') < 0 {
		return r.single.FindSubmatchIndex(b)
	}
	return r.multi.FindSubmatchIndex(b)
}

// quotedNames rewrites Onigmo's (?'name'...) groups to (?<name>...),
// outside bracket expressions and escapes.
func quotedNames(s string) string {
	if !strings.Contains(s, "(?'") {
		return s
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteByte(c)
			i++
			b.WriteByte(s[i])
			continue
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case depth == 0 && c == '(' && strings.HasPrefix(s[i:], "(?'"):
			if end := strings.IndexByte(s[i+3:], '\''); end >= 0 {
				b.WriteString("(?<" + s[i+3:i+3+end] + ">")
				i += 3 + end
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
