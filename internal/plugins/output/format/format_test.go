package format

import (
	"math"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/event"
)

var t0 = event.Time{Sec: 1700000000, Nsec: 123456789} // 2023-11-14T22:13:20.123456789Z

func ev(t event.Time, meta, body event.Map) []byte {
	e := event.Event{Time: t, Meta: meta, Body: body}
	return e.AppendMsgpack(nil)
}

func groupStart(meta, attrs event.Map) []byte {
	return ev(event.Time{Sec: event.GroupStartSec}, meta, attrs)
}

func groupEnd() []byte { return ev(event.Time{Sec: event.GroupEndSec}, nil, nil) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestAppendPrintScalars(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{nil, "nil"},
		{true, "true"},
		{false, "false"},
		{int64(42), "42"},
		{int64(-42), "-42"},
		{uint64(math.MaxUint64), "18446744073709551615"},
		{1.5, "1.500000"},
		{float32(0.25), "0.250000"},
		{0.1234567, "0.123457"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
		{math.NaN(), "nan"},
		{"he said \"hi\"\n\x01", "\"he said \"hi\"\n\x01\""},
		{[]byte("a\"b\x00\xff~"), `"a\"b\x00\xff~"`},
		{event.Ext{Type: 5, Data: []byte{1, 'A'}}, `(ext: 5)"\x01A"`},
		{event.Ext{Type: -1, Data: []byte{0}}, `(ext: -1)"\x00"`},
		{[]any{int64(1), "x", []any{}}, `[1, "x", []]`},
		{mp("a", int64(1), "b", mp()), `{"a"=>1, "b"=>{}}`},
		{mp(), `{}`},
	}
	for _, c := range cases {
		got, err := AppendPrint(nil, event.AppendValue(nil, c.v))
		if err != nil {
			t.Fatalf("%#v: %v", c.v, err)
		}
		if string(got) != c.want {
			t.Errorf("print %#v = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestAppendPrintNonStringKey(t *testing.T) {
	b := event.AppendMapHeader(nil, 2)
	b = event.AppendInt(b, 1)
	b = event.AppendString(b, "one")
	b = event.AppendNil(b)
	b = event.AppendBool(b, true)
	got, err := AppendPrint(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{1=>"one", nil=>true}`; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendPrintChunk(t *testing.T) {
	data := cat(
		ev(t0, nil, mp("message", "dummy")),
		ev(event.Time{Sec: 1700000001, Nsec: 5}, mp("k", "v"), mp("n", int64(-3), "f", 2.0)),
	)
	got, err := AppendPrintChunk(nil, "dummy.0", data)
	if err != nil {
		t.Fatal(err)
	}
	want := `[0] dummy.0: [[1700000000.123456789, {}], {"message"=>"dummy"}]
[1] dummy.0: [[1700000001.000000005, {"k"=>"v"}], {"n"=>-3, "f"=>2.000000}]
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAppendPrintChunkV1(t *testing.T) {
	// [TIME, BODY] with an integer time.
	b := event.AppendArrayHeader(nil, 2)
	b = event.AppendInt(b, 1700000000)
	b = mp("a", "b").AppendMsgpack(b)
	got, err := AppendPrintChunk(nil, "t", b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[0] t: [[1700000000.000000000, {}], {\"a\"=>\"b\"}]\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendPrintChunkGroups(t *testing.T) {
	data := cat(
		ev(t0, nil, mp("before", true)),
		groupStart(mp("schema", "otlp"), mp("resource", "r")),
		ev(t0, nil, mp("in", int64(1))),
		ev(t0, nil, mp("in", int64(2))),
		groupEnd(),
		ev(t0, nil, mp("after", true)),
	)
	got, err := AppendPrintChunk(nil, "g", data)
	if err != nil {
		t.Fatal(err)
	}
	group := "GROUP METADATA : \n\n{\"schema\"=>\"otlp\"}\n\nGROUP ATTRIBUTES : \n\n{\"resource\"=>\"r\"}\n\n"
	want := "[0] g: [[1700000000.123456789, {}], {\"before\"=>true}]\n" +
		group + "[1] g: [[1700000000.123456789, {}], {\"in\"=>1}]\n" +
		group + "[2] g: [[1700000000.123456789, {}], {\"in\"=>2}]\n" +
		"[3] g: [[1700000000.123456789, {}], {\"after\"=>true}]\n"
	if string(got) != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestAppendPrintChunkDecodeError(t *testing.T) {
	data := cat(ev(t0, nil, mp("ok", true)), []byte{0x92, 0xc1})
	got, err := AppendPrintChunk(nil, "t", data)
	if err == nil {
		t.Fatal("no error for a broken event")
	}
	if want := "[0] t: [[1700000000.123456789, {}], {\"ok\"=>true}]\n"; string(got) != want {
		t.Errorf("got %q, want the records before the error %q", got, want)
	}
}

func mustJSON(t *testing.T, f JSONFormat, key, df string) *JSON {
	t.Helper()
	j, err := NewJSON(f, key, df, event.DefaultJSON)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJSONLines(t *testing.T) {
	data := cat(
		ev(t0, nil, mp("message", "dummy")),
		ev(event.Time{Sec: 1700000001}, nil, mp("n", int64(1), "f", 0.5, "s", "é\t")),
	)
	got, err := mustJSON(t, JSONLines, "date", "double").AppendChunk(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"date":1700000000.123457,"message":"dummy"}
{"date":1700000001.0,"n":1,"f":0.5,"s":"\u00e9\t"}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestJSONArrayAndStream(t *testing.T) {
	data := cat(ev(t0, nil, mp("a", int64(1))), ev(t0, nil, mp("b", int64(2))))
	got, _ := mustJSON(t, JSONArray, "date", "epoch").AppendChunk(nil, data)
	if want := `[{"date":1700000000,"a":1},{"date":1700000000,"b":2}]`; string(got) != want {
		t.Errorf("json: got %s, want %s", got, want)
	}
	got, _ = mustJSON(t, JSONStream, "ts", "epoch_ms").AppendChunk(nil, data)
	if want := `{"ts":1700000000123,"a":1}{"ts":1700000000123,"b":2}`; string(got) != want {
		t.Errorf("json_stream: got %s, want %s", got, want)
	}
	got, _ = mustJSON(t, JSONArray, "date", "double").AppendChunk(nil, nil)
	if want := `[]`; string(got) != want {
		t.Errorf("empty json: got %s, want %s", got, want)
	}
	got, _ = mustJSON(t, JSONLines, "date", "double").AppendChunk(nil, nil)
	if len(got) != 0 {
		t.Errorf("empty json_lines: got %q", got)
	}
}

func TestJSONDateFormats(t *testing.T) {
	data := ev(t0, nil, mp("m", "x"))
	for _, c := range []struct{ key, df, want string }{
		{"date", "double", `{"date":1700000000.123457,"m":"x"}`},
		{"date", "epoch", `{"date":1700000000,"m":"x"}`},
		{"date", "epoch_ms", `{"date":1700000000123,"m":"x"}`},
		{"date", "epoch_millis", `{"date":1700000000123,"m":"x"}`},
		{"date", "ISO8601", `{"date":"2023-11-14T22:13:20.123456Z","m":"x"}`},
		{"date", "java_sql_timestamp", `{"date":"2023-11-14 22:13:20.123456","m":"x"}`},
		{"@timestamp", "", `{"@timestamp":1700000000.123457,"m":"x"}`},
		{"false", "iso8601", `{"m":"x"}`},
		{"Off", "double", `{"m":"x"}`},
		{"no", "double", `{"m":"x"}`},
	} {
		got, err := mustJSON(t, JSONStream, c.key, c.df).AppendChunk(nil, data)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("key %q format %q: got %s, want %s", c.key, c.df, got, c.want)
		}
	}
	if _, err := NewJSON(JSONLines, "date", "bogus", event.DefaultJSON); err == nil {
		t.Error("bogus json_date_format accepted")
	}
}

func TestJSONInternal(t *testing.T) {
	j := mustJSON(t, JSONStream, "date", "epoch")
	data := cat(
		ev(t0, mp("trace", "abc"), mp("m", int64(1))),
		groupStart(mp("g", "meta"), mp("resource", mp("service", "s"))),
		ev(t0, nil, mp("m", int64(2))),
		groupEnd(),
		groupStart(nil, nil), // empty attributes and metadata: no __internal__
		ev(t0, nil, mp("m", int64(3))),
		ev(t0, mp("x", true), mp("m", int64(4))),
	)
	got, err := j.AppendChunk(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"date":1700000000,"__internal__":{"log_metadata":{"trace":"abc"}},"m":1}` +
		`{"date":1700000000,"__internal__":{"group_attributes":{"resource":{"service":"s"}},"log_metadata":{}},"m":2}` +
		`{"date":1700000000,"m":3}` +
		`{"date":1700000000,"__internal__":{"group_attributes":{},"log_metadata":{"x":true}},"m":4}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestJSONDuplicateKeys(t *testing.T) {
	// The body's "date" comes after the date key and wins, as in Fluent Bit.
	data := ev(t0, nil, mp("date", "body", "a", int64(1), "a", int64(2), "n", mp("x", int64(1), "y", int64(0), "x", int64(3))))
	got, _ := mustJSON(t, JSONStream, "date", "double").AppendChunk(nil, data)
	if want := `{"date":"body","a":2,"n":{"y":0,"x":3}}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Many keys: the map-based path.
	var m event.Map
	for i := range 40 {
		m = append(m, event.KV{Key: string(rune('a' + i%20)), Value: int64(i)})
	}
	got, _ = AppendJSON(nil, m.AppendMsgpack(nil), event.DefaultJSON)
	want := event.AppendJSON(nil, m, event.DefaultJSON)
	if string(got) != string(want) {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestAppendJSONMatchesEvent(t *testing.T) {
	vals := []any{
		nil, true, int64(-7), uint64(math.MaxUint64), 1.0, 1.25, 1e300, float32(0.1),
		math.NaN(), math.Inf(-1), "plain", "quote\" back\\ nl\n ctl\x01 uni é 😀 bad\xff",
		[]byte("bin\x00"), event.Ext{Type: 3, Data: []byte{0xab, 0x01}},
		[]any{int64(1), []any{"x"}, mp()},
		mp("k", mp("deep", []any{1.5})),
	}
	for _, o := range []event.JSONOptions{event.DefaultJSON, {}, {NaNToNull: true}} {
		for _, v := range vals {
			got, err := AppendJSON(nil, event.AppendValue(nil, v), o)
			if err != nil {
				t.Fatal(err)
			}
			want := event.AppendJSON(nil, v, o)
			if string(got) != string(want) {
				t.Errorf("%#v (%+v): got %s, want %s", v, o, got, want)
			}
		}
	}
}

func TestAppendJSONNonStringKey(t *testing.T) {
	b := event.AppendMapHeader(nil, 2)
	b = event.AppendInt(b, 1)
	b = event.AppendInt(b, 2)
	b = event.AppendInt(b, 1)
	b = event.AppendInt(b, 3)
	got, err := AppendJSON(nil, b, event.DefaultJSON)
	if err != nil {
		t.Fatal(err)
	}
	// Only string keys are de-duplicated; other keys are printed as values.
	if want := `{1:2,1:3}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestPairsAndHelpers(t *testing.T) {
	m := mp("a", "x", "b", int64(2)).AppendMsgpack(nil)
	var keys []string
	if err := Pairs(m, func(k, v []byte) bool {
		s, _ := Str(k)
		keys = append(keys, string(s))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "a,b" || MapLen(m) != 2 {
		t.Errorf("keys %v len %d", keys, MapLen(m))
	}
	if err := Pairs([]byte{0x91, 0x01}, func(k, v []byte) bool { return true }); err == nil {
		t.Error("Pairs accepted an array")
	}
	if _, err := AppendPrint(nil, []byte{0x92, 0x01}); err == nil {
		t.Error("truncated array accepted")
	}
}

func TestParseFormats(t *testing.T) {
	for s, want := range map[string]JSONFormat{"msgpack": 0, "JSON": JSONArray, "json_stream": JSONStream, "json_lines": JSONLines} {
		if f, ok := ParseJSONFormat(s); !ok || f != want {
			t.Errorf("%s: %v %v", s, f, ok)
		}
	}
	if _, ok := ParseJSONFormat("gelf"); ok {
		t.Error("gelf accepted")
	}
	for _, s := range DateFormatValues {
		if _, ok := ParseDateFormat(s); !ok {
			t.Errorf("%s rejected", s)
		}
	}
}

// benchChunk is 1,000 records shaped like a typical container log line.
func benchChunk() []byte {
	var b []byte
	for i := range 1000 {
		b = append(b, ev(event.Time{Sec: 1700000000 + int64(i), Nsec: 123456789}, nil, mp(
			"log", "2023-11-14T22:13:20.123Z INFO request handled path=/api/v1/items status=200",
			"stream", "stdout",
			"time", "2023-11-14T22:13:20.123456789Z",
			"status", int64(200),
			"latency", 0.0123,
			"kubernetes", mp("pod_name", "api-7d9f", "namespace_name", "default"),
		))...)
	}
	return b
}

func BenchmarkJSONLines1000(b *testing.B) {
	data := benchChunk()
	j, _ := NewJSON(JSONLines, "date", "double", event.DefaultJSON)
	buf := make([]byte, 0, 2*len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = j.AppendChunk(buf[:0], data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrint1000(b *testing.B) {
	data := benchChunk()
	buf := make([]byte, 0, 2*len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendPrintChunk(buf[:0], "kube.var.log", data); err != nil {
			b.Fatal(err)
		}
	}
}

// mp builds a map from alternating keys and values.
func mp(kv ...any) event.Map {
	m := event.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, event.KV{Key: kv[i].(string), Value: kv[i+1]})
	}
	return m
}
