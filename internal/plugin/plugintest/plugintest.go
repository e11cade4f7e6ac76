// Package plugintest holds what the tests of Floe's filter plugins share:
// building chunks and plugin properties, running a filter while checking it
// does not touch its input, and rendering the records a user would see.
package plugintest

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

// Tag is the tag of the chunks Chunk builds.
const Tag = "app.log"

// KV builds a record body from alternating keys and values.
func KV(pairs ...any) event.Map {
	m := event.Map{}
	for i := 0; i < len(pairs); i += 2 {
		m = append(m, event.KV{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}

// Group markers for chunks with OTLP-style groups.
var (
	GroupStart = event.Event{Time: event.Time{Sec: event.GroupStartSec}, Body: KV("resource", "r")}
	GroupEnd   = event.Event{Time: event.Time{Sec: event.GroupEndSec}}
)

// Chunk builds a logs chunk tagged Tag: an event.Map is a record (time
// 1700000000+i with metadata {"m": i}), an event.Event is written as is.
func Chunk(bodies ...any) *chunk.Chunk {
	var data []byte
	n := 0
	for i, b := range bodies {
		switch b := b.(type) {
		case event.Map:
			ev := event.Event{Time: event.Time{Sec: int64(1700000000 + i), Nsec: 5}, Meta: KV("m", int64(i)), Body: b}
			data = ev.AppendMsgpack(data)
			n++
		case event.Event:
			data = b.AppendMsgpack(data)
		default:
			panic(fmt.Sprintf("plugintest.Chunk: %T", b))
		}
	}
	return &chunk.Chunk{Tag: Tag, Type: chunk.Logs, Records: n, Data: data}
}

// Render prints a decoded value compactly and unambiguously (bin as b"…").
func Render(v any) string {
	switch v := v.(type) {
	case event.Map:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = strconv.Quote(p.Key) + ":" + Render(p.Value)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = Render(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		return strconv.Quote(v)
	case []byte:
		return "b" + strconv.Quote(string(v))
	}
	return fmt.Sprint(v)
}

// Bodies renders what a user sees downstream: each record's body, group
// markers as <start>/<end>. It checks each chunk's record count, tag and type.
func Bodies(t testing.TB, out []*chunk.Chunk) []string {
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
			got = append(got, Render(ev.Body))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != c.Records {
			t.Errorf("chunk says %d records, holds %d", c.Records, n)
		}
		if c.Tag != Tag || c.Type != chunk.Logs {
			t.Errorf("tag/type = %q/%q", c.Tag, c.Type)
		}
	}
	return got
}

// Props builds a section of spec from "key value" lines, numbered from line
// 10 of test.conf (the name on line 9).
func Props(spec *plugin.Spec, lines ...string) *plugin.Props {
	s := &config.Section{Type: string(spec.Kind), File: "test.conf", Line: 9}
	s.Props = append(s.Props, config.Prop{Key: "name", Value: spec.Name, File: "test.conf", Line: 9})
	for i, l := range lines {
		k, v, _ := strings.Cut(l, " ")
		s.Props = append(s.Props, config.Prop{Key: k, Value: v, File: "test.conf", Line: 10 + i})
	}
	return plugin.NewProps(spec, s)
}

// NewFilter constructs spec's filter from "key value" lines.
func NewFilter(t testing.TB, spec *plugin.Spec, lines ...string) plugin.Filter {
	t.Helper()
	f, err := spec.NewFilter(context.Background(), plugin.Settings{Name: spec.Name + ".0"}, Props(spec, lines...))
	if err != nil {
		t.Fatalf("NewFilter: %v", err)
	}
	return f
}

// Run filters c and fails the test if the filter modified c's bytes.
func Run(t testing.TB, f plugin.Filter, c *chunk.Chunk) []*chunk.Chunk {
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
