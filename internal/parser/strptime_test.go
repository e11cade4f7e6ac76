package parser

import (
	"testing"
	"time"
)

func TestTimeFormats(t *testing.T) {
	cases := []struct {
		format string
		extra  []string // more parser keys
		in     string
		want   string // RFC 3339 UTC, or "error"
	}{
		// The formats Fluent Bit's stock parsers use.
		{"%d/%b/%Y:%H:%M:%S %z", nil, "10/Oct/2000:13:55:36 -0700", "2000-10-10T20:55:36Z"},
		{"%Y-%m-%dT%H:%M:%S.%L%z", nil, "2020-10-23T12:00:31.415213+09:00", "2020-10-23T03:00:31.415213Z"},
		{"%Y-%m-%dT%H:%M:%S.%L%z", nil, "2017-05-17T15:44:31.187512963Z", "2017-05-17T15:44:31.187512963Z"},
		{"%Y-%m-%dT%H:%M:%S.%L", nil, "2018-03-09T01:01:44.851160855Z", "2018-03-09T01:01:44.851160855Z"},
		{"%Y-%m-%dT%H:%M:%S %z", nil, "2020-01-02T03:04:05 +0530", "2020-01-01T21:34:05Z"},
		{"%Y-%m-%dT%H:%M:%S.%LZ", nil, "2020-01-02T03:04:05.5Z", "2020-01-02T03:04:05.5Z"},
		// Syslog without a year: the current year (UTC), as upstream.
		{"%b %d %H:%M:%S", nil, "Jan  5 10:27:10", "2024-01-05T10:27:10Z"},
		{"%b %d %H:%M:%S", nil, "Dec 31 23:59:59", "2024-12-31T23:59:59Z"},
		{"%b %e %H:%M:%S", nil, "Feb 29 00:00:00", "2024-02-29T00:00:00Z"},
		// Time of day only: today.
		{"%H:%M:%S", nil, "08:09:10", "2024-03-15T08:09:10Z"},
		// %L: at most nine digits; a format ending after %L.
		{"%H:%M:%S,%L", nil, "08:09:10,123", "2024-03-15T08:09:10.123Z"},
		{"%S.%L", nil, "5.1234567891", "2024-03-15T00:00:05.123456789Z"},
		{"%Y %S.%LZ", nil, "2024 5.1234567891Z", "error"},
		// Epoch seconds, with and without a fraction.
		{"%s", nil, "1700000000", "2023-11-14T22:13:20Z"},
		{"%s.%L", nil, "1700000000.25", "2023-11-14T22:13:20.25Z"},
		// Two-digit years: 69-99 are 19xx, 00-68 are 20xx; %C sets the century.
		{"%y-%m-%d", nil, "69-01-01", "error"}, // 1969: before the epoch
		{"%y-%m-%d", nil, "70-01-02", "1970-01-02T00:00:00Z"},
		{"%y-%m-%d", nil, "68-01-01", "2068-01-01T00:00:00Z"},
		{"%C%y-%m-%d", nil, "2101-02-03", "2101-02-03T00:00:00Z"},
		// Day of year, names, 12-hour clock, composites.
		{"%Y %j", nil, "2024 060", "2024-02-29T00:00:00Z"},
		{"%a, %d %B %Y %I:%M:%S %p", nil, "Fri, 15 march 2024 01:02:03 pm", "2024-03-15T13:02:03Z"},
		{"%A %Y-%m-%d %r", nil, "Friday 2024-03-15 12:00:01 AM", "2024-03-15T00:00:01Z"},
		{"%D %T", nil, "03/15/24 01:02:03", "2024-03-15T01:02:03Z"},
		{"%F %R", nil, "2024-03-15 01:02", "2024-03-15T01:02:00Z"},
		{"%c", nil, "Fri Mar  1 01:02:03 2024", "2024-03-01T01:02:03Z"},
		{"%Y-%m-%d%n%H%t%M", nil, "2024-03-15   01 \t02", "2024-03-15T01:02:00Z"},
		{"%Y%%%m", nil, "2024%03", "2024-02-29T00:00:00Z"}, // no day: day 0 is the last of the month before
		// Zones: %z forms, %Z names.
		{"%Y-%m-%d %H:%M %z", nil, "2024-03-15 10:00 -05", "2024-03-15T15:00:00Z"},
		{"%Y-%m-%d %H:%M %z", nil, "2024-03-15 10:00 +05:30", "2024-03-15T04:30:00Z"},
		{"%Y-%m-%d %H:%M %z", nil, "2024-03-15 10:00 UTC", "2024-03-15T10:00:00Z"},
		{"%Y-%m-%d %H:%M %z", nil, "2024-03-15 10:00 PDT", "2024-03-15T17:00:00Z"},
		{"%Y-%m-%d %H:%M %z", nil, "2024-03-15 10:00 +5", "error"},
		{"%Y-%m-%d %H:%M %Z", nil, "2024-03-15 10:00 JST", "2024-03-15T01:00:00Z"},
		{"%Y-%m-%d %H:%M %Z", nil, "2024-03-15 10:00 cest", "2024-03-15T08:00:00Z"},
		{"%Y-%m-%d %H:%M %Z", nil, "2024-03-15 10:00 XYZ", "error"},
		// Time_Offset applies when the format has no zone.
		{"%Y-%m-%d %H:%M", []string{"time_offset +0200"}, "2024-03-15 10:00", "2024-03-15T08:00:00Z"},
		{"%Y-%m-%d %H:%M", []string{"time_offset -05:30"}, "2024-03-15 10:00", "2024-03-15T15:30:00Z"},
		{"%Y-%m-%d %H:%M %z", []string{"time_offset +0200"}, "2024-03-15 10:00 +0000", "2024-03-15T10:00:00Z"},
		{"%Y-%m-%dT%H:%M:%SZ", []string{"time_offset +0200"}, "2024-03-15T10:00:00Z", "2024-03-15T10:00:00Z"},
		// Time_System_Timezone: the fields are local time (here UTC-3).
		{"%Y-%m-%d %H:%M", []string{"time_system_timezone on"}, "2024-03-15 10:00", "2024-03-15T13:00:00Z"},
		// Trailing text after the format is accepted, as by strptime.
		{"%Y-%m-%d", nil, "2024-03-15 and more", "2024-03-15T00:00:00Z"},
		// Strictness: by default a string shorter than the format fails...
		{"%Y-%m-%dT%H:%M:%S.%L", nil, "2024-03-15T10:00:00", "error"},
		{"%Y-%m-%d %H", nil, "2024-03-15", "error"},
		// ...time_strict off keeps what was read (without Time_Offset).
		{"%Y-%m-%dT%H:%M:%S.%L", []string{"time_strict off"}, "2024-03-15T10:00:00", "2024-03-15T10:00:00Z"},
		{"%Y-%m-%d %H", []string{"time_strict off", "time_offset +0100"}, "2024-03-15", "2024-03-15T00:00:00Z"},
		// Field limits as in C: at most as many digits as the limit has.
		{"%Y%m%d", nil, "20240315", "2024-03-15T00:00:00Z"},
		{"%H:%M:%S", nil, "24:00:00", "error"},
		{"%m", nil, "13", "error"},
		{"%Q", nil, "x", "error"},
		// Length limits: 63 bytes (57 without a year).
		{"%Y", nil, "2024" + string(make([]byte, 60)), "error"},
		{"%Y-%m-%d%n", nil, "2024-01-02" + spaces(53), "2024-01-02T00:00:00Z"},
		{"%Y-%m-%d%n", nil, "2024-01-02" + spaces(54), "error"},
		{"%H%n", nil, "01" + spaces(55), "2024-03-15T01:00:00Z"},
		{"%H%n", nil, "01" + spaces(56), "error"},
		// Out of Fluent Bit's event time range.
		{"%Y", nil, "1969", "error"},
		{"%Y", nil, "2107", "error"},
	}
	minus3 := time.FixedZone("BRT", -3*3600)
	for _, c := range cases {
		t.Run(c.format+"|"+c.in, func(t *testing.T) {
			lines := append([]string{"name t", "format regex", `regex ^(?<time>.*)$`, "time_format " + c.format}, c.extra...)
			p := mustNew(t, lines...)
			p.setLocation(minus3)
			got, err := p.time.lookup(c.in)
			if c.want == "error" {
				if err == nil {
					t.Fatalf("no error: %s", utc(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if s := utc(got); s != c.want {
				t.Errorf("got %s, want %s", s, c.want)
			}
		})
	}
}

func spaces(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = ' '
	}
	return string(b)
}

func TestLocalZoneName(t *testing.T) {
	loc := time.FixedZone("QQT", 4*3600)
	p := mustNew(t, "name t", "format regex", `regex ^(?<time>.*)$`, "time_format %Y-%m-%d %H:%M %Z")
	p.setLocation(loc)
	got, err := p.time.lookup("2024-03-15 10:00 QQT")
	if err != nil {
		t.Fatal(err)
	}
	if s := utc(got); s != "2024-03-15T06:00:00Z" {
		t.Errorf("got %s", s)
	}
}

func TestParseOffset(t *testing.T) {
	for in, want := range map[string]int{"+0200": 7200, "-0130": -5400, "+05:45": 20700, "Z": 0, "-00:00": 0} {
		if got, err := ParseOffset(in); err != nil || got != want {
			t.Errorf("ParseOffset(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0200", "+02", "+2:00", "+02:0", "+0260", "+ab00", "UTC", "+02:00:00"} {
		if _, err := ParseOffset(in); err == nil {
			t.Errorf("ParseOffset(%q): no error", in)
		}
	}
}
