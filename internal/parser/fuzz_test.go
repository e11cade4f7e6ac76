package parser

import (
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseRegex builds a regex parser from any pattern (with types and a
// time field) and parses any text with it: neither may panic, and a record
// holds only the named groups.
func FuzzParseRegex(f *testing.F) {
	for _, p := range builtinDefs {
		for i := 0; i+1 < len(p); i += 2 {
			if p[i] == "regex" {
				f.Add(p[i+1], `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`)
			}
		}
	}
	f.Add(`^(?<time>\S+) (?<n>\d+) (?<b>\w+)(?<rest>.*)$`, "2024-01-02T03:04:05Z 12 true tail")
	f.Add(`/^(?'a'x+)(?<a>y*)$/mix`, "xx\nyy")
	f.Add(`(?<a>.)\Z`, "abc\n")
	f.Fuzz(func(t *testing.T, pattern, text string) {
		if len(pattern) > 512 || len(text) > 4096 {
			return
		}
		p, err := New(section("name f", "format regex", "regex "+pattern, "time_format %Y-%m-%dT%H:%M:%S%z",
			"types n:integer b:bool h:hex x:float", "skip_empty_values off", "decode_field_as escaped_utf8 rest"))
		if err != nil {
			return
		}
		p.setNow(func() time.Time { return fixedNow })
		tm, m, err := p.Parse([]byte(text))
		if err != nil {
			return
		}
		if tm.Sec < 0 || tm.Sec > 1<<32-1 || tm.Nsec >= 1e9 {
			t.Fatalf("time out of range: %+v", tm)
		}
		names := map[string]bool{}
		for _, g := range p.re.groups {
			names[g.name] = true
		}
		for _, kv := range m {
			if !names[kv.Key] {
				t.Fatalf("key %q is not a group name", kv.Key)
			}
		}
	})
}

// FuzzStrptime parses any time string with any Time_Format, strict or not:
// it may fail but must not panic or give a time Fluent Bit cannot hold.
func FuzzStrptime(f *testing.F) {
	seeds := [][2]string{
		{"%d/%b/%Y:%H:%M:%S %z", "10/Oct/2000:13:55:36 -0700"},
		{"%Y-%m-%dT%H:%M:%S.%L%z", "2020-10-23T12:00:31.415213+09:00"},
		{"%b %d %H:%M:%S", "Jan  5 10:27:10"},
		{"%s.%L", "1700000000.25"},
		{"%c %Z", "Fri Mar  1 01:02:03 2024 CEST"},
		{"%C%y %j %I %p %EY %Od", "20 24 366 12 pm 2024 01"},
		{"%G-%V-%u %U %W %w %g", "2024-11-3 10 10 3 24"},
		{"%D%r%R%T%F%x%X%n%t%%", "01/02/03 01:02:03 AM01:0201:02:032024-01-0201/02/0301:02:03 \t%"},
		{"%z", " GMT"},
		{"%s", "922337203685477579"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, format, value string, lax bool) {
		if len(format) > 256 || len(value) > 256 {
			return
		}
		strict := "on"
		if lax {
			strict = "off"
		}
		p, err := New(section("name f", "format json", "time_format "+format, "time_strict "+strict))
		if err != nil || p.time == nil {
			return
		}
		p.setNow(func() time.Time { return fixedNow })
		tm, err := p.time.lookup(value)
		if err != nil {
			return
		}
		if tm.Sec < 0 || tm.Sec > 1<<32-1 || tm.Nsec >= 1e9 {
			t.Fatalf("time out of range: %+v", tm)
		}
		// The same through the json format: a valid string key is read.
		if utf8.ValidString(value) {
			if _, _, err := p.Parse([]byte(`{"time":` + quoteJSON(value) + `}`)); err != nil {
				t.Fatalf("json: %v", err)
			}
		}
	})
}

func quoteJSON(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&15])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return string(append(b, '"'))
}
