package tag

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Matcher is a compiled Match / Match_Regex pair, the routing condition of a
// Fluent Bit filter or output. A tag matches if it matches Match (see [Match])
// OR Match_Regex. A Matcher with neither never matches (Fluent Bit warns "NO
// match for ... instance"); the one-input-one-output "Match *" default is the
// configuration's business, not this package's.
//
// Match_Regex follows flb_regex_create and router_match:
//
//   - it is anchored at the start of the tag only: regex "app" matches
//     "application" (onig_match at position 0);
//   - a match of length zero counts as no match ("x*" never routes "app", and
//     neither does "a*?" or "|app": the match the regex prefers is empty);
//   - "/re/opts" with opts made of 'i' (ignore case), 'm' (dot matches
//     newline, Ruby's multiline), 'x' (extended: unescaped white space and
//     '#' comments outside brackets are ignored) and 'o' (ignored) selects
//     those options; "/re/" is just re;
//   - '^' and '$' match at line boundaries, as in Ruby.
//
// Fluent Bit compiles with Onigmo (Ruby syntax); Floe uses Go's regexp (RE2
// syntax). Common expressions behave the same; Onigmo-only constructs such as
// look-around, back-references, possessive quantifiers, \h or \Z are compile
// errors rather than silently different behaviour.
//
// A Matcher is immutable and safe for concurrent use.
type Matcher struct {
	match    string // Match pattern; "" = not set
	regexSrc string // Match_Regex as configured; "" = not set
	re       *regexp.Regexp
	reMode   regexMode
}

type regexMode uint8

const (
	regexNone regexMode = iota
	// regexAnchoredNonEmpty: re is anchored and can never match the empty
	// string, so any match is a routing match (MatchString, no allocation).
	regexAnchoredNonEmpty
	// regexAnchored: re is anchored but may prefer an empty match; the match
	// length decides.
	regexAnchored
	// regexUnanchored: the anchored wrapper could not be built (e.g. an
	// unterminated \Q); leftmost-first search must start at 0 and be
	// non-empty, which is the same match the anchored search would find.
	regexUnanchored
)

// NewMatcher compiles a Match pattern and a Match_Regex expression; either or
// both may be empty, meaning not set (Fluent Bit treats an empty property value
// as unset). A Match_Regex that does not compile is an error naming it.
func NewMatcher(match, matchRegex string) (*Matcher, error) {
	m := &Matcher{match: match, regexSrc: matchRegex}
	if matchRegex == "" {
		return m, nil
	}
	re, mode, err := compileRegex(matchRegex)
	if err != nil {
		return nil, fmt.Errorf("tag: invalid Match_Regex %q: %w", matchRegex, err)
	}
	m.re, m.reMode = re, mode
	return m, nil
}

// Match reports whether tag is routed by m: Match_Regex is tried first, as in
// Fluent Bit, then Match. A nil or empty Matcher never matches.
func (m *Matcher) Match(tag string) bool {
	if m == nil {
		return false
	}
	switch m.reMode {
	case regexAnchoredNonEmpty:
		if m.re.MatchString(tag) {
			return true
		}
	case regexAnchored:
		if loc := m.re.FindStringIndex(tag); loc != nil && loc[1] > 0 {
			return true
		}
	case regexUnanchored:
		if loc := m.re.FindStringIndex(tag); loc != nil && loc[0] == 0 && loc[1] > 0 {
			return true
		}
	}
	return m.match != "" && Match(m.match, tag)
}

// Empty reports whether neither Match nor Match_Regex is set; such a Matcher
// never matches. A nil Matcher is empty.
func (m *Matcher) Empty() bool {
	return m == nil || (m.match == "" && m.regexSrc == "")
}

// Pattern returns the Match pattern ("" when not set).
func (m *Matcher) Pattern() string {
	if m == nil {
		return ""
	}
	return m.match
}

// Regex returns the Match_Regex expression as configured ("" when not set).
func (m *Matcher) Regex() string {
	if m == nil {
		return ""
	}
	return m.regexSrc
}

// SubjectFilters returns NATS subject filter tails whose union accepts every
// subject ToSubject(t) with m.Match(t): nil for an empty Matcher, [">"] when
// Match_Regex is set, otherwise [SubjectFilter(Match)].
func (m *Matcher) SubjectFilters() []string {
	switch {
	case m.Empty():
		return nil
	case m.regexSrc != "":
		return []string{">"}
	default:
		return []string{SubjectFilter(m.match)}
	}
}

// String describes m for logs, e.g. `Match "app.*" or Match_Regex "^kube"`.
func (m *Matcher) String() string {
	switch {
	case m.Empty():
		return "no Match or Match_Regex"
	case m.regexSrc == "":
		return fmt.Sprintf("Match %q", m.match)
	case m.match == "":
		return fmt.Sprintf("Match_Regex %q", m.regexSrc)
	default:
		return fmt.Sprintf("Match %q or Match_Regex %q", m.match, m.regexSrc)
	}
}

// compileRegex turns a Fluent Bit Match_Regex into a Go regexp anchored at the
// start of the text.
func compileRegex(src string) (*regexp.Regexp, regexMode, error) {
	body, ignoreCase, dotNL, extended := splitRegexOptions(src)
	if extended {
		body = stripExtended(body)
	}
	flags := "m" // Ruby: ^ and $ are always line anchors
	if dotNL {
		flags += "s"
	}
	if ignoreCase {
		flags += "i"
	}
	// The expression must be valid on its own; this also guarantees that the
	// wrapper below cannot change its meaning (an unbalanced ')' would).
	plain, err := regexp.Compile("(?" + flags + ")" + body)
	if err != nil {
		return nil, regexNone, err
	}
	wrapped := `\A(?` + flags + ":" + body + ")"
	anchored, err := regexp.Compile(wrapped)
	if err != nil {
		// Only reachable when body swallows the closing parenthesis (an
		// unterminated \Q...): search unanchored and require position 0.
		return plain, regexUnanchored, nil
	}
	mode := regexAnchored
	if tree, err := syntax.Parse(wrapped, syntax.Perl); err == nil && !canMatchEmpty(tree) {
		mode = regexAnchoredNonEmpty
	}
	return anchored, mode, nil
}

// splitRegexOptions mirrors check_option and str_to_regex in src/flb_regex.c:
// "/re/" → re; "/re/opts" → re with options when opts is a non-empty run of
// 'm', 'i', 'o', 'x' holding at least one of 'm', 'i', 'x'; anything else is
// the expression as written.
func splitRegexOptions(src string) (body string, ignoreCase, dotNL, extended bool) {
	if len(src) == 0 || src[0] != '/' {
		return src, false, false, false
	}
	if last := strings.LastIndexByte(src, '/'); last > 0 {
		opts := src[last+1:]
		valid, any := true, false
		for i := 0; i < len(opts); i++ {
			switch opts[i] {
			case 'm':
				dotNL, any = true, true
			case 'i':
				ignoreCase, any = true, true
			case 'x':
				extended, any = true, true
			case 'o':
			default:
				valid = false
			}
		}
		if valid && any {
			return src[1:last], ignoreCase, dotNL, extended
		}
		ignoreCase, dotNL, extended = false, false, false
	}
	if len(src) >= 2 && src[len(src)-1] == '/' {
		return src[1 : len(src)-1], false, false, false
	}
	if src == "/" {
		// Fluent Bit strips both ends of "/" and compiles an empty
		// expression, which only ever matches zero bytes: never routes.
		return "", false, false, false
	}
	return src, false, false, false
}

// stripExtended removes what Onigmo's extended mode ignores: unescaped white
// space and '#' comments (to the end of the line) outside bracket expressions.
func stripExtended(s string) string {
	var b strings.Builder
	depth := 0 // bracket nesting (Onigmo allows nested classes)
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

// canMatchEmpty reports whether re may match the empty string somewhere. It
// errs towards true, which only costs the slower exact path.
func canMatchEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return false
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return canMatchEmpty(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || canMatchEmpty(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !canMatchEmpty(sub) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if canMatchEmpty(sub) {
				return true
			}
		}
		return false
	}
	return true
}
