package parser

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
)

// section builds a [PARSER] section from "key value" lines; the first line
// is line 10 of parsers.conf.
func section(lines ...string) *config.Section {
	s := &config.Section{Type: config.TypeParser, Header: "PARSER", File: "parsers.conf", Line: 9}
	for i, l := range lines {
		k, v, _ := strings.Cut(l, " ")
		s.Props = append(s.Props, config.Prop{Key: k, Value: strings.TrimSpace(v), File: "parsers.conf", Line: 10 + i})
	}
	return s
}

// fixedNow is the clock of the tests: 2024-03-15 12:00:00 UTC.
var fixedNow = time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC)

func mustNew(t *testing.T, lines ...string) *Parser {
	t.Helper()
	p, err := New(section(lines...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.setNow(func() time.Time { return fixedNow })
	return p
}

// render shows a value as a user reads it, with its Go type where it matters.
func render(v any) string {
	switch v := v.(type) {
	case event.Map:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = strconv.Quote(p.Key) + ":" + render(p.Value)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		return strconv.Quote(v)
	case float64:
		return "f" + strconv.FormatFloat(v, 'g', -1, 64)
	case uint64:
		return "u" + strconv.FormatUint(v, 10)
	}
	return fmt.Sprint(v)
}

// utc renders a time as RFC 3339 with nanoseconds, or "-" for none.
func utc(t event.Time) string {
	if t == (event.Time{}) {
		return "-"
	}
	return t.Std().UTC().Format(time.RFC3339Nano)
}

func sortedErrs(l config.ErrorList) []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.Error()
	}
	sort.Strings(out)
	return out
}
