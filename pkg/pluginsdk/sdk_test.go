package pluginsdk

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/proto/pluginv1"
)

func TestEventsDecodesV1V2TimesMetadataAndStrings(t *testing.T) {
	var b []byte
	// v2 with EventTime and metadata.
	b = append(b, 0x92, 0x92)
	b = event.Time{Sec: 1700000000, Nsec: 123}.AppendMsgpack(b)
	b = event.AppendMapHeader(b, 1)
	b = event.AppendString(event.AppendString(b, "trace"), "abc")
	b = event.AppendMapHeader(b, 2)
	b = event.AppendString(event.AppendString(b, "msg"), "hi")
	b = event.AppendString(b, "nested")
	b = event.AppendMapHeader(b, 1)
	b = event.AppendString(event.AppendString(b, "k"), "v")
	// v1 with an integer time.
	b = append(b, 0x92)
	b = event.AppendInt(b, 1700000001)
	b = event.AppendMapHeader(b, 1)
	b = event.AppendInt(event.AppendString(b, "n"), 7)
	// v1 with a float time.
	b = append(b, 0x92)
	b = event.AppendFloat64(b, 1700000002.5)
	b = event.AppendMapHeader(b, 1)
	b = event.AppendBytes(event.AppendString(b, "raw"), []byte{1, 2})

	evs, err := Chunk{Tag: "t", EventType: Logs, Data: b}.Events()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	if !evs[0].Time.Equal(time.Unix(1700000000, 123)) || evs[0].Metadata["trace"] != "abc" || evs[0].Record["msg"] != "hi" {
		t.Errorf("v2 event %+v", evs[0])
	}
	if nested, ok := evs[0].Record["nested"].(map[string]any); !ok || nested["k"] != "v" {
		t.Errorf("nested map %#v", evs[0].Record["nested"])
	}
	if !evs[1].Time.Equal(time.Unix(1700000001, 0)) || evs[1].Record["n"] != int64(7) || len(evs[1].Metadata) != 0 {
		t.Errorf("v1 int-time event %+v", evs[1])
	}
	if !evs[2].Time.Equal(time.Unix(1700000002, 5e8)) {
		t.Errorf("float time %v", evs[2].Time)
	}
	if raw, ok := evs[2].Record["raw"].([]byte); !ok || len(raw) != 2 {
		t.Errorf("binary value %#v", evs[2].Record["raw"])
	}
	if _, err := (Chunk{Data: append(b, 0x92, 0xc1)}).Events(); err == nil || !strings.Contains(err.Error(), "offset") {
		t.Errorf("bad trailing event: %v", err)
	}
}

type fakeOut struct {
	err   error
	panic bool
	exits int
}

func (f *fakeOut) Flush(context.Context, Chunk) error {
	if f.panic {
		panic("boom")
	}
	return f.err
}

func (f *fakeOut) Exit(context.Context) error { f.exits++; return nil }

func TestServerCarriesErrorClassesAndPanics(t *testing.T) {
	fo := &fakeOut{}
	var got Config
	s := newServer(Definition{Name: "x", ConfigKeys: []ConfigKey{{Name: "Endpoint", Default: "d"}, {Name: "level"}},
		New: func(_ context.Context, c Config) (Output, error) { got = c; return fo, nil }})
	ctx := context.Background()
	if r, _ := s.Init(ctx, &pluginv1.InitRequest{Instance: "x.0", Properties: []*pluginv1.Property{{Key: "level", Value: "3"}}}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if got.Get("endpoint") != "d" || got.Get("LEVEL") != "3" || got.Instance != "x.0" {
		t.Fatalf("config %+v", got)
	}
	flush := func() *pluginv1.FlushResponse {
		r, err := s.Flush(ctx, &pluginv1.FlushRequest{Instance: "x.0", Tag: "t", EventType: "logs"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := flush(); r.Status != pluginv1.Status_STATUS_OK {
		t.Errorf("ok: %v", r)
	}
	fo.err = errors.New("later")
	if r := flush(); r.Status != pluginv1.Status_STATUS_RETRY || r.Error.Message != "later" {
		t.Errorf("plain error: %v", r)
	}
	fo.err = RetryAfter(errors.New("slow down"), 1500*time.Millisecond)
	if r := flush(); r.Status != pluginv1.Status_STATUS_RETRY || r.Error.RetryAfterMs != 1500 {
		t.Errorf("retry after: %v", r)
	}
	fo.err = Permanent(errors.New("bad data"))
	if r := flush(); r.Status != pluginv1.Status_STATUS_ERROR || r.Error.Message != "bad data" {
		t.Errorf("permanent: %v", r)
	}
	fo.panic = true
	if r := flush(); r.Status != pluginv1.Status_STATUS_RETRY || !r.Error.Panic || !strings.Contains(r.Error.Message, "boom") {
		t.Errorf("panic: %v", r)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.Exit(ctx, &pluginv1.ExitRequest{Instance: "x.0"}); err != nil {
			t.Fatal(err)
		}
	}
	if fo.exits != 1 {
		t.Errorf("exit ran %d times", fo.exits)
	}
	if r := flush(); r.Status != pluginv1.Status_STATUS_RETRY {
		t.Errorf("flush after exit: %v", r)
	}
}

// Events never panics on arbitrary bytes: it returns events or an error.
func FuzzChunkEvents(f *testing.F) {
	ev := event.Event{Time: event.Time{Sec: 1, Nsec: 2}, Body: event.Map{{Key: "a", Value: "b"}}}
	f.Add(ev.AppendMsgpack(nil))
	f.Add([]byte{0x92, 0x01, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := Chunk{Data: data}.Events()
		if err == nil {
			for _, e := range evs {
				if e.Record == nil {
					t.Fatal("event without a record map")
				}
			}
		}
	})
}

// Describe carries each key's type and allowed values to Floe, names lowercased.
func TestDescribeCarriesKeyTypesAndAllowedValues(t *testing.T) {
	s := newServer(Definition{Name: "x", ConfigKeys: []ConfigKey{
		{Name: "Batch", Type: Int, Default: "10"},
		{Name: "mode", Allowed: []string{"fast", "safe"}},
		{Name: "label"},
	}, New: func(context.Context, Config) (Output, error) { return &fakeOut{}, nil }})
	r, err := s.Describe(context.Background(), &pluginv1.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ConfigKeys) != 3 {
		t.Fatalf("%d keys", len(r.ConfigKeys))
	}
	b, m, l := r.ConfigKeys[0], r.ConfigKeys[1], r.ConfigKeys[2]
	if b.Name != "batch" || b.Type != "int" || b.DefaultValue != "10" {
		t.Errorf("batch: %v", b)
	}
	if m.Type != "" || strings.Join(m.Allowed, ",") != "fast,safe" {
		t.Errorf("mode: %v", m)
	}
	if l.Type != "" || len(l.Allowed) != 0 {
		t.Errorf("label: %v", l)
	}
	if strings.Join(r.EventTypes, ",") != "logs" {
		t.Errorf("event types %v, want the default logs", r.EventTypes)
	}
}
