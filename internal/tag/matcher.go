package tag

import (
	"fmt"
	"github.com/floe-io/floe/internal/onig"
	"regexp"
	"regexp/syntax"
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
// start of the text. The expression is read as flb_regex.c reads it (package
// onig); "/" alone is Fluent Bit's empty expression, which never routes.
func compileRegex(src string) (*regexp.Regexp, regexMode, error) {
	if src == "/" {
		src = "//"
	}
	body, opts, err := onig.Source(src)
	if err != nil {
		return nil, regexNone, err
	}
	flags := "m" + opts // Ruby: ^ and $ are always line anchors
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
