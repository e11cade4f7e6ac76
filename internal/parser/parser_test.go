package parser

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	type tc struct {
		name   string
		def    []string
		in     string
		time   string // RFC 3339 UTC, "-" for none
		record string // "" with err
		err    bool
	}
	apache := []string{"name apache", "format regex",
		`regex ^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")?$`,
		"time_key time", "time_format %d/%b/%Y:%H:%M:%S %z"}
	cases := []tc{
		// ---- json ----
		{name: "json keeps key order and number kinds",
			def: []string{"name j", "format json"},
			in:  `{"b":1,"a":1.5,"c":[true,null],"d":{"x":"y"}}`, time: "-",
			record: `{"b":1,"a":f1.5,"c":[true,<nil>],"d":{"x":"y"}}`},
		{name: "json without time_format ignores the time key",
			def: []string{"name j", "format json", "time_key time"},
			in:  `{"time":"2020-01-01","m":"x"}`, time: "-",
			record: `{"time":"2020-01-01","m":"x"}`},
		{name: "json time removed",
			def: []string{"name j", "format json", "time_key ts", "time_format %Y-%m-%dT%H:%M:%S.%L%z"},
			in:  `{"m":"x","ts":"2020-10-23T12:00:31.415213+09:00","n":1}`, time: "2020-10-23T03:00:31.415213Z",
			record: `{"m":"x","n":1}`},
		{name: "json time kept",
			def: []string{"name j", "format json", "time_key ts", "time_format %Y-%m-%dT%H:%M:%S %z", "time_keep on"},
			in:  `{"ts":"2020-10-23T12:00:31 -0130"}`, time: "2020-10-23T13:30:31Z",
			record: `{"ts":"2020-10-23T12:00:31 -0130"}`},
		{name: "json default time key is time",
			def: []string{"name j", "format json", "time_format %s"},
			in:  `{"time":"1700000000","m":1}`, time: "2023-11-14T22:13:20Z",
			record: `{"m":1}`},
		{name: "json bad time keeps the field and gives no time",
			def: []string{"name j", "format json", "time_format %Y-%m-%d"},
			in:  `{"time":"yesterday"}`, time: "-", record: `{"time":"yesterday"}`},
		{name: "json numeric time is not a time",
			def: []string{"name j", "format json", "time_format %s"},
			in:  `{"time":1700000000}`, time: "-", record: `{"time":1700000000}`},
		{name: "json types are not applied",
			def: []string{"name j", "format json", "types a:integer"},
			in:  `{"a":"12"}`, time: "-", record: `{"a":"12"}`},
		{name: "json array is refused", def: []string{"name j", "format json"}, in: `[1,2]`, err: true},
		{name: "json garbage is refused", def: []string{"name j", "format json"}, in: `hello`, err: true},
		{name: "json two objects are refused", def: []string{"name j", "format json"}, in: `{}{}`, err: true},

		// ---- regex ----
		{name: "regex apache",
			def:    apache,
			in:     `192.168.2.20 - - [28/Jul/2006:10:27:10 -0300] "GET /cgi-bin/try/ HTTP/1.0" 200 3395`,
			time:   "2006-07-28T13:27:10Z",
			record: `{"host":"192.168.2.20","user":"-","method":"GET","path":"/cgi-bin/try/","code":"200","size":"3395"}`},
		{name: "regex skips empty values by default",
			def: []string{"name r", "format regex", `regex ^(?<a>\w*) (?<b>\w*)(?: (?<c>\w+))?$`},
			in:  ` x`, time: "-", record: `{"b":"x"}`},
		{name: "regex keeps empty values when asked",
			def: []string{"name r", "format regex", `regex ^(?<a>\w*) (?<b>\w*)(?: (?<c>\w+))?$`, "skip_empty_values off"},
			in:  ` x`, time: "-", record: `{"a":"","b":"x","c":""}`},
		{name: "regex no match", def: []string{"name r", "format regex", `regex ^(?<a>\d+)$`}, in: "abc", err: true},
		{name: "regex without named groups never succeeds",
			def: []string{"name r", "format regex", `regex ^(\d+)$`}, in: "12", err: true},
		{name: "regex with no named group taking part fails",
			def: []string{"name r", "format regex", `regex ^(?<a>x)?`}, in: "y", err: true},
		{name: "regex repeated names are listed together",
			def: []string{"name r", "format regex", `regex ^(?<a>\d)(?<b>\d)(?<a>\d)$`},
			in:  "123", time: "-", record: `{"a":"1","a":"3","b":"2"}`},
		{name: "regex bad time drops the field",
			def: []string{"name r", "format regex", `regex ^(?<time>\S+) (?<m>.*)$`, "time_format %Y-%m-%d", "time_keep on"},
			in:  "never hello", time: "-", record: `{"m":"hello"}`},
		{name: "regex time kept",
			def: []string{"name r", "format regex", `regex ^(?<time>\S+) (?<m>.*)$`, "time_format %Y-%m-%d", "time_keep on"},
			in:  "2021-02-03 hello", time: "2021-02-03T00:00:00Z", record: `{"time":"2021-02-03","m":"hello"}`},
		{name: "regex slash form with options",
			def: []string{"name r", "format regex", `regex /^(?<word>HELLO.world)$/im`},
			in:  "hello\nWORLD", time: "-", record: `{"word":"hello\nWORLD"}`},
		{name: "regex anchors match at line boundaries, as in Ruby",
			def: []string{"name r", "format regex", `regex ^(?<second>b+)$`},
			in:  "aaa\nbbb\nccc", time: "-", record: `{"second":"bbb"}`},
		{name: "regex quoted group name",
			def: []string{"name r", "format regex", `regex ^(?'k'\w+)=(?<v>\w+)`},
			in:  "a=b", time: "-", record: `{"k":"a","v":"b"}`},
		{name: "regex types",
			def: []string{"name r", "format regex", `regex ^(?<i>\S+) (?<f>\S+) (?<b>\S+) (?<h>\S+) (?<s>\S+) (?<x>\S+)$`,
				"types i:integer f:float b:bool h:hex s:string x:bool"},
			in: "-42abc 1.5e3x TRUEly 0xff 7 maybe", time: "-",
			record: `{"i":-42,"f":f1500,"b":true,"h":255,"s":"7","x":"maybe"}`},
		{name: "regex types overflow",
			def: []string{"name r", "format regex", `regex ^(?<i>\S+) (?<h>\S+) (?<f>\S+)$`, "types i:integer h:hex f:float"},
			in:  "99999999999999999999 ffffffffffffffff junk", time: "-",
			record: `{"i":9223372036854775807,"h":u18446744073709551615,"f":f0}`},

		// ---- ltsv ----
		{name: "ltsv",
			def:  []string{"name l", "format ltsv", "time_format %d/%b/%Y:%H:%M:%S %z", "types status:integer"},
			in:   "host:127.0.0.1\tident:-\ttime:10/Oct/2000:13:55:36 -0700\treq:GET / HTTP/1.0\tstatus:200\n",
			time: "2000-10-10T20:55:36Z", record: `{"host":"127.0.0.1","ident":"-","req":"GET / HTTP/1.0","status":200}`},
		{name: "ltsv stops at the first line",
			def: []string{"name l", "format ltsv"},
			in:  "a:1\tb:\r\nc:3", time: "-", record: `{"a":"1","b":""}`},
		{name: "ltsv stops at a label without colon",
			def: []string{"name l", "format ltsv"},
			in:  "a:1\tb c:3", time: "-", record: `{"a":"1"}`},
		{name: "ltsv bad time fails", def: []string{"name l", "format ltsv", "time_format %Y"}, in: "time:xx\ta:1", err: true},
		{name: "ltsv nothing", def: []string{"name l", "format ltsv"}, in: "no fields here", err: true},

		// ---- logfmt ----
		{name: "logfmt",
			def: []string{"name f", "format logfmt"},
			in:  `key=val quoted="a \"b\"\tc\u00e9" bare empty= emptystr="" k2=x=y`, time: "-",
			record: `{"key":"val","quoted":"a \"b\"\tcé","bare":true,"empty":true,"emptystr":"","k2":"x","y":true}`},
		{name: "logfmt time and types use raw text",
			def: []string{"name f", "format logfmt", "time_key ts", "time_format %Y-%m-%dT%H:%M:%SZ", "types n:integer q:string"},
			in:  `ts=2019-01-02T03:04:05Z n=12 q="a\nb" bare`, time: "2019-01-02T03:04:05Z",
			record: `{"n":12,"q":"a\\nb","bare":""}`},
		{name: "logfmt stops at the first line",
			def: []string{"name f", "format logfmt"},
			in:  "a=1\nb=2", time: "-", record: `{"a":"1"}`},
		{name: "logfmt no bare keys",
			def: []string{"name f", "format logfmt", "logfmt_no_bare_keys on"},
			in:  "a=1 b", err: true},
		{name: "logfmt bad time fails", def: []string{"name f", "format logfmt", "time_format %Y"}, in: "time=x", err: true},
		{name: "logfmt nothing", def: []string{"name f", "format logfmt"}, in: `  ="" `, err: true},

		// ---- decoders ----
		{name: "decode_field_as json replaces the value",
			def: []string{"name d", "format json", "decode_field_as json log"},
			in:  `{"log":"{\"status\": \"up\", \"n\": 2}","stream":"stdout"}`, time: "-",
			record: `{"log":{"status":"up","n":2},"stream":"stdout"}`},
		{name: "decode_field json appends the keys",
			def: []string{"name d", "format json", "decode_field json log"},
			in:  `{"log":"{\"status\": \"up\"}","stream":"stdout"}`, time: "-",
			record: `{"log":"{\"status\": \"up\"}","stream":"stdout","status":"up"}`},
		{name: "decode_field json that is not json changes nothing",
			def: []string{"name d", "format json", "decode_field json log"},
			in:  `{"log":"plain text"}`, time: "-", record: `{"log":"plain text"}`},
		{name: "decoders escaped_utf8 then json (do_next)",
			def: []string{"name d", "format regex", `regex ^(?<log>.*)$`,
				"decode_field_as escaped_utf8 log do_next", "decode_field_as json log"},
			in: `{\"a\":\"\u00e9\"}`, time: "-", record: `{"log":{"a":"é"}}`},
		{name: "decoder try_next",
			def: []string{"name d", "format logfmt", "decode_field_as json m try_next", "decode_field_as escaped m"},
			in:  `m="x\\ty"`, time: "-", record: `{"m":"x\ty"}`},
		{name: "decoder without action stops at the first failure",
			def: []string{"name d", "format logfmt", "decode_field_as json m", "decode_field_as escaped m"},
			in:  `m="x\\ty"`, time: "-", record: `{"m":"x\\ty"}`},
		{name: "escaped decoder",
			def: []string{"name d", "format regex", `regex ^(?<m>.*)$`, "decode_field_as escaped m"},
			in:  `a\nb\"c\\d\u00e9`, time: "-", record: `{"m":"a\nb\"c\\du00e9"}`},
		{name: "escaped_utf8 decoder",
			def: []string{"name d", "format regex", `regex ^(?<m>.*)$`, "decode_field_as escaped_utf8 m"},
			in:  `\x41\101\u00e9\U0001F600\q\/`, time: "-", record: `{"m":"AAé😀q/"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustNew(t, c.def...)
			tm, m, err := p.Parse([]byte(c.in))
			if c.err {
				if err == nil {
					t.Fatalf("no error; got %s %s", utc(tm), render(m))
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if got := utc(tm); got != c.time {
				t.Errorf("time = %s, want %s", got, c.time)
			}
			if got := render(m); got != c.record {
				t.Errorf("record =\n  %s\nwant\n  %s", got, c.record)
			}
		})
	}
}

func TestErrNoMatch(t *testing.T) {
	p := mustNew(t, "name r", "format regex", `regex ^(?<a>\d+)$`)
	if _, _, err := p.Parse([]byte("x")); !errors.Is(err, ErrNoMatch) {
		t.Errorf("err = %v, want ErrNoMatch", err)
	}
}

func TestParseDoesNotKeepInput(t *testing.T) {
	p := mustNew(t, "name r", "format regex", `regex ^(?<a>\w+)$`)
	in := []byte("hello")
	_, m, err := p.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	copy(in, "XXXXX")
	if got := render(m); got != `{"a":"hello"}` {
		t.Errorf("record aliases the input: %s", got)
	}
}
