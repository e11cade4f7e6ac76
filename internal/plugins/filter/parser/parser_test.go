package parser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	fbparser "github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
)

// ---- helpers ----

func kv(pairs ...any) event.Map {
	m := event.Map{}
	for i := 0; i < len(pairs); i += 2 {
		m = append(m, event.KV{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}

const baseSec = 1700000000

func mkChunk(items ...any) *chunk.Chunk {
	var data []byte
	n := 0
	for i, it := range items {
		switch b := it.(type) {
		case event.Map:
			ev := event.Event{Time: event.Time{Sec: int64(baseSec + i), Nsec: 5}, Meta: kv("m", int64(i)), Body: b}
			data = ev.AppendMsgpack(data)
			n++
		case event.Event:
			data = b.AppendMsgpack(data)
		default:
			panic(fmt.Sprintf("mkChunk: %T", it))
		}
	}
	return &chunk.Chunk{Tag: "app.log", Type: chunk.Logs, Records: n, Data: data}
}

func render(v any) string {
	switch v := v.(type) {
	case event.Map:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = strconv.Quote(p.Key) + ":" + render(p.Value)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case string:
		return strconv.Quote(v)
	case []byte:
		return "b" + strconv.Quote(string(v))
	}
	return fmt.Sprint(v)
}

// records renders what a user sees downstream: "TIME META BODY" per record
// (TIME as seconds past baseSec and nanoseconds), <start>/<end> for group
// markers.
func records(t *testing.T, out []*chunk.Chunk) []string {
	t.Helper()
	var got []string
	for _, c := range out {
		it := event.NewIter(c.Data)
		n := 0
		for it.Next() {
			raw := it.Event()
			switch raw.Kind() {
			case event.KindGroupStart:
				got = append(got, "<start>")
				continue
			case event.KindGroupEnd:
				got = append(got, "<end>")
				continue
			}
			ev, err := raw.Decode()
			if err != nil {
				t.Fatal(err)
			}
			n++
			ts := fmt.Sprintf("%d.%d", ev.Time.Sec-baseSec, ev.Time.Nsec)
			if d := ev.Time.Sec - baseSec; d < -1000 || d > 1000 {
				ts = ev.Time.Std().UTC().Format("2006-01-02T15:04:05.999999999Z")
			}
			got = append(got, ts+" "+render(ev.Meta)+" "+render(ev.Body))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != c.Records {
			t.Errorf("chunk says %d records, holds %d", c.Records, n)
		}
	}
	return got
}

// registry holds the parsers of the tests.
func registry(t *testing.T) *fbparser.Registry {
	t.Helper()
	sec := func(lines ...string) *config.Section {
		s := &config.Section{Type: config.TypeParser, File: "parsers.yaml", Line: 1}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, " ")
			s.Props = append(s.Props, config.Prop{Key: k, Value: v, File: "parsers.yaml", Line: 1})
		}
		return s
	}
	r, err := fbparser.Load([]*config.Section{
		sec("name words", "format regex", `regex ^(?<INT>[^ ]+) (?<FLOAT>[^ ]+) (?<BOOL>[^ ]+) (?<STRING>.+)$`),
		sec("name typed", "format regex", `regex ^(?<INT>[^ ]+) (?<FLOAT>[^ ]+) (?<BOOL>[^ ]+) (?<STRING>.+)$`,
			"types INT:integer FLOAT:float BOOL:bool"),
		sec("name stamped", "format regex", `regex ^(?<time>\d{4}-[^ ]+) (?<msg>.*)$`, "time_format %Y-%m-%dT%H:%M:%S.%L%z"),
		sec("name kv", "format logfmt"),
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// props builds a section from "key value" lines, numbered from line 10.
func props(lines ...string) *plugin.Props {
	s := &config.Section{Type: config.TypeFilter, File: "test.conf", Line: 9}
	s.Props = append(s.Props, config.Prop{Key: "name", Value: "parser", File: "test.conf", Line: 9})
	for i, l := range lines {
		k, v, _ := strings.Cut(l, " ")
		s.Props = append(s.Props, config.Prop{Key: k, Value: v, File: "test.conf", Line: 10 + i})
	}
	return plugin.NewProps(Spec(), s)
}

func newFilter(t *testing.T, lines ...string) plugin.Filter {
	t.Helper()
	f, err := Spec().NewFilter(context.Background(), plugin.Settings{Name: "parser.0", Parsers: registry(t)}, props(lines...))
	if err != nil {
		t.Fatalf("NewFilter: %v", err)
	}
	return f
}

// run filters c and checks that c.Data was not modified.
func run(t *testing.T, f plugin.Filter, c *chunk.Chunk) []*chunk.Chunk {
	t.Helper()
	orig := slices.Clone(c.Data)
	out, err := f.FilterChunk(context.Background(), c)
	if err != nil {
		t.Fatalf("FilterChunk: %v", err)
	}
	if !bytes.Equal(orig, c.Data) {
		t.Fatal("input chunk bytes were modified")
	}
	for _, o := range out {
		if o.Tag != c.Tag || o.Type != c.Type {
			t.Errorf("tag/type = %q/%q", o.Tag, o.Type)
		}
	}
	return out
}

// ---- tests ----

func TestFilter(t *testing.T) {
	data := "100 0.5 true This is example"
	rec := kv("data", data, "key1", "value1", "key2", "value2")
	parsed := `"INT":"100","FLOAT":"0.5","BOOL":"true","STRING":"This is example"`
	cases := []struct {
		name  string
		conf  []string
		in    []any
		want  []string
		touch bool // the output is a new chunk
	}{
		{"default keeps only the parsed fields",
			[]string{"key_name data", "parser words"}, []any{rec},
			[]string{`0.5 {"m":0} {` + parsed + `}`}, true},
		{"reserve_data keeps the other fields after the parsed ones",
			[]string{"key_name data", "parser words", "reserve_data on"}, []any{rec},
			[]string{`0.5 {"m":0} {` + parsed + `,"key1":"value1","key2":"value2"}`}, true},
		{"reserve_data and preserve_key keep the key too, in place",
			[]string{"key_name data", "parser words", "reserve_data on", "preserve_key on"}, []any{kv("key1", "value1", "data", data)},
			[]string{`0.5 {"m":0} {` + parsed + `,"key1":"value1","data":"` + data + `"}`}, true},
		{"preserve_key alone keeps the key after the parsed fields",
			[]string{"key_name data", "parser words", "preserve_key on"}, []any{rec},
			[]string{`0.5 {"m":0} {` + parsed + `,"data":"` + data + `"}`}, true},
		{"types and nest_under",
			[]string{"key_name data", "parser typed", "nest_under parsed", "reserve_data on"}, []any{rec},
			[]string{`0.5 {"m":0} {"parsed":{"INT":100,"FLOAT":0.5,"BOOL":true,"STRING":"This is example"},"key1":"value1","key2":"value2"}`}, true},
		{"the first parser that succeeds wins",
			[]string{"key_name log", "parser stamped", "parser words", "parser kv"},
			[]any{kv("log", "level=info msg=hi"), kv("log", "2024-03-15T12:00:00.25+01:00 started"), kv("log", "a b c d e")},
			[]string{`0.5 {"m":0} {"level":"info","msg":"hi"}`,
				`2024-03-15T11:00:00.25Z {"m":1} {"msg":"started"}`,
				`2.5 {"m":2} {"INT":"a","FLOAT":"b","BOOL":"c","STRING":"d e"}`}, true},
		{"nothing parses: records unchanged",
			[]string{"key_name log", "parser stamped"},
			[]any{kv("log", "no time here"), kv("other", "2024-03-15T12:00:00.25+01:00 x"), kv("log", int64(5))},
			[]string{`0.5 {"m":0} {"log":"no time here"}`, `1.5 {"m":1} {"other":"2024-03-15T12:00:00.25+01:00 x"}`, `2.5 {"m":2} {"log":5}`}, false},
		{"binary values are parsed",
			[]string{"key_name log", "parser kv"}, []any{kv("log", []byte("a=1"))},
			[]string{`0.5 {"m":0} {"a":"1"}`}, true},
		{"a record accessor names a nested value",
			[]string{"key_name $log['inner']", "parser kv", "reserve_data on"}, []any{kv("log", kv("inner", "x=1"), "k", "v")},
			[]string{`0.5 {"m":0} {"x":"1","log":{"inner":"x=1"},"k":"v"}`}, true},
		{"a record accessor with preserve_key alone keeps only the parsed fields",
			[]string{"key_name $log['inner']", "parser kv", "preserve_key on"}, []any{kv("log", kv("inner", "x=1"), "k", "v")},
			[]string{`0.5 {"m":0} {"x":"1"}`}, true},
		{"every field of the name is parsed; the last success gives the record",
			[]string{"key_name log", "parser kv", "reserve_data on"}, []any{kv("log", "a=1", "k", "v", "log", "b=2")},
			[]string{`0.5 {"m":0} {"b":"2","k":"v"}`}, true},
		{"group markers pass; only records are parsed",
			[]string{"key_name log", "parser kv"},
			[]any{event.Event{Time: event.Time{Sec: event.GroupStartSec}, Body: kv("resource", "r")}, kv("log", "a=1"),
				event.Event{Time: event.Time{Sec: event.GroupEndSec}}},
			[]string{"<start>", `1.5 {"m":1} {"a":"1"}`, "<end>"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFilter(t, c.conf...)
			in := mkChunk(c.in...)
			out := run(t, f, in)
			if got := records(t, out); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("records =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if same := len(out) == 1 && out[0] == in; same == c.touch {
				t.Errorf("chunk passed on unchanged: %v, want %v", same, !c.touch)
			}
		})
	}
}

func TestFilterKeepsUntouchedRecordsVerbatim(t *testing.T) {
	f := newFilter(t, "key_name log", "parser kv")
	in := mkChunk(kv("log", "="), kv("log", "a=1"), kv("x", int64(1)))
	out := run(t, f, in)
	// The first and last events are copied byte for byte.
	var first, last []byte
	it := event.NewIter(in.Data)
	for i := 0; it.Next(); i++ {
		switch i {
		case 0:
			first = it.Event().Raw
		case 2:
			last = it.Event().Raw
		}
	}
	if !bytes.HasPrefix(out[0].Data, first) || !bytes.HasSuffix(out[0].Data, last) {
		t.Error("untouched records were re-encoded")
	}
}

func TestNewErrors(t *testing.T) {
	reg := registry(t)
	cases := []struct {
		name  string
		conf  []string
		set   plugin.Settings
		want  string
		multi bool
	}{
		{"unknown parser", []string{"key_name log", "parser words", "parser nope"}, plugin.Settings{Parsers: reg},
			`test.conf:12: key parser: requested parser "nope" not found`, false},
		{"two unknown parsers", []string{"key_name log", "parser a", "parser b"}, plugin.Settings{Parsers: reg},
			"test.conf:11: key parser: requested parser \"a\" not found\ntest.conf:12: key parser: requested parser \"b\" not found", true},
		{"no parsers configured at all", []string{"key_name log", "parser words"}, plugin.Settings{},
			`test.conf:11: key parser: requested parser "words" not found`, false},
		{"no parser key", []string{"key_name log"}, plugin.Settings{Parsers: reg},
			`test.conf:9: key parser: at least one 'parser' is required`, false},
		{"no key_name", []string{"parser words"}, plugin.Settings{Parsers: reg},
			`test.conf:9: key key_name: missing 'key_name'`, false},
		{"bad record accessor", []string{"key_name $log[", "parser words"}, plugin.Settings{Parsers: reg},
			`test.conf:10: key key_name: invalid record accessor pattern "$log["`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Spec().NewFilter(context.Background(), c.set, props(c.conf...))
			if err == nil {
				t.Fatal("no error")
			}
			var ce *config.Error
			var cl config.ErrorList
			if c.multi && !errors.As(err, &cl) || !c.multi && !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("err =\n%v\nwant prefix\n%s", err, c.want)
			}
		})
	}
}

func TestSpecValidates(t *testing.T) {
	reg := plugin.NewRegistry().MustAdd(Spec())
	s := props("key_name log", "parser a", "parser b", "preserve_key maybe", "unescape_key on").Section
	errs := reg.ValidateSection(plugin.KindFilter, s)
	if len(errs) != 1 || errs[0].Key != "preserve_key" {
		t.Errorf("errors = %v", errs)
	}
}
