// Package onig compiles Fluent Bit's regular expressions (Onigmo, Ruby
// syntax, with flb_regex.c's "/re/opts" form) for Go's RE2, for every place
// Floe takes one: Match_Regex, grep, modify, parsers.
package onig

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Regex is a compiled Fluent Bit regular expression. It is safe for
// concurrent use.
type Regex struct {
	multi *regexp.Regexp // '^' and '$' at line boundaries, as in Ruby
	// single is the same expression without the multi-line flag, used when
	// the subject holds no newline: the matches are then identical, and an
	// anchored expression runs many times faster.
	single *regexp.Regexp
}

// Match reports whether the expression matches somewhere in b.
func (r *Regex) Match(b []byte) bool {
	if r.single != r.multi && bytes.IndexByte(b, '\n') >= 0 {
		return r.multi.Match(b)
	}
	return r.single.Match(b)
}

// MatchString reports whether the expression matches somewhere in s.
func (r *Regex) MatchString(s string) bool {
	if r.single != r.multi && strings.IndexByte(s, '\n') >= 0 {
		return r.multi.MatchString(s)
	}
	return r.single.MatchString(s)
}

// FindSubmatch returns the leftmost match in b and its groups (nil for a
// group that took no part), or nil when there is none.
func (r *Regex) FindSubmatch(b []byte) [][]byte {
	if r.single != r.multi && bytes.IndexByte(b, '\n') >= 0 {
		return r.multi.FindSubmatch(b)
	}
	return r.single.FindSubmatch(b)
}

// String returns the Go expression used for subjects with newlines.
func (r *Regex) String() string { return r.multi.String() }

// Compile compiles a regular expression the way flb_regex_create does,
// for Go's regexp package:
//
//   - "/re/opts", with opts a non-empty run of 'i' (ignore case), 'm' (dot
//     matches newline: Ruby's multiline), 'x' (extended: unescaped blanks and
//     '#' comments outside brackets are ignored) and 'o' (ignored) holding at
//     least one of 'i', 'm', 'x', selects those options; "/re/" is re; any
//     other text is the expression as written ("/re/q" and "/re/o" included);
//   - '^' and '$' match at line boundaries, as they always do in Ruby syntax;
//   - inline option groups "(?m)", "(?i-m:...)" take Ruby's meaning ('m' is
//     dot-matches-newline);
//   - \h, \H (hex digit), \Z (end or before a final newline) and \e (escape)
//     are rewritten to RE2 equivalents.
//
// RE2 differs from Onigmo: look-around, back-references, atomic groups,
// possessive and nested quantifiers ("a**"), \K, \G, \R, \X, absent
// operators and conditionals do not compile, so such a pattern is a
// configuration error in Floe where Fluent Bit would accept it. \s in RE2
// does not include \v. Everything else common to both behaves the same.
func Compile(pattern string) (*Regex, error) {
	body, flags, err := Source(pattern)
	if err != nil {
		return nil, err
	}
	multi, err := regexp.Compile("(?m" + flags + ")" + body)
	if err != nil {
		return nil, fmt.Errorf("%v (Floe uses Go's RE2 syntax: no look-around, back-references or possessive quantifiers)", err)
	}
	r := &Regex{multi: multi, single: multi}
	if strings.ContainsAny(body, "^$") {
		if flags != "" {
			flags = "(?" + flags + ")"
		}
		if r.single, err = regexp.Compile(flags + body); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Source turns a Fluent Bit expression into an RE2 body and the RE2 flag
// letters its options ask for ("i" ignore case, "s" dot matches newline);
// callers add "m", since '^' and '$' are line anchors in Ruby syntax.
func Source(pattern string) (body, flags string, err error) {
	body, ignoreCase, dotNL, extended, err := splitOptions(pattern)
	if err != nil {
		return "", "", err
	}
	if extended {
		body = stripExtended(body)
	}
	if body, err = translate(body); err != nil {
		return "", "", err
	}
	if ignoreCase {
		flags += "i"
	}
	if dotNL {
		flags += "s"
	}
	return body, flags, nil
}

// splitOptions mirrors check_option and str_to_regex in src/flb_regex.c.
func splitOptions(src string) (body string, ignoreCase, dotNL, extended bool, err error) {
	if src == "/" {
		// Fluent Bit strips both ends of "/" and hands Onigmo a pattern whose
		// end is before its start.
		return "", false, false, false, fmt.Errorf("invalid regular expression %q", src)
	}
	if len(src) > 0 && src[0] == '/' {
		if last := strings.LastIndexByte(src, '/'); last > 0 {
			valid, any := true, false
			var i, m, x bool
			for _, c := range []byte(src[last+1:]) {
				switch c {
				case 'i':
					i, any = true, true
				case 'm':
					m, any = true, true
				case 'x':
					x, any = true, true
				case 'o':
				default:
					valid = false
				}
			}
			if valid && any {
				return src[1:last], i, m, x, nil
			}
		}
		if len(src) >= 2 && src[len(src)-1] == '/' {
			return src[1 : len(src)-1], false, false, false, nil
		}
	}
	return src, false, false, false, nil
}

// stripExtended removes what Onigmo's extended mode ignores: unescaped white
// space and '#' comments (to the end of the line) outside bracket expressions.
func stripExtended(s string) string {
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
		case depth == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'):
			continue
		case depth == 0 && c == '#':
			for i+1 < len(s) && s[i+1] != '\n' {
				i++
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// translate rewrites the Ruby-only escapes and inline option letters RE2 can
// express. It leaves \Q...\E alone (both engines support it).
func translate(s string) (string, error) {
	if !strings.ContainsAny(s, `\(`) {
		return s, nil
	}
	var b strings.Builder
	depth := 0 // bracket nesting
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'Q':
				end := strings.Index(s[i:], `\E`)
				if end < 0 {
					b.WriteString(s[i-1:])
					return b.String(), nil
				}
				b.WriteString(s[i-1 : i+end+2])
				i += end + 1
			case 'h':
				if depth > 0 {
					b.WriteString("0-9a-fA-F")
				} else {
					b.WriteString("[0-9a-fA-F]")
				}
			case 'H':
				if depth > 0 {
					return "", fmt.Errorf(`\H inside a bracket expression is not supported`)
				}
				b.WriteString("[^0-9a-fA-F]")
			case 'Z':
				if depth > 0 {
					b.WriteString(`\Z`) // RE2 rejects it, as it should
				} else {
					b.WriteString(`(?:\n?\z)`)
				}
			case 'e':
				b.WriteString(`\x1B`)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case c == '[':
			depth++
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal member.
			if i+1 < len(s) && s[i+1] == '^' {
				i++
				b.WriteByte('^')
			}
			if i+1 < len(s) && s[i+1] == ']' {
				i++
				b.WriteByte(']')
			}
		case c == ']' && depth > 0:
			depth--
			b.WriteByte(c)
		case c == '(' && depth == 0 && i+1 < len(s) && s[i+1] == '?':
			j := i + 2
			for j < len(s) && (s[j] == 'i' || s[j] == 'm' || s[j] == 'x' || s[j] == '-') {
				j++
			}
			if j == i+2 || j >= len(s) || (s[j] != ')' && s[j] != ':') {
				b.WriteByte(c)
				continue
			}
			b.WriteString("(?")
			for _, f := range []byte(s[i+2 : j]) {
				switch f {
				case 'm':
					b.WriteByte('s')
				case 'x':
					return "", fmt.Errorf("the inline x option is not supported")
				default:
					b.WriteByte(f)
				}
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
