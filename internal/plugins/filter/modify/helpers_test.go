package modify

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// ---- helpers ----

// kv builds a record body from alternating keys and values.
func kv(pairs ...any) event.Map {
	m := event.Map{}
	for i := 0; i < len(pairs); i += 2 {
		m = append(m, event.KV{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}

var (
	groupStart = event.Event{Time: event.Time{Sec: event.GroupStartSec}, Body: kv("resource", "r")}
	groupEnd   = event.Event{Time: event.Time{Sec: event.GroupEndSec}}
)

func mkChunk(bodies ...any) *chunk.Chunk {
	var data []byte
	n := 0
	for i, b := range bodies {
		switch b := b.(type) {
		case event.Map:
			ev := event.Event{Time: event.Time{Sec: int64(1700000000 + i), Nsec: 5}, Meta: kv("m", int64(i)), Body: b}
			data = ev.AppendMsgpack(data)
			n++
		case event.Event:
			data = b.AppendMsgpack(data)
		default:
			panic(fmt.Sprintf("mkChunk: %T", b))
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
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		return strconv.Quote(v)
	case []byte:
		return "b" + strconv.Quote(string(v))
	}
	return fmt.Sprint(v)
}

// records renders what a user sees downstream: each event's body, group
// markers as <start>/<end>.
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
			got = append(got, render(ev.Body))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != c.Records {
			t.Errorf("chunk says %d records, holds %d", c.Records, n)
		}
		if c.Tag != "app.log" || c.Type != chunk.Logs {
			t.Errorf("tag/type = %q/%q", c.Tag, c.Type)
		}
	}
	return got
}

// props builds a section from "key value" lines, numbered from line 10.
func props(lines ...string) *plugin.Props {
	s := &config.Section{Type: config.TypeFilter, File: "test.conf", Line: 9}
	s.Props = append(s.Props, config.Prop{Key: "name", Value: "modify", File: "test.conf", Line: 9})
	for i, l := range lines {
		k, v, _ := strings.Cut(l, " ")
		s.Props = append(s.Props, config.Prop{Key: k, Value: v, File: "test.conf", Line: 10 + i})
	}
	return plugin.NewProps(Spec(), s)
}

func newFilter(t *testing.T, lines ...string) plugin.Filter {
	t.Helper()
	f, err := Spec().NewFilter(context.Background(), plugin.Settings{Name: "modify.0"}, props(lines...))
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
	return out
}
