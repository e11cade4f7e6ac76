// Package recordaccessor holds what Floe's record filters (grep, modify,
// record_modifier) share with Fluent Bit's core: the record accessor syntax
// ($key['sub'][0]) and its lookup rules (src/flb_record_accessor.c,
// src/flb_ra_key.c, src/record_accessor/ra.l, ra.y), Fluent Bit's regular
// expression options (src/flb_regex.c, translated to Go's RE2), the value
// splitters (flb_utils_split, flb_utils_split_quoted, flb_slist_split_tokens)
// and a few readers of raw MessagePack, so the filters can work on a record's
// encoded bytes without decoding it.
package recordaccessor

import (
	"fmt"
	"math"
	"strings"
)

// Subkey is one [...] step of a record accessor: a map key or an array index.
type Subkey struct {
	Key     string
	Index   int
	IsIndex bool
}

// Accessor is a compiled record accessor pattern as the filters use it: only
// its first component locates a value (flb_ra_regex_match and
// flb_ra_get_kv_pair look at the first entry of the parsed list only).
//
// The first component is, as in Fluent Bit:
//   - for "$key['a'][0]": the key "key" with its subkeys;
//   - for text not starting with '$': the text up to the first '$' (or all
//     of it) as a plain top-level key: "log" or "Mem.used" name that key;
//   - for "$TAG", "$TAG[n]", "$0".."$9" or "" (and "$" alone): nothing, so
//     the accessor never finds a value.
//
// A '$' component ends at the first '.', ' ', ',' or '"' (a '.' inside an odd
// number of single quotes does not end it), so "$log.level" names the key
// "log" exactly as Fluent Bit does; nested keys need the ['...'] form.
type Accessor struct {
	Pattern string
	Key     string
	Subkeys []Subkey
	// Found reports whether the first component names a key at all.
	Found bool
	// Warnings are the complaints Fluent Bit logs while parsing (bad input
	// characters, which its lexer skips) without rejecting the pattern.
	Warnings []string
}

// Parse compiles a record accessor pattern. It fails where flb_ra_create
// returns NULL: when a '$' component does not parse as $IDENT followed by
// ['string'] or [integer] steps.
func Parse(pattern string) (*Accessor, error) {
	a := &Accessor{Pattern: pattern}
	first := true
	take := func(key string, subkeys []Subkey, hasKey bool) {
		if first {
			a.Key, a.Subkeys, a.Found = key, subkeys, hasKey
			first = false
		}
	}
	buf := pattern
	n := len(buf)
	pre, end, i := 0, 0, 0
	// This loop follows ra_parse_buffer() step by step, including its
	// bookkeeping of pre/end, because which text becomes the first
	// component depends on it.
	for i = 0; i < n; i++ {
		if buf[i] != '$' {
			continue
		}
		if i > pre {
			take(buf[pre:i], nil, true) // literal string component
		}
		pre = i
		next := i + 1
		if next >= n {
			break
		}
		if isDigit(buf[next]) { // $0..$9: regex capture reference
			take("", nil, false)
			i++
			pre = i + 1
			continue
		}
		if next+2 < n && buf[next:next+3] == "TAG" {
			if next+4 < n {
				end = -1
				if buf[next+3] == '[' {
					t := next + 3
					end = strings.IndexByte(buf[t:], ']')
					take("", nil, false) // $TAG[n]
					i = t + end + 1
					pre = i
					continue
				}
			}
			take("", nil, false) // $TAG
			i = next + 3
			pre = next + 3
			continue
		}
		quotes := 0
		for end = i + 1; end < n; end++ {
			c := buf[end]
			if c == '\'' {
				quotes++
			} else if c == '.' && quotes&1 == 1 {
				continue
			} else if c == '.' || c == ' ' || c == ',' || c == '"' {
				break
			}
		}
		key, subkeys, warns, err := parseMeta(buf[i:end])
		a.Warnings = append(a.Warnings, warns...)
		if err != nil {
			return nil, fmt.Errorf("invalid record accessor %q: %v", pattern, err)
		}
		take(key, subkeys, true)
		pre = end
		i = end
	}
	if (i-1 > end && pre < i) || i == 1 {
		take(buf[pre:], nil, true)
	}
	return a, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Token kinds of the record accessor lexer (ra.l).
const (
	tokIdent  = 'I'
	tokString = 'S'
	tokInt    = 'N'
)

type token struct {
	kind byte // tokIdent, tokString, tokInt or the character itself
	text string
	num  int
}

// lexMeta tokenizes one '$' component as ra.l does: integers, 'quoted'
// strings (a doubled quote stands for one), identifiers
// [_A-Za-z][A-Za-z0-9_.]*, the single characters $ [ ] . , ; and ignored
// blanks and newlines. Any other byte is reported and skipped, as Fluent
// Bit's lexer does.
func lexMeta(s string) (toks []token, warns []string) {
	for p := 0; p < len(s); {
		c := s[p]
		switch {
		case c == '0':
			toks = append(toks, token{kind: tokInt})
			p++
		case c >= '1' && c <= '9':
			q := p
			for q < len(s) && isDigit(s[q]) {
				q++
			}
			toks = append(toks, token{kind: tokInt, num: atoiClamp(s[p:q])})
			p = q
		case c == '\'':
			if end := stringEnd(s, p); end > 0 {
				inner := s[p+1 : end-1]
				toks = append(toks, token{kind: tokString, text: strings.ReplaceAll(inner, "''", "'")})
				p = end
				continue
			}
			warns = append(warns, fmt.Sprintf("bad input character '%c'", c))
			p++
		case c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z'):
			q := p + 1
			for q < len(s) && (s[q] == '_' || s[q] == '.' || isDigit(s[q]) || (s[q]|0x20 >= 'a' && s[q]|0x20 <= 'z')) {
				q++
			}
			toks = append(toks, token{kind: tokIdent, text: s[p:q]})
			p = q
		case c == '$' || c == '[' || c == ']' || c == '.' || c == ',' || c == ';':
			toks = append(toks, token{kind: c})
			p++
		case c == ' ' || c == '\t' || c == '\n':
			p++
		default:
			warns = append(warns, fmt.Sprintf("bad input character %q", string(c)))
			p++
		}
	}
	return toks, warns
}

// stringEnd returns the end (exclusive) of the longest 'quoted' string
// starting at s[p], or -1. Inside, quotes come in pairs; the closing quote is
// the first of an odd run, or the last-but-one of an even run that is
// followed by no longer string (flex takes the longest match).
func stringEnd(s string, p int) int {
	best := -1
	for j := p + 1; j < len(s); {
		if s[j] != '\'' {
			j++
			continue
		}
		r := 0
		for j+r < len(s) && s[j+r] == '\'' {
			r++
		}
		if r%2 == 1 {
			return j + r
		}
		best = j + r - 1
		j += r
	}
	return best
}

func atoiClamp(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
		if v >= math.MaxInt32 {
			return math.MaxInt32
		}
	}
	return v
}

// parseMeta parses "$IDENT" followed by ['string'] or [integer] steps, the
// only sentence ra.y accepts.
func parseMeta(s string) (key string, subkeys []Subkey, warns []string, err error) {
	toks, warns := lexMeta(s)
	if len(toks) < 2 || toks[0].kind != '$' || toks[1].kind != tokIdent {
		return "", nil, warns, fmt.Errorf("syntax error in %q: expected $ followed by a key name", s)
	}
	key = toks[1].text
	for i := 2; i < len(toks); i += 3 {
		if i+2 >= len(toks) || toks[i].kind != '[' || toks[i+2].kind != ']' {
			return "", nil, warns, fmt.Errorf("syntax error in %q: expected ['key'] or [index]", s)
		}
		switch t := toks[i+1]; t.kind {
		case tokString:
			subkeys = append(subkeys, Subkey{Key: t.text})
		case tokInt:
			subkeys = append(subkeys, Subkey{Index: t.num, IsIndex: true})
		default:
			return "", nil, warns, fmt.Errorf("syntax error in %q: expected ['key'] or [index]", s)
		}
	}
	return key, subkeys, warns, nil
}

// Get returns the encoded value the accessor names in body (an encoded
// map), as flb_ra_get_kv_pair does:
//   - the top-level key is the last pair whose key is a string equal to Key
//     (binary and other keys never match);
//   - subkeys are followed only when that value is a map or an array; on a
//     scalar they are ignored and the scalar itself is returned;
//   - every subkey must then resolve (again the last equal string key of a
//     map, or an index within an array), else nothing is found.
func (a *Accessor) Get(body []byte) ([]byte, bool) {
	if a == nil || !a.Found {
		return nil, false
	}
	v, ok := lookupKey(body, a.Key)
	if !ok {
		return nil, false
	}
	return Follow(v, a.Subkeys)
}

// Follow resolves subkeys from v, the value of an accessor's top key, as
// Get does: from a scalar they are ignored and the scalar is returned; from
// a map or an array each must resolve. Filters that find several top keys
// in one pass over a record use it to finish each lookup.
func Follow(v []byte, subkeys []Subkey) ([]byte, bool) {
	if len(subkeys) == 0 || !isContainer(v) {
		return v, true
	}
	var ok bool
	for _, sk := range subkeys {
		if sk.IsIndex {
			if sk.Index == math.MaxInt32 {
				return nil, false
			}
			if v, ok = arrayElem(v, sk.Index); !ok {
				return nil, false
			}
			continue
		}
		if v, ok = lookupKey(v, sk.Key); !ok {
			return nil, false
		}
	}
	return v, true
}

// MatchString reports whether the accessor's value is a MessagePack string
// that match accepts, as flb_ra_regex_match does: a missing key, a binary, a
// number, a boolean or a container is never a match.
func (a *Accessor) MatchString(body []byte, match func([]byte) bool) bool {
	v, ok := a.Get(body)
	if !ok {
		return false
	}
	s, ok := Str(v)
	return ok && match(s)
}
