package modify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

var mem = kv("Mem.total", int64(1016044), "Mem.used", int64(841388), "Mem.free", int64(174656),
	"Swap.total", int64(2064380), "Swap.used", int64(139888), "Swap.free", int64(1924492))

func TestRules(t *testing.T) {
	cases := []struct {
		name  string
		rules []string
		in    event.Map
		want  string
	}{
		// set / add
		{"set adds", []string{"set k v"}, kv("a", "1"), `{"a":"1","k":"v"}`},
		{"set overwrites at the end, removing every k", []string{"set k v"},
			kv("k", int64(1), "a", "1", "k", int64(2)), `{"a":"1","k":"v"}`},
		{"set values are strings", []string{"set n 42"}, kv(), `{"n":"42"}`},
		{"set quoted value with spaces", []string{`set msg "hello world"`}, kv(), `{"msg":"hello world"}`},
		{"set quoted value with escapes", []string{`set msg 'it\'s \\ "x"'`}, kv(), `{"msg":"it's \\ \"x\""}`},
		{"rule names are case-insensitive", []string{"SET k v", "Add j w"}, kv(), `{"k":"v","j":"w"}`},
		{"add when absent", []string{"add k v"}, kv("a", "1"), `{"a":"1","k":"v"}`},
		{"add keeps an existing key", []string{"add k v"}, kv("k", "old"), `{"k":"old"}`},
		{"keys are case-sensitive", []string{"add K v"}, kv("k", "old"), `{"k":"old","K":"v"}`},

		// remove
		{"remove", []string{"remove Mem.used"}, mem,
			`{"Mem.total":1016044,"Mem.free":174656,"Swap.total":2064380,"Swap.used":139888,"Swap.free":1924492}`},
		{"remove every duplicate", []string{"remove k"}, kv("k", "1", "a", "2", "k", "3"), `{"a":"2"}`},
		{"remove_wildcard is a prefix match", []string{"remove_wildcard Mem", "remove_wildcard Swap.t"}, mem,
			`{"Swap.used":139888,"Swap.free":1924492}`},
		{"remove_wildcard star is literal", []string{"remove_wildcard Mem*"}, mem, render(mem)},
		{"remove_regex", []string{"remove_regex ^(Mem|Swap)\\.(used|free)$"}, mem,
			`{"Mem.total":1016044,"Swap.total":2064380}`},
		{"remove_regex is unanchored", []string{"remove_regex tot"}, mem,
			`{"Mem.used":841388,"Mem.free":174656,"Swap.used":139888,"Swap.free":1924492}`},

		// rename
		{"rename", []string{"rename a b"}, kv("a", "1", "c", "2"), `{"b":"1","c":"2"}`},
		{"rename every duplicate", []string{"rename a b"}, kv("a", "1", "a", "2"), `{"b":"1","b":"2"}`},
		{"rename does not clobber", []string{"rename a b"}, kv("a", "1", "b", "2"), `{"a":"1","b":"2"}`},
		{"rename missing key", []string{"rename x b"}, kv("a", "1"), `{"a":"1"}`},
		{"hard_rename overwrites", []string{"hard_rename a b"}, kv("b", "2", "a", "1", "c", "3"), `{"b":"1","c":"3"}`},
		{"hard_rename to itself removes it (upstream)", []string{"hard_rename a a"}, kv("a", "1", "c", "3"), `{"c":"3"}`},
		{"hard_rename missing key", []string{"hard_rename x b"}, kv("b", "2"), `{"b":"2"}`},

		// copy
		{"copy goes right after the source", []string{"copy a b"}, kv("a", "1", "c", "2"), `{"a":"1","b":"1","c":"2"}`},
		{"copy keeps the value type", []string{"copy a b"}, kv("a", kv("x", int64(1))), `{"a":{"x":1},"b":{"x":1}}`},
		{"copy does not clobber", []string{"copy a b"}, kv("a", "1", "b", "2"), `{"a":"1","b":"2"}`},
		{"copy needs exactly one source", []string{"copy a b"}, kv("a", "1", "a", "2"), `{"a":"1","a":"2"}`},
		{"hard_copy overwrites", []string{"hard_copy a b"}, kv("b", "2", "a", "1"), `{"a":"1","b":"1"}`},
		{"hard_copy gives up on two targets", []string{"hard_copy a b"}, kv("b", "2", "a", "1", "b", "3"), `{"b":"2","a":"1","b":"3"}`},
		{"hard_copy to itself removes it (upstream)", []string{"hard_copy a a"}, kv("a", "1", "c", "2"), `{"c":"2"}`},

		// move
		{"move_to_start", []string{"move_to_start Swap"}, mem,
			`{"Swap.total":2064380,"Swap.used":139888,"Swap.free":1924492,"Mem.total":1016044,"Mem.used":841388,"Mem.free":174656}`},
		{"move_to_end", []string{"move_to_end Mem.t"}, mem,
			`{"Mem.used":841388,"Mem.free":174656,"Swap.total":2064380,"Swap.used":139888,"Swap.free":1924492,"Mem.total":1016044}`},

		// order
		{"rules run in order on the previous result", []string{"rename a b", "set a 2", "copy b c", "remove b"},
			kv("a", "1"), `{"c":"1","a":"2"}`},
		{"docs example 1", []string{"add Service1 SOMEVALUE", "add Service3 SOMEVALUE3", "add Mem.total2 TOTALMEM2",
			"rename Mem.free MEMFREE", "rename Mem.used MEMUSED", "rename Swap.total SWAPTOTAL", "add Mem.total TOTALMEM"},
			mem, `{"Mem.total":1016044,"MEMUSED":841388,"MEMFREE":174656,"SWAPTOTAL":2064380,"Swap.used":139888,"Swap.free":1924492,` +
				`"Service1":"SOMEVALUE","Service3":"SOMEVALUE3","Mem.total2":"TOTALMEM2"}`},
		{"docs example 3 (emoji)", []string{"remove_wildcard Mem", "remove_wildcard Swap", "set This_plugin_is_on 🔥",
			"set 🔥 is_hot", "copy 🔥 💦", "rename 💦 ❄️", "set ❄️ is_cold", "set 💦 is_wet"},
			mem, `{"This_plugin_is_on":"🔥","🔥":"is_hot","❄️":"is_cold","💦":"is_wet"}`},
		{"three parameters run as rename of first to last (upstream)", []string{"set greeting hello world"},
			kv("greeting", "hi"), `{"world":"hi"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilter(t, tc.rules...)
			got := records(t, run(t, f, mkChunk(tc.in)))
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestKeyTypes(t *testing.T) {
	// {bin "k": "v", 7: "int key", true: "bool key"}
	body := event.AppendMapHeader(nil, 3)
	body = event.AppendBytes(body, []byte("k"))
	body = event.AppendString(body, "v")
	body = event.AppendInt(body, 7)
	body = event.AppendString(body, "int key")
	body = event.AppendBool(body, true)
	body = event.AppendString(body, "bool key")
	c := &chunk.Chunk{Tag: "app.log", Type: chunk.Logs, Records: 1, Data: event.AppendRaw(nil, event.Time{Sec: 1}, nil, body)}
	cases := []struct {
		rules []string
		want  string
	}{
		{[]string{"add k x"}, `{"k":"v","7":"int key","true":"bool key"}`},                           // a binary key is a key
		{[]string{"remove k"}, `{"7":"int key","true":"bool key"}`},                                  // and can be removed
		{[]string{"remove 7"}, `{"k":"v","7":"int key","true":"bool key"}`},                          // an integer key is never matched
		{[]string{"remove_regex ^true$"}, `{"k":"v","7":"int key"}`},                                 // a boolean key matches as text
		{[]string{"condition key_exists k", "set y z"}, `{"k":"v","7":"int key","true":"bool key"}`}, // accessors see string keys only
	}
	for _, tc := range cases {
		got := records(t, run(t, newFilter(t, tc.rules...), c))
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%v: got %v, want %v", tc.rules, got, tc.want)
		}
	}
}

func TestConditions(t *testing.T) {
	rec := kv("a", "1", "b", "hello", "t", true, "n", int64(5), "bin", []byte("raw"),
		"k8s", kv("labels", kv("app", "web")), "arr", []any{"x", "y"})
	cases := []struct {
		cond string
		want bool
	}{
		{"key_exists a", true},
		{"Key_Exists zz", false},
		{"key_exists $k8s['labels']['app']", true},
		{"key_exists $k8s['labels']['db']", false},
		{"key_exists $arr[1]", true},
		{"key_exists $arr[2]", false},
		{"key_exists $a['x']", true}, // subkeys on a scalar find the scalar (upstream)
		{"key_does_not_exist zz", true},
		{"key_does_not_exist a", false},
		{"a_key_matches ^b", true},
		{"a_key_matches ^z", false},
		{"a_key_matches ^(true|false)$", false}, // keys are strings here
		{"no_key_matches ^z", true},
		{"no_key_matches ^a", false},
		{"key_value_equals a 1", true},
		{"key_value_equals a 2", false},
		{"key_value_equals n 5", false}, // numbers are not strings
		{"key_value_equals bin raw", true},
		{"key_value_equals zz 1", false},
		{"key_value_equals $k8s['labels']['app'] web", true},
		{`key_value_equals b "hello"`, true},
		{"key_value_does_not_equal a 2", true},
		{"key_value_does_not_equal a 1", false},
		{"key_value_does_not_equal zz 1", false}, // the key must exist
		{"key_value_matches b ^hel", true},
		{"key_value_matches b ^x", false},
		{"key_value_matches t ^true$", true}, // booleans match as text
		{"key_value_matches n 5", false},
		{"key_value_matches bin raw", false}, // binaries never match a regex
		{"key_value_matches zz .", false},
		{"key_value_does_not_match b ^x", true},
		{"key_value_does_not_match b ^h", false},
		{"key_value_does_not_match zz .", false},
		{"key_value_does_not_match n 5", true},
		{"matching_keys_have_matching_values ^[ab]$ ^[0-9h]", true},
		{"matching_keys_have_matching_values ^[ab]$ ^[0-9]", false},
		{"matching_keys_have_matching_values ^zz ^x", true}, // vacuous
		{"matching_keys_do_not_have_matching_values ^[ab]$ ^[0-9]", true},
		{"matching_keys_do_not_have_matching_values ^[ab]$ .", false},
		{"matching_keys_do_not_have_matching_values ^zz ^x", false},
	}
	for _, tc := range cases {
		t.Run(tc.cond, func(t *testing.T) {
			f := newFilter(t, "condition "+tc.cond, "set out yes")
			got := records(t, run(t, f, mkChunk(rec)))
			changed := len(got) == 1 && strings.HasSuffix(got[0], `"out":"yes"}`)
			if changed != tc.want {
				t.Errorf("condition held = %v, want %v (%v)", changed, tc.want, got)
			}
		})
	}
}

func TestConditionsAreANDedAndSeeTheInput(t *testing.T) {
	// Conditions are evaluated on the incoming record even when written
	// after rules that would change their outcome.
	f := newFilter(t, "set b 1", "condition key_does_not_exist b", "condition key_exists a", "set c 2")
	got := records(t, run(t, f, mkChunk(kv("a", "x"), kv("a", "x", "b", "0"), kv("z", "x"))))
	want := []string{`{"a":"x","b":"1","c":"2"}`, `{"a":"x","b":"0"}`, `{"z":"x"}`}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestDocsExample2(t *testing.T) {
	// Three modify filters in a row, as in the upstream documentation.
	f1 := newFilter(t, "condition Key_Does_Not_Exist cpustats", "condition Key_Exists Mem.used", "set cpustats UNKNOWN")
	f2 := newFilter(t, "condition Key_Value_Does_Not_Equal cpustats KNOWN", "add sourcetype memstats")
	f3 := newFilter(t, "condition Key_Value_Equals cpustats UNKNOWN", "remove_wildcard Mem", "remove_wildcard Swap", "add cpustats_more STILL_UNKNOWN")
	out := []*chunk.Chunk{mkChunk(mem)}
	for _, f := range []plugin.Filter{f1, f2, f3} {
		out = run(t, f, out[0])
	}
	got := records(t, out)
	want := []string{`{"cpustats":"UNKNOWN","sourcetype":"memstats","cpustats_more":"STILL_UNKNOWN"}`}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestTimeMetaAndMarkersKept(t *testing.T) {
	f := newFilter(t, "condition key_exists a", "set b 2")
	ev := event.Event{Time: event.Time{Sec: 1700000000, Nsec: 123456789}, Meta: kv("otel", "x"), Body: kv("a", "1")}
	untouched := event.Event{Time: event.Time{Sec: 5}, Body: kv("z", "1")}
	c := mkChunk(groupStart, ev, untouched, groupEnd)
	out := run(t, f, c)
	if got := records(t, out); !slices.Equal(got, []string{"<start>", `{"a":"1","b":"2"}`, `{"z":"1"}`, "<end>"}) {
		t.Fatalf("got %v", got)
	}
	it := event.NewIter(out[0].Data)
	it.Next() // group start
	if !bytes.Equal(it.Event().Raw, groupStart.AppendMsgpack(nil)) {
		t.Error("group start changed")
	}
	it.Next()
	got, err := it.Event().Decode()
	if err != nil {
		t.Fatal(err)
	}
	if got.Time != ev.Time || render(got.Meta) != `{"otel":"x"}` {
		t.Errorf("time/meta = %v %v", got.Time, render(got.Meta))
	}
	it.Next()
	if !bytes.Equal(it.Event().Raw, untouched.AppendMsgpack(nil)) {
		t.Error("untouched record re-encoded")
	}
	if out[0].Records != 2 {
		t.Errorf("records = %d", out[0].Records)
	}
}

func TestUnchangedChunkIsPassedOn(t *testing.T) {
	for _, rules := range [][]string{
		{"condition key_exists nope", "set a b"},
		{"rename x y", "remove z", "add a kept", "copy q r", "move_to_start nope"},
		nil,
	} {
		f := newFilter(t, rules...)
		c := mkChunk(kv("a", "1"), groupStart, kv("a", "2"), groupEnd)
		out := run(t, f, c)
		if len(out) != 1 || out[0] != c {
			t.Errorf("%v: want the input chunk itself", rules)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		rules []string
		key   string
		line  int
		msg   string
	}{
		{"set value is not a regex (upstream compiles it)", []string{"set a b", `set password ***REDACTED***`}, "set", 11, "regex(val)"},
		{"rename key is not a regex", []string{"rename (a b"}, "rename", 10, "regex(key)"},
		{"remove_regex invalid", []string{"remove_regex [a"}, "remove_regex", 10, "regex(key)"},
		{"too many parameters", []string{"set a b c d"}, "set", 10, "at most 3"},
		{"unterminated quote", []string{`set a "b`}, "set", 10, "unterminated"},
		{"set needs a value", []string{"set a"}, "set", 10, "takes KEY VALUE"},
		{"remove takes one key", []string{"remove a b"}, "remove", 10, "single KEY"},
		{"unknown condition", []string{"condition key_is a"}, "condition", 10, "unknown condition"},
		{"condition needs a key", []string{"condition key_exists"}, "condition", 10, "needs a KEY"},
		{"regex condition needs a value", []string{"condition key_value_matches a"}, "condition", 10, "missing VALUE"},
		{"bad condition regex", []string{"condition a_key_matches (x"}, "condition", 10, "unable to create regex"},
		{"bad condition value regex", []string{"condition matching_keys_have_matching_values x a(?<=b)"}, "condition", 10, "RE2"},
		{"bad condition record accessor", []string{"condition key_exists $a['b'"}, "condition", 10, "invalid record accessor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Spec().NewFilter(context.Background(), plugin.Settings{}, props(tc.rules...))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a *config.Error, got %v", err)
			}
			if ce.Key != tc.key || ce.Line != tc.line || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("got %v; want key %s at line %d with %q", err, tc.key, tc.line, tc.msg)
			}
		})
	}
}

func TestSpecValidates(t *testing.T) {
	reg := plugin.NewRegistry().MustAdd(Spec())
	lines := []string{"match *", "condition key_exists a"}
	for _, k := range Spec().Keys {
		if !k.Multi {
			t.Errorf("%s should be repeatable", k.Name)
		}
		if k.Name != "condition" {
			lines = append(lines, k.Name+" a b")
		}
	}
	if errs := reg.ValidateSection(plugin.KindFilter, props(lines...).Section); len(errs) != 0 {
		t.Fatalf("valid section rejected: %v", errs)
	}
	if errs := reg.ValidateSection(plugin.KindFilter, props("match *", "add_if_not_present a b").Section); len(errs) != 1 {
		t.Fatalf("add_if_not_present (not in upstream's config map) accepted: %v", errs)
	}
}

func BenchmarkModify(b *testing.B) {
	var bodies []any
	for i := range 1000 {
		bodies = append(bodies, kv(
			"log", fmt.Sprintf("request %d served in %dms", i, i%250),
			"stream", "stdout",
			"time", "2024-05-01T10:00:00.123456789Z",
			"kubernetes", kv("pod_name", fmt.Sprintf("app-%d", i%7), "namespace_name", "default"),
		))
	}
	c := mkChunk(bodies...)
	for _, bc := range []struct {
		name  string
		rules []string
	}{
		{"set_rename_remove", []string{"set cluster prod", "rename log message", "remove time"}},
		{"conditional", []string{"condition key_value_equals $kubernetes['namespace_name'] default",
			"condition key_value_matches stream ^std", "hard_copy stream source", "move_to_start kubernetes"}},
		{"condition_false", []string{"condition key_exists nope", "set a b"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := Spec().NewFilter(context.Background(), plugin.Settings{}, props(bc.rules...))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(c.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.FilterChunk(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
