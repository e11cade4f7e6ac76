package lua

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var kv = plugintest.KV

func newFilter(t testing.TB, lines ...string) *Filter {
	t.Helper()
	f := plugintest.NewFilter(t, Spec(), lines...).(*Filter)
	t.Cleanup(func() { f.Close(context.Background()) })
	return f
}

// code makes a "code" line: the config format keeps a value on one line.
func code(src string) string { return "code " + strings.Join(strings.Fields(src), " ") }

func bodies(t *testing.T, out []*chunk.Chunk) []string { return plugintest.Bodies(t, out) }

// Fluent Bit's documented examples, run unchanged.
func TestDocumentedExamples(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "api.sandboxbsh-a.project.domain.com")
	cases := []struct {
		name  string
		lines []string
		in    []any
		want  []string
	}{
		{
			name: "inline configuration append_tag",
			lines: []string{"call append_tag", code(`function append_tag(tag, timestamp, record)
				new_record = record new_record["tag"] = tag return 1, timestamp, new_record end`)},
			in:   []any{kv("rand_value", int64(42))},
			want: []string{`{"rand_value":42,"tag":"app.log"}`},
		},
		{
			name: "processing environment variables",
			lines: []string{"call set_landscape_deployment", code(`
				function set_landscape_deployment(tag, timestamp, record)
				    local landscape = os.getenv("KUBERNETES_SERVICE_HOST")
				    if landscape then
				        landscape = landscape:gsub("^[^.]+.", "")
				        landscape = landscape:gsub("-.*$", "")
				        record["iot_landscape"] = landscape
				    end
				    return 2, timestamp, record
				end`)},
			in:   []any{kv("log", "x")},
			want: []string{`{"log":"x","iot_landscape":"sandboxbsh"}`},
		},
		{
			name: "record split",
			lines: []string{"call cb_split", code(`function cb_split(tag, timestamp, record)
				    if record["x"] ~= nil then return 2, timestamp, record["x"]
				    else return 2, timestamp, record end end`)},
			in: []any{
				kv("x", []any{kv("a1", "aa", "z1", "zz"), kv("b1", "bb", "x1", "xx"), kv("c1", "cc")}),
				kv("x", []any{kv("a2", "aa", "z2", "zz"), kv("b2", "bb", "x2", "xx"), kv("c2", "cc")}),
				kv("a3", "aa", "z3", "zz", "b3", "bb", "x3", "xx", "c3", "cc"),
			},
			want: []string{`{"a1":"aa","z1":"zz"}`, `{"b1":"bb","x1":"xx"}`, `{"c1":"cc"}`,
				`{"a2":"aa","z2":"zz"}`, `{"b2":"bb","x2":"xx"}`, `{"c2":"cc"}`,
				`{"a3":"aa","z3":"zz","b3":"bb","x3":"xx","c3":"cc"}`},
		},
		{
			name: "response code filtering",
			lines: []string{"call cb_response_code_filter", code(`function cb_response_code_filter(tag, timestamp, record)
				  response_code = record["response_code"]
				  if (response_code == nil or response_code == '') then return 0,0,0
				  elseif (response_code ~= 0 and response_code < 400) then return -1,0,0
				  else return 0,0,0 end end`)},
			in:   []any{kv("response_code", int64(200)), kv("response_code", int64(0)), kv("response_code", int64(404)), kv("msg", "none"), kv("response_code", int64(302))},
			want: []string{`{"response_code":0}`, `{"response_code":404}`, `{"msg":"none"}`},
		},
		{
			name: "configuration variables FLB_ENV",
			lines: []string{"call append_tag", code(`function append_tag(tag, timestamp, record)
				new_record = record new_record["my_env"] = FLB_ENV return 1, timestamp, new_record end`)},
			in:   []any{kv("rand_value", int64(7))},
			want: []string{`{"rand_value":7,"my_env":{"HOSTNAME":"` + hostname(t) + `"}}`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilter(t, tc.lines...)
			got := bodies(t, plugintest.Run(t, f, plugintest.Chunk(tc.in...)))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname")
	}
	return h
}

func TestTimeFormatConversionWithPopen(t *testing.T) {
	if err := exec.Command("date", "-u", "-d", "Tue, 30 Jul 2024 18:01:06 +0000", "+%Y").Run(); err != nil {
		t.Skipf("GNU date is needed by this documented example: %v", err)
	}
	dir := t.TempDir()
	script := `function convert_to_utc(tag, timestamp, record)
    local date_time = record["pub_date"]
    local new_record = record
    if date_time then
        if string.find(date_time, ",") then
            local pattern = "(%a+, %d+ %a+ %d+ %d+:%d+:%d+) ([+-]%d%d%d%d)"
            local date_part, zone_part = date_time:match(pattern)

            if date_part and zone_part then
                local command = string.format("date -u -d '%s %s' +%%Y-%%m-%%dT%%H:%%M:%%SZ", date_part, zone_part)
                local handle = io.popen(command)
                local result = handle:read("*a")
                handle:close()
                new_record["pub_date"] = result:match("%S+")
            end
        end
    end
    return 1, timestamp, new_record
end
`
	if err := os.WriteFile(filepath.Join(dir, "custom_datetime_format.lua"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec()
	p := plugintest.Props(spec, "script custom_datetime_format.lua", "call convert_to_utc")
	p.Section.File = filepath.Join(dir, "fluent-bit.conf") // script is relative to the configuration file
	flt, err := spec.NewFilter(context.Background(), plugin.Settings{}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer flt.(*Filter).Close(context.Background())
	got := bodies(t, plugintest.Run(t, flt, plugintest.Chunk(
		kv("event", "Restock", "pub_date", "Tue, 30 Jul 2024 18:01:06 +0000"),
		kv("event", "Soldout", "pub_date", "Mon, 29 Jul 2024 10:15:00 +0600"))))
	want := `{"event":"Restock","pub_date":"2024-07-30T18:01:06Z"} {"event":"Soldout","pub_date":"2024-07-29T04:15:00Z"}`
	if strings.Join(got, " ") != want {
		t.Errorf("got %v", got)
	}
}

func TestExtendedCallbackWithGroupAndMetadata(t *testing.T) {
	f := newFilter(t, "call cb", code(`function cb(tag, timestamp, group, metadata, record)
		if group['resource'] then record['service_name'] = group['resource'] end
		m1 = {foo = "meta1"} r1 = {msg = "first log", old = record['msg']}
		m2 = {foo = "meta2"} r2 = {msg = "second log"}
		return 1, timestamp, {m1, m2}, {r1, r2} end`))
	c := plugintest.Chunk(plugintest.GroupStart, kv("msg", "x"), plugintest.GroupEnd)
	out := plugintest.Run(t, f, c)
	if got := strings.Join(bodies(t, out), " "); got != `<start> {"msg":"first log","old":"x"} {"msg":"second log"} <end>` {
		t.Fatalf("got %s", got)
	}
	var metas []string
	it := event.NewIter(out[0].Data)
	for it.Next() {
		if it.Event().Kind() == event.KindRecord {
			ev, _ := it.Event().Decode()
			metas = append(metas, plugintest.Render(ev.Meta))
		}
	}
	if strings.Join(metas, " ") != `{"foo":"meta1"} {"foo":"meta2"}` {
		t.Errorf("metadata %v", metas)
	}
}

func TestReturnCodesAndTime(t *testing.T) {
	f := newFilter(t, "call cb", code(`function cb(tag, ts, r)
		if r.op == "drop" then return -1, ts, r end
		if r.op == "keep" then r.changed = true return 0, ts, r end
		if r.op == "time" then r.op = "t" return 1, 1600000000.5, r end
		if r.op == "record" then r.op = "r" return 2, 1, r end
		return 7, ts, r end`))
	c := plugintest.Chunk(kv("op", "drop"), kv("op", "keep"), kv("op", "time"), kv("op", "record"), kv("op", "odd"))
	out := plugintest.Run(t, f, c)
	got := bodies(t, out)
	if strings.Join(got, " ") != `{"op":"keep"} {"op":"t"} {"op":"r"} {"op":"odd"}` {
		t.Fatalf("got %v", got)
	}
	var times []event.Time
	it := event.NewIter(out[0].Data)
	for it.Next() {
		times = append(times, it.Event().Time)
	}
	want := []event.Time{{Sec: 1700000001, Nsec: 5}, {Sec: 1600000000, Nsec: 500000000}, {Sec: 1700000003, Nsec: 5}, {Sec: 1700000004, Nsec: 5}}
	for i := range want {
		if i >= len(times) || times[i] != want[i] {
			t.Fatalf("times %v, want %v (code 0 and 2 keep the time, 1 replaces it)", times, want)
		}
	}
}

func TestTimeAsTable(t *testing.T) {
	f := newFilter(t, "time_as_table on", "call cb", code(`function cb(tag, ts, r)
		r.sec = ts.sec r.nsec = ts.nsec ts.nsec = ts.nsec + 1 return 1, ts, r end`))
	out := plugintest.Run(t, f, plugintest.Chunk(kv("a", 1)))
	if got := bodies(t, out); got[0] != `{"a":1,"sec":1700000000,"nsec":5}` {
		t.Errorf("got %v", got)
	}
	if tm := event.NewIter(out[0].Data); tm.Next() && tm.Event().Time != (event.Time{Sec: 1700000000, Nsec: 6}) {
		t.Errorf("time %v: nanoseconds should survive a table", tm.Event().Time)
	}
}

func TestTypes(t *testing.T) {
	f := newFilter(t, "type_int_key code level", "type_array_key tags empty", "call cb", code(`function cb(tag, ts, r)
		r.code = r.code * 1.5
		r.half = 2.5
		r.empty = {}
		r.emptymap = {}
		r.list = {1, 2, "x"}
		r.nested = {a = {true, false}}
		return 2, ts, r end`))
	out := plugintest.Run(t, f, plugintest.Chunk(kv("code", int64(3), "level", "7", "tags", []any{}, "big", float64(1.25), "nul", nil)))
	want := `{"code":4,"level":7,"tags":[],"big":1.25,"half":2.5,"empty":[],"emptymap":{},"list":[1,2,"x"],"nested":{"a":[true,false]}}`
	if got := bodies(t, out); got[0] != want {
		t.Errorf("got  %s\nwant %s", got[0], want)
	}
}

func TestFlbNull(t *testing.T) {
	src := code(`function cb(tag, ts, r) r.seen = (r.x == flb_null) return 2, ts, r end`)
	f := newFilter(t, "enable_flb_null on", "call cb", src)
	if got := bodies(t, plugintest.Run(t, f, plugintest.Chunk(kv("x", nil)))); got[0] != `{"x":<nil>,"seen":true}` {
		t.Errorf("with flb_null: %v", got)
	}
	g := newFilter(t, "call cb", src)
	if got := bodies(t, plugintest.Run(t, g, plugintest.Chunk(kv("x", nil)))); got[0] != `{"seen":false}` {
		t.Errorf("without flb_null: %v", got)
	}
}

func TestErrors(t *testing.T) {
	src := code(`function cb(tag, ts, r) if r.bad then error("boom") end r.ok = 1 return 2, ts, r end`)
	f := newFilter(t, "call cb", src)
	c := plugintest.Chunk(kv("a", 1), kv("bad", true))
	out := plugintest.Run(t, f, c)
	if len(out) != 1 || out[0] != c {
		t.Errorf("protected mode: a failing call should leave the chunk as it is, got %v", bodies(t, out))
	}
	g := newFilter(t, "protected_mode off", "call cb", src)
	_, err := g.FilterChunk(context.Background(), c)
	if err == nil || !plugin.IsPermanent(err) || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "byte offset") {
		t.Errorf("unprotected: err = %v, want a permanent error naming the record", err)
	}
	h := newFilter(t, "call cb", code(`function cb(tag, ts, r) return 1, ts, "not a table" end`))
	if out := plugintest.Run(t, h, c); out[0] != c {
		t.Error("a non-table record should leave the chunk unchanged")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.lua")
	os.WriteFile(bad, []byte("function cb(tag, ts, r"), 0o644)
	cases := []struct {
		lines []string
		want  string
	}{
		{[]string{"code function cb(t, ts, r) return 0, ts, r end"}, "call is required"},
		{[]string{"call cb"}, "script or code is required"},
		{[]string{"call cb", "script " + bad}, "cannot load Lua script"},
		{[]string{"call cb", "script " + filepath.Join(dir, "missing.lua")}, "cannot load Lua script"},
		{[]string{"call nope", "code function cb(t, ts, r) return 0, ts, r end"}, `function "nope" is not defined`},
		{[]string{"call cb", "code function cb(t, r) return 0 end"}, "takes 2 parameters"},
		{[]string{"call cb", "code function cb(t, ts, r"}, "cannot load Lua code"},
	}
	for _, tc := range cases {
		spec := Spec()
		err := spec.Check(context.Background(), plugin.Settings{}, plugintest.Props(spec, tc.lines...))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.conf:") {
			t.Errorf("%v: err = %v, want a positioned error containing %q", tc.lines, err, tc.want)
		}
	}
}

func TestConcurrentCallsShareOneState(t *testing.T) {
	f := newFilter(t, "call cb", code(`n = 0 function cb(tag, ts, r) n = n + 1 r.n = n return 2, ts, r end`))
	done := make(chan []string)
	for range 4 {
		go func() {
			var got []string
			for range 50 {
				out, err := f.FilterChunk(context.Background(), plugintest.Chunk(kv("a", 1)))
				if err != nil {
					panic(err)
				}
				got = append(got, plugintest.Bodies(t, out)...)
			}
			done <- got
		}()
	}
	var all []string
	for range 4 {
		all = append(all, <-done...)
	}
	sort.Strings(all)
	seen := map[string]int{}
	for _, s := range all {
		seen[s]++
	}
	if len(all) != 200 || len(seen) != 200 {
		t.Errorf("%d records, %d distinct counters: the global counter was raced or duplicated", len(all), len(seen))
	}
}

func BenchmarkLua(b *testing.B) {
	f := newFilter(b, "call cb", code(`function cb(tag, ts, r) r.tag = tag r.level = string.upper(r.level) return 2, ts, r end`))
	var in []any
	for range 100 {
		in = append(in, kv("log", "GET /index.html 200", "level", "info", "status", int64(200), "k8s", kv("pod", "web-1", "ns", "default")))
	}
	c := plugintest.Chunk(in...)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.FilterChunk(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
}
