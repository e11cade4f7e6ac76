package recordmodifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

var mem = kv("Mem.total", int64(1016024), "Mem.used", int64(716672), "Mem.free", int64(299352),
	"Swap.total", int64(2064380), "Swap.used", int64(32656), "Swap.free", int64(2031724))

func TestRecordModifier(t *testing.T) {
	cases := []struct {
		name  string
		rules []string
		in    []any
		want  []string
	}{
		{"record appends in order", []string{"record hostname localhost.localdomain", "record product Awesome_Tool"},
			[]any{kv("a", int64(1))},
			[]string{`{"a":1,"hostname":"localhost.localdomain","product":"Awesome_Tool"}`}},
		{"record value is a string", []string{"record n 42"}, []any{kv()}, []string{`{"n":"42"}`}},
		{"record duplicates an existing key", []string{"record a x"}, []any{kv("a", "1")}, []string{`{"a":"1","a":"x"}`}},
		{"record quoted value", []string{`record msg "hello \"big\" world"`}, []any{kv()}, []string{`{"msg":"hello \"big\" world"}`}},
		{"record with more than two words is ignored", []string{"record msg hello world", "record ok 1"},
			[]any{kv()}, []string{`{"ok":"1"}`}},
		{"record with one word is ignored", []string{"record lonely", "record ok 1"},
			[]any{kv()}, []string{`{"ok":"1"}`}},
		{"remove_key", []string{"remove_key Swap.total", "remove_key Swap.used", "remove_key Swap.free"},
			[]any{mem}, []string{`{"Mem.total":1016024,"Mem.used":716672,"Mem.free":299352}`}},
		{"remove_key is case-insensitive", []string{"remove_key swap.TOTAL"},
			[]any{kv("Swap.total", "1", "Swap.totals", "2")}, []string{`{"Swap.totals":"2"}`}},
		{"remove_key with * is a prefix", []string{"remove_key swap.*"},
			[]any{mem}, []string{`{"Mem.total":1016024,"Mem.used":716672,"Mem.free":299352}`}},
		{"remove_key * alone removes everything, so the record is dropped", []string{"remove_key *"},
			[]any{kv("a", "1"), kv("b", "2")}, []string{`{"a":"1"}`, `{"b":"2"}`}}, // every record empty: chunk passed on (upstream)
		{"allowlist_key", []string{"allowlist_key Mem.total", "allowlist_key Mem.used", "allowlist_key Mem.free"},
			[]any{mem}, []string{`{"Mem.total":1016024,"Mem.used":716672,"Mem.free":299352}`}},
		{"whitelist_key is an alias", []string{"whitelist_key mem.*"},
			[]any{mem}, []string{`{"Mem.total":1016024,"Mem.used":716672,"Mem.free":299352}`}},
		{"allowlist drops records left empty", []string{"allowlist_key keep"},
			[]any{kv("keep", "1", "x", "2"), kv("x", "3"), kv("keep", "4")},
			[]string{`{"keep":"1"}`, `{"keep":"4"}`}},
		{"allowlist then record", []string{"allowlist_key keep", "record added yes"},
			[]any{kv("keep", "1", "x", "2"), kv("x", "3")},
			[]string{`{"keep":"1","added":"yes"}`, `{"added":"yes"}`}},
		{"nested keys are not looked at", []string{"remove_key app"},
			[]any{kv("k8s", kv("app", "x"), "app", "y")}, []string{`{"k8s":{"app":"x"}}`}},
		{"binary values are kept as is", []string{"remove_key a"},
			[]any{kv("a", "1", "b", []byte{0, 1})}, []string{`{"b":b"\x00\x01"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilter(t, tc.rules...)
			got := records(t, run(t, f, mkChunk(tc.in...)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUIDKey(t *testing.T) {
	f := newFilter(t, "uuid_key id", "record r 1")
	out := run(t, f, mkChunk(kv("a", "1"), kv("a", "2")))
	seen := map[string]bool{}
	it := event.NewIter(out[0].Data)
	for it.Next() {
		ev, err := it.Event().Decode()
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Body) != 3 || ev.Body[1].Key != "r" || ev.Body[2].Key != "id" {
			t.Fatalf("uuid must come last: %s", render(ev.Body))
		}
		id, _ := ev.Body[2].Value.(string)
		if !uuidRE.MatchString(id) || seen[id] {
			t.Errorf("bad or repeated uuid %q", id)
		}
		seen[id] = true
	}
	if len(seen) != 2 {
		t.Errorf("saw %d uuids", len(seen))
	}
}

func TestGroupMarkersTimeAndMeta(t *testing.T) {
	f := newFilter(t, "remove_key drop")
	ev := event.Event{Time: event.Time{Sec: 1700000000, Nsec: 42}, Meta: kv("m", "x"), Body: kv("drop", "1", "keep", "2")}
	untouched := event.Event{Time: event.Time{Sec: 9}, Body: kv("keep", "3")}
	c := mkChunk(groupStart, ev, untouched, groupEnd)
	out := run(t, f, c)
	if got := records(t, out); !slices.Equal(got, []string{"<start>", `{"keep":"2"}`, `{"keep":"3"}`, "<end>"}) {
		t.Fatalf("got %v", got)
	}
	it := event.NewIter(out[0].Data)
	it.Next()
	it.Next()
	got, _ := it.Event().Decode()
	if got.Time != ev.Time || render(got.Meta) != `{"m":"x"}` {
		t.Errorf("time/meta = %v %s", got.Time, render(got.Meta))
	}
	it.Next()
	if !bytes.Equal(it.Event().Raw, untouched.AppendMsgpack(nil)) {
		t.Error("untouched record re-encoded")
	}
}

func TestUnchangedChunkIsPassedOn(t *testing.T) {
	for _, rules := range [][]string{{"remove_key nope"}, {"allowlist_key a*"}, nil} {
		f := newFilter(t, rules...)
		c := mkChunk(kv("a", "1"), groupStart, kv("ab", "2"), groupEnd)
		if out := run(t, f, c); len(out) != 1 || out[0] != c {
			t.Errorf("%v: want the input chunk itself", rules)
		}
	}
}

func TestInvalidRecordIsLogged(t *testing.T) {
	var buf bytes.Buffer
	set := plugin.Settings{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if _, err := Spec().NewFilter(context.Background(), set, props("record only_key")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "expects 'KEY VALUE'") {
		t.Errorf("log = %q", buf.String())
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := Spec().NewFilter(context.Background(), plugin.Settings{}, props("remove_key a", "record x y", "whitelist_key b"))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "whitelist_key" || ce.Line != 12 || !strings.Contains(ce.Msg, "exclusive") {
		t.Fatalf("got %v", err)
	}
}

func TestSpecValidates(t *testing.T) {
	reg := plugin.NewRegistry().MustAdd(Spec())
	s := props("match *", "record a b", "record c d", "remove_key x", "allowlist_key y", "whitelist_key z", "uuid_key id").Section
	if errs := reg.ValidateSection(plugin.KindFilter, s); len(errs) != 0 {
		t.Fatalf("valid section rejected: %v", errs)
	}
}

func BenchmarkRecordModifier(b *testing.B) {
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
		{"record", []string{"record hostname node-1", "record cluster prod"}},
		{"remove_key", []string{"remove_key time", "remove_key kube*"}},
		{"allowlist_key", []string{"allowlist_key log", "allowlist_key stream"}},
		{"uuid_key", []string{"uuid_key id"}},
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
