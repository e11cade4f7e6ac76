package null

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

func TestNull(t *testing.T) {
	for _, format := range []string{"msgpack", "json_lines", "json"} {
		sec := &config.Section{Type: config.TypeOutput, Props: []config.Prop{
			{Key: "name", Value: "null"}, {Key: "format", Value: format}}}
		if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindOutput, sec); len(errs) > 0 {
			t.Fatal(errs)
		}
		o, err := New(context.Background(), plugin.Settings{}, plugin.NewProps(Spec(), sec))
		if err != nil {
			t.Fatal(err)
		}
		e := event.Event{Time: event.Now(), Body: event.Map{{Key: "a", Value: "b"}}}
		for _, data := range [][]byte{e.AppendMsgpack(nil), nil, {0xc1}} {
			if err := o.Flush(context.Background(), &chunk.Chunk{Tag: "t", Data: data}); err != nil {
				t.Errorf("%s: %v", format, err)
			}
		}
	}
}

func TestBadFormatRejected(t *testing.T) {
	sec := &config.Section{Type: config.TypeOutput, Props: []config.Prop{
		{Key: "name", Value: "null"}, {Key: "format", Value: "xml"}}}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindOutput, sec); len(errs) == 0 {
		t.Error("format xml accepted")
	}
}
