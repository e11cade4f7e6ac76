package recordaccessor

import (
	"errors"
	"strings"
)

// Split splits a property value the way flb_utils_split(line, ' ', maxSplit)
// does (grep's "KEY REGEX"): leading separators before each token are
// skipped, a token runs to the next separator, and once maxSplit tokens are
// taken (maxSplit > 0) the rest of the line after the single separator that
// ended the last token becomes one more entry, verbatim: "log  aa" gives
// "log" and " aa".
func Split(line string, maxSplit int) []string {
	out, _ := split(line, ' ', maxSplit, false)
	return out
}

// SplitQuoted is flb_utils_split_quoted(line, ' ', maxSplit) (modify's
// rules): as Split, but a token that starts with ' or " runs to the matching
// quote, which is dropped; inside it \" (or \') and \\ stand for the quote
// and the backslash. An unterminated quote is an error.
func SplitQuoted(line string, maxSplit int) ([]string, error) {
	return split(line, ' ', maxSplit, true)
}

var errUnterminated = errors.New("unterminated quoted string")

func split(line string, sep byte, maxSplit int, quoted bool) ([]string, error) {
	var out []string
	n := len(line)
	count := 0
	for i := 0; i < n; {
		tok, adv, err := nextToken(line[i:], sep, quoted)
		if err != nil {
			return nil, err
		}
		out = append(out, tok)
		count++
		i += adv + 1 // past the character that ended the token
		if maxSplit > 0 && count >= maxSplit && i < n {
			out = append(out, line[i:])
			break
		}
	}
	return out, nil
}

// nextToken returns the token at the start of s and the offset of the
// character that ended it (the separator, the closing quote, or len(s)).
func nextToken(s string, sep byte, quoted bool) (string, int, error) {
	p := 0
	for p < len(s) && s[p] == sep {
		p++
	}
	if !quoted || p >= len(s) || (s[p] != '"' && s[p] != '\'') {
		end := strings.IndexByte(s[p:], sep)
		if end <= 0 {
			end = len(s) - p
		}
		return s[p : p+end], p + end, nil
	}
	q := s[p]
	var b strings.Builder
	for j := p + 1; j < len(s); j++ {
		c := s[j]
		if c == '\\' && j+1 < len(s) && (s[j+1] == q || s[j+1] == '\\') {
			j++
			b.WriteByte(s[j])
			continue
		}
		if c == q {
			return b.String(), j, nil
		}
		b.WriteByte(c)
	}
	return "", 0, errUnterminated
}

// SplitTokens is flb_slist_split_tokens(list, s, maxSplit), which Fluent Bit
// uses for space-separated list properties (record_modifier's "Record KEY
// VALUE" is a list of at most 2 splits): tokens are separated by spaces; a
// token starting with " runs to the next " not preceded by a backslash, and
// \" inside it is a quote (an unterminated quoted token runs to the end, as
// written); after maxSplit tokens the rest, with leading spaces skipped, is
// one more entry.
func SplitTokens(s string, maxSplit int) []string {
	var out []string
	rest, more := s, true
	count := 0
	for more {
		var tok string
		var ok bool
		tok, rest, more, ok = tokenRetrieve(rest)
		if !ok {
			break
		}
		out = append(out, tok)
		if !more {
			break
		}
		count++
		if maxSplit > 0 && count >= maxSplit {
			r := strings.TrimLeft(rest, " ")
			if r != "" {
				out = append(out, r)
			}
			break
		}
	}
	return out
}

// tokenRetrieve ports token_retrieve from src/flb_slist.c. more is false when
// the input is used up (Fluent Bit's *str = NULL); ok is false when there was
// no token.
func tokenRetrieve(s string) (tok, rest string, more, ok bool) {
	p := 0
	for p < len(s) && s[p] == ' ' {
		p++
	}
	start := p
	isQuoted := false
	if p < len(s) && s[p] == '"' {
		isQuoted = true
		p++
		start = p
		for {
			for p < len(s) && s[p] != '"' {
				p++
			}
			if p >= len(s) || s[p-1] != '\\' {
				break
			}
			p++
		}
	} else {
		for p < len(s) && s[p] != ' ' {
			p++
		}
	}
	if p < len(s) {
		tok = s[start:p]
		if isQuoted {
			tok = strings.ReplaceAll(tok, `\"`, `"`)
		}
		p++
		for p < len(s) && s[p] == ' ' {
			p++
		}
		return tok, s[p:], true, true
	}
	if p > start {
		return s[start:], "", false, true
	}
	return "", "", false, false
}
