package recordaccessor

import (
	"fmt"
	"github.com/floe-io/floe/internal/onig"
	"reflect"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/event"
)

func TestParse(t *testing.T) {
	cases := []struct {
		pattern string
		key     string
		subkeys []Subkey
		found   bool
		err     bool
		warn    bool
	}{
		{pattern: "$log", key: "log", found: true},
		{pattern: "log", key: "log", found: true},
		{pattern: "Mem.used", key: "Mem.used", found: true},
		{pattern: "a", key: "a", found: true},
		{pattern: "$log.level", key: "log", found: true},
		{pattern: "$log level", key: "log", found: true},
		{pattern: "$a,b", key: "a", found: true},
		{pattern: "$kubernetes['labels']['app']", key: "kubernetes", found: true,
			subkeys: []Subkey{{Key: "labels"}, {Key: "app"}}},
		{pattern: "$k['a.b.c']", key: "k", found: true, subkeys: []Subkey{{Key: "a.b.c"}}},
		{pattern: "$k['it''s']", key: "k", found: true, subkeys: []Subkey{{Key: "it's"}}},
		{pattern: "$k['']", key: "k", found: true, subkeys: []Subkey{{Key: ""}}},
		{pattern: "$arr[0][12]['x']", key: "arr", found: true,
			subkeys: []Subkey{{IsIndex: true}, {Index: 12, IsIndex: true}, {Key: "x"}}},
		{pattern: "$_x9.y", key: "_x9", found: true},
		{pattern: "prefix$key", key: "prefix", found: true},
		{pattern: "$a$b", err: true},
		{pattern: "$a[", err: true},
		{pattern: "$a['b'", err: true},
		{pattern: "$a[b]", err: true},
		{pattern: "$a['b c']", err: true}, // the space ends the component
		{pattern: "$9x", found: false},
		{pattern: "$TAG", found: false},
		{pattern: "$TAG[1]", found: false},
		{pattern: "$TAGS", found: false},
		{pattern: "$", found: false},
		{pattern: "", found: false},
		{pattern: "$1abc", found: false},
		{pattern: "$@timestamp", key: "timestamp", found: true, warn: true}, // Fluent Bit skips the '@'
		{pattern: "$my-key", err: true, warn: true},
	}
	for _, tc := range cases {
		t.Run(tc.pattern, func(t *testing.T) {
			a, err := Parse(tc.pattern)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", a)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Found != tc.found || (tc.found && (a.Key != tc.key || !reflect.DeepEqual(a.Subkeys, tc.subkeys))) {
				t.Errorf("got key %q subkeys %+v found %v", a.Key, a.Subkeys, a.Found)
			}
			if (len(a.Warnings) > 0) != tc.warn {
				t.Errorf("warnings = %v", a.Warnings)
			}
		})
	}
}

func kv(pairs ...any) event.Map {
	m := event.Map{}
	for i := 0; i < len(pairs); i += 2 {
		m = append(m, event.KV{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}

func TestGet(t *testing.T) {
	body := kv(
		"log", "first",
		"n", int64(7),
		"k8s", kv("labels", kv("app", "web", "app", "api"), "arr", []any{"a", kv("x", "y")}),
		"log", "last",
		"s", "scalar",
	).AppendMsgpack(nil)
	cases := []struct {
		pattern string
		want    any // decoded value, or nil for not found
	}{
		{"log", "last"},
		{"$log", "last"},
		{"$n", int64(7)},
		{"$k8s['labels']['app']", "api"},
		{"$k8s['labels']", kv("app", "web", "app", "api")},
		{"$k8s['arr'][0]", "a"},
		{"$k8s['arr'][1]['x']", "y"},
		{"$k8s['arr'][2]", nil},
		{"$k8s['arr']['x']", nil},
		{"$k8s[0]", nil},
		{"$k8s['nope']", nil},
		{"$k8s['labels']['app']['deeper']", nil},
		{"$s['x'][3]", "scalar"},
		{"nope", nil},
		{"$TAG", nil},
	}
	for _, tc := range cases {
		a, err := Parse(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := a.Get(body)
		if ok != (tc.want != nil) {
			t.Errorf("%s: found = %v", tc.pattern, ok)
			continue
		}
		if !ok {
			continue
		}
		got, _, err := event.Value(v, 0)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v (%v), want %v", tc.pattern, got, err, tc.want)
		}
	}
	// binary keys are not matched by an accessor
	bin := event.AppendBytes(event.AppendMapHeader(nil, 1), []byte("log"))
	bin = event.AppendString(bin, "x")
	if _, ok := (&Accessor{Key: "log", Found: true}).Get(bin); ok {
		t.Error("binary key matched")
	}
	if _, ok := (&Accessor{Key: "log", Found: true}).Get([]byte{0x91, 0x01}); ok {
		t.Error("non-map body matched")
	}
}

func TestMatchString(t *testing.T) {
	body := kv("s", "abc", "b", []byte("abc"), "t", true, "n", int64(1)).AppendMsgpack(nil)
	re, _ := onig.Compile("b")
	for key, want := range map[string]bool{"s": true, "b": false, "t": false, "n": false, "x": false} {
		a, _ := Parse(key)
		if got := a.MatchString(body, re.Match); got != want {
			t.Errorf("%s: %v", key, got)
		}
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want []string
	}{
		{"log aa", 1, []string{"log", "aa"}},
		{"log  aa", 1, []string{"log", " aa"}},
		{"  log aa bb", 1, []string{"log", "aa bb"}},
		{"log", 1, []string{"log"}},
		{"log ", 1, []string{"log"}},
		{"a b c", 0, []string{"a", "b", "c"}},
		{"a  ", 0, []string{"a", ""}},
		{"", 1, nil},
	}
	for _, tc := range cases {
		if got := Split(tc.in, tc.max); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestSplitQuoted(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{"k v", []string{"k", "v"}, false},
		{`k "v w"`, []string{"k", "v w"}, false},
		{`k 'v w'`, []string{"k", "v w"}, false},
		{`k "a\"b\\c\d"`, []string{"k", `a"b\c\d`}, false},
		{`k 'it\'s' "x'y"`, []string{"k", "it's", "x'y"}, false},
		{`"a"b c`, []string{"a", "b", "c"}, false},
		{"a b c d", []string{"a", "b", "c", "d"}, false},
		{"a b c d e", []string{"a", "b", "c", "d e"}, false},
		{`k ""`, []string{"k", ""}, false},
		{`k "v`, nil, true},
	}
	for _, tc := range cases {
		got, err := SplitQuoted(tc.in, 3)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitQuoted(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSplitTokens(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"k v", []string{"k", "v"}},
		{"k   v  ", []string{"k", "v"}},
		{"k v w", []string{"k", "v", "w"}},
		{"k v w  x", []string{"k", "v", "w  x"}},
		{`k "v w"`, []string{"k", "v w"}},
		{`k "v \"w\""`, []string{"k", `v "w"`}},
		{`k "v w`, []string{"k", "v w"}},
		{`k ""`, []string{"k", ""}},
		{"k", []string{"k"}},
		{"k ", []string{"k"}},
		{"", nil},
	}
	for _, tc := range cases {
		if got := SplitTokens(tc.in, 2); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitTokens(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAppendPairs(t *testing.T) {
	body := kv("a", int64(1), "b", kv("c", "d")).AppendMsgpack(nil)
	pairs, err := AppendPairs(nil, body)
	if err != nil || len(pairs) != 2 {
		t.Fatal(pairs, err)
	}
	if got := AppendMap(nil, pairs); string(got) != string(body) {
		t.Errorf("round trip changed the map")
	}
	if _, err := AppendPairs(nil, []byte{0x91, 1}); err == nil || !strings.Contains(err.Error(), "not a map") {
		t.Errorf("err = %v", err)
	}
	if _, err := AppendPairs(nil, []byte{0x81, 0xa1}); err == nil {
		t.Error("truncated map accepted")
	}
}
