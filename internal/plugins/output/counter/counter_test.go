package counter

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

func events(n int, group bool) []byte {
	var b []byte
	if group {
		g := event.Event{Time: event.Time{Sec: event.GroupStartSec}}
		b = g.AppendMsgpack(b)
	}
	for i := range n {
		e := event.Event{Time: event.Time{Sec: int64(i)}, Body: event.Map{{Key: "i", Value: i}}}
		b = e.AppendMsgpack(b)
	}
	if group {
		g := event.Event{Time: event.Time{Sec: event.GroupEndSec}}
		b = g.AppendMsgpack(b)
	}
	return b
}

func TestCounter(t *testing.T) {
	sec := &config.Section{Type: config.TypeOutput, Props: []config.Prop{{Key: "name", Value: "counter"}}}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindOutput, sec); len(errs) > 0 {
		t.Fatal(errs)
	}
	out, err := New(context.Background(), plugin.Settings{}, plugin.NewProps(Spec(), sec))
	if err != nil {
		t.Fatal(err)
	}
	o := out.(*Output)
	var w bytes.Buffer
	o.w = &w
	o.now = func() time.Time { return time.Unix(1700000000, 123456789) }
	for _, c := range []*chunk.Chunk{
		{Tag: "a", Data: events(3, false)},
		{Tag: "a", Data: events(2, true)}, // group markers count, as flb_mp_count counts them
		{Tag: "a", Data: nil},
		{Tag: "a", Data: append(events(1, false), 0xc1)}, // counting stops at a bad byte
	} {
		if err := o.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	want := "1700000000.123457,3 (total = 3)\n" +
		"1700000000.123457,4 (total = 7)\n" +
		"1700000000.123457,0 (total = 7)\n" +
		"1700000000.123457,1 (total = 8)\n"
	if w.String() != want {
		t.Errorf("got\n%s\nwant\n%s", w.String(), want)
	}
}
