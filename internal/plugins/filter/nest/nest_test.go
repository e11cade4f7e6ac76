package nest

import (
	"context"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var kv = plugintest.KV

// mem is the record of Fluent Bit's mem input the documentation's examples use.
func mem() event.Map {
	return kv("Mem.total", int64(1016044), "Mem.used", int64(716672), "Mem.free", int64(299372),
		"Swap.total", int64(1046524), "Swap.used", int64(0), "Swap.free", int64(1046524))
}

// chain runs filters, each given by its "key value" lines, one after the other.
func chain(t *testing.T, c *chunk.Chunk, filters ...[]string) []*chunk.Chunk {
	t.Helper()
	cur := []*chunk.Chunk{c}
	for _, lines := range filters {
		f := plugintest.NewFilter(t, Spec(), lines...)
		var next []*chunk.Chunk
		for _, in := range cur {
			next = append(next, plugintest.Run(t, f, in)...)
		}
		cur = next
	}
	return cur
}

func TestDocumentedExamples(t *testing.T) {
	nestMem := []string{"operation nest", "wildcard Mem.*", "nest_under Memstats", "remove_prefix Mem."}
	layers := [][]string{
		{"operation nest", "wildcard Mem.*", "nest_under LAYER1"},
		{"operation nest", "wildcard LAYER1*", "nest_under LAYER2"},
		{"operation nest", "wildcard LAYER2*", "nest_under LAYER3"},
	}
	cases := []struct {
		name    string
		in      event.Map
		filters [][]string
		want    string
	}{
		{
			name:    "usage nest",
			in:      kv("Key1", "Value1", "Key2", "Value2", "OtherKey", "Value3"),
			filters: [][]string{{"operation nest", "wildcard Key*", "nest_under NestKey"}},
			want:    `{"OtherKey":"Value3","NestKey":{"Key1":"Value1","Key2":"Value2"}}`,
		},
		{
			name:    "usage lift",
			in:      kv("OtherKey", "Value3", "NestKey", kv("Key1", "Value1", "Key2", "Value2")),
			filters: [][]string{{"operation lift", "nested_under NestKey"}},
			want:    `{"OtherKey":"Value3","Key1":"Value1","Key2":"Value2"}`,
		},
		{
			name:    "example 1: nest with prefix removal",
			in:      mem(),
			filters: [][]string{nestMem},
			want:    `{"Swap.total":1046524,"Swap.used":0,"Swap.free":1046524,"Memstats":{"total":1016044,"used":716672,"free":299372}}`,
		},
		{
			name: "example 2: nest and lift undo",
			in:   mem(),
			filters: [][]string{
				{"operation nest", "wildcard Mem.*", "wildcard Swap.*", "nest_under Stats", "add_prefix NESTED"},
				{"operation lift", "nested_under Stats", "remove_prefix NESTED"},
			},
			want: `{"Mem.total":1016044,"Mem.used":716672,"Mem.free":299372,"Swap.total":1046524,"Swap.used":0,"Swap.free":1046524}`,
		},
		{
			name:    "example 3: nest 3 levels deep",
			in:      mem(),
			filters: layers,
			want:    `{"Swap.total":1046524,"Swap.used":0,"Swap.free":1046524,"LAYER3":{"LAYER2":{"LAYER1":{"Mem.total":1016044,"Mem.used":716672,"Mem.free":299372}}}}`,
		},
		{
			name: "example 4: multiple nest and lift filters with prefix",
			in:   mem(),
			filters: append(append([][]string{}, layers...),
				[]string{"operation lift", "nested_under LAYER3", "add_prefix Lifted3_"},
				[]string{"operation lift", "nested_under Lifted3_LAYER2", "add_prefix Lifted3_Lifted2_"},
				[]string{"operation lift", "nested_under Lifted3_Lifted2_LAYER1", "add_prefix Lifted3_Lifted2_Lifted1_"},
			),
			want: `{"Swap.total":1046524,"Swap.used":0,"Swap.free":1046524,` +
				`"Lifted3_Lifted2_Lifted1_Mem.total":1016044,"Lifted3_Lifted2_Lifted1_Mem.used":716672,"Lifted3_Lifted2_Lifted1_Mem.free":299372}`,
		},
		{
			name:    "kubernetes lift with prefix",
			in:      kv("log", "hi", "kubernetes", kv("pod_name", "p", "labels", kv("app", "a"))),
			filters: [][]string{{"operation lift", "nested_under kubernetes", "add_prefix kubernetes_"}},
			want:    `{"log":"hi","kubernetes_pod_name":"p","kubernetes_labels":{"app":"a"}}`,
		},
		{
			name:    "exact wildcard does not match by prefix",
			in:      kv("Key", 1, "Key1", 2),
			filters: [][]string{{"operation nest", "wildcard Key", "nest_under N"}},
			want:    `{"Key1":2,"N":{"Key":1}}`,
		},
		{
			name:    "remove_prefix leaves other keys as they are",
			in:      kv("a.x", 1, "b", 2),
			filters: [][]string{{"operation nest", "wildcard a.*", "wildcard b", "nest_under N", "remove_prefix a."}},
			want:    `{"N":{"x":1,"b":2}}`,
		},
		{
			name:    "lift of a non-map keeps it",
			in:      kv("NestKey", "scalar", "k", 1),
			filters: [][]string{{"operation lift", "nested_under NestKey"}},
			want:    `{"NestKey":"scalar","k":1}`,
		},
		{
			name:    "lift of every occurrence",
			in:      kv("N", kv("a", 1), "k", 0, "N", kv("b", 2)),
			filters: [][]string{{"operation lift", "nested_under N"}},
			want:    `{"k":0,"a":1,"b":2}`,
		},
		{
			name:    "nest under an existing key keeps both",
			in:      kv("N", "old", "x1", 1),
			filters: [][]string{{"operation nest", "wildcard x*", "nest_under N"}},
			want:    `{"N":"old","N":{"x1":1}}`,
		},
		{
			name:    "nothing to nest",
			in:      kv("a", 1),
			filters: [][]string{{"operation nest", "wildcard x*", "nest_under N"}},
			want:    `{"a":1}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := chain(t, plugintest.Chunk(tc.in), tc.filters...)
			got := plugintest.Bodies(t, out)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got  %v\nwant %s", got, tc.want)
			}
		})
	}
}

func TestKeepsTimeMetadataGroupsAndUnchangedChunks(t *testing.T) {
	f := plugintest.NewFilter(t, Spec(), "operation nest", "wildcard a*", "nest_under N")
	c := plugintest.Chunk(plugintest.GroupStart, kv("a1", 1, "b", 2), kv("b", 3), plugintest.GroupEnd)
	out := plugintest.Run(t, f, c)
	got := strings.Join(plugintest.Bodies(t, out), " ")
	if want := `<start> {"b":2,"N":{"a1":1}} {"b":3} <end>`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	it := event.NewIter(out[0].Data)
	var times []int64
	var metas []string
	for it.Next() {
		ev, _ := it.Event().Decode()
		if ev.Kind() == event.KindRecord {
			times = append(times, ev.Time.Sec)
			metas = append(metas, plugintest.Render(ev.Meta))
		}
	}
	if len(times) != 2 || times[0] != 1700000001 || times[1] != 1700000002 || metas[0] != `{"m":1}` || metas[1] != `{"m":2}` {
		t.Errorf("times %v metas %v: time or metadata lost", times, metas)
	}
	same := plugintest.Chunk(kv("b", 1))
	if out := plugintest.Run(t, f, same); len(out) != 1 || out[0] != same {
		t.Error("a chunk with nothing to nest should pass on as is")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		lines []string
		want  string
	}{
		{[]string{"wildcard a*", "nest_under N"}, "operation is required"},
		{[]string{"operation nest", "wildcard a*"}, "needs nest_under"},
		{[]string{"operation lift"}, "needs nested_under"},
		{[]string{"operation nest", "nest_under N"}, "at least one wildcard"},
		{[]string{"operation lift", "nested_under N", "add_prefix a", "remove_prefix b"}, "exclusive"},
	}
	for _, tc := range cases {
		_, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), tc.lines...))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.conf:") {
			t.Errorf("%v: err = %v, want a positioned error containing %q", tc.lines, err, tc.want)
		}
	}
	// floe validate checks values against the spec: a bad operation is named.
	reg := plugin.NewRegistry().MustAdd(Spec())
	s := &config.Section{Type: "filter", File: "f.conf", Line: 1, Props: []config.Prop{
		{Key: "name", Value: "nest", File: "f.conf", Line: 1},
		{Key: "operation", Value: "flatten", File: "f.conf", Line: 2},
		{Key: "nest_level", Value: "2", File: "f.conf", Line: 3},
	}}
	errs := reg.ValidateSection(plugin.KindFilter, s)
	if len(errs) != 2 || !strings.Contains(errs.Error(), "operation") || !strings.Contains(errs.Error(), "nest_level") {
		t.Errorf("ValidateSection = %v, want errors for operation and nest_level", errs)
	}
}

func BenchmarkNest(b *testing.B) {
	f := plugintest.NewFilter(b, Spec(), "operation nest", "wildcard Mem.*", "nest_under Memstats", "remove_prefix Mem.")
	var bodies []any
	for range 100 {
		bodies = append(bodies, mem())
	}
	c := plugintest.Chunk(bodies...)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.FilterChunk(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
}
