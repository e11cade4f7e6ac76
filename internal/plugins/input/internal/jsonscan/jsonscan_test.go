package jsonscan

import (
	"strings"
	"testing"
)

func TestScanValue(t *testing.T) {
	for _, c := range []struct {
		in    string
		atEOF bool
		end   int
		err   string
	}{
		{`{}`, false, 2, ""},
		{`{"a":[1,{"b":"c\"}"}]} x`, false, 22, ""},
		{`{"a":`, false, 0, "incomplete"},
		{`123`, false, 0, "incomplete"},
		{`123`, true, 3, ""},
		{`123 `, false, 3, ""},
		{`tru`, false, 0, "incomplete"},
		{`trux`, false, 0, "invalid literal"},
		{`{a:1}`, false, 0, "expected an object key"},
		{"\"ab\ncd\"", false, 0, "control character"},
		{`[1 2]`, false, 0, "expected ','"},
		{`hello`, false, 0, "unexpected"},
	} {
		end, err := Value([]byte(c.in), 0, c.atEOF)
		switch {
		case c.err == "" && (err != nil || end != c.end):
			t.Errorf("%q: end %d err %v, want end %d", c.in, end, err, c.end)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: err %v, want %q", c.in, err, c.err)
		}
	}
}
