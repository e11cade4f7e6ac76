package stdout

import (
	"bytes"
	"context"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

func props(t testing.TB, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeOutput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "stdout"})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i})
	}
	reg := plugin.NewRegistry().MustAdd(Spec())
	if errs := reg.ValidateSection(plugin.KindOutput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func newTest(t testing.TB, kv ...string) (*Output, *countingWriter) {
	t.Helper()
	w := &countingWriter{}
	o, err := newOutput(plugin.Settings{Name: "stdout.0", Service: plugin.Service{JSON: event.DefaultJSON}}, props(t, kv...), w)
	if err != nil {
		t.Fatal(err)
	}
	return o, w
}

func mp(kv ...any) event.Map {
	m := event.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, event.KV{Key: kv[i].(string), Value: kv[i+1]})
	}
	return m
}

func testChunk() *chunk.Chunk {
	var data []byte
	e1 := event.Event{Time: event.Time{Sec: 1700000000, Nsec: 123456789}, Body: mp("message", "dummy")}
	e2 := event.Event{Time: event.Time{Sec: 1700000001, Nsec: 1000}, Meta: mp("m", int64(1)),
		Body: mp("n", int64(-1), "f", 1.5, "nested", mp("a", []any{true, nil}))}
	data = e1.AppendMsgpack(data)
	data = e2.AppendMsgpack(data)
	return &chunk.Chunk{Tag: "dummy.0", Records: 2, Data: data}
}

func TestSpecDefaults(t *testing.T) {
	s := Spec()
	if s.Name != "stdout" || s.Kind != plugin.KindOutput || s.NewOutput == nil {
		t.Fatalf("bad spec %+v", s)
	}
	for k, want := range map[string]string{"format": "msgpack", "json_date_key": "date", "json_date_format": "double"} {
		if key, ok := s.Key(k); !ok || key.Default != want {
			t.Errorf("key %s: %+v %v", k, key, ok)
		}
	}
}

func TestMsgpackFormat(t *testing.T) {
	o, w := newTest(t)
	if err := o.Flush(context.Background(), testChunk()); err != nil {
		t.Fatal(err)
	}
	want := `[0] dummy.0: [[1700000000.123456789, {}], {"message"=>"dummy"}]
[1] dummy.0: [[1700000001.000001000, {"m"=>1}], {"n"=>-1, "f"=>1.500000, "nested"=>{"a"=>[true, nil]}}]
`
	if w.String() != want {
		t.Errorf("got\n%s\nwant\n%s", w.String(), want)
	}
	if w.writes != 1 {
		t.Errorf("%d writes, want 1", w.writes)
	}
	// N restarts at 0 on every flush.
	w.Reset()
	if err := o.Flush(context.Background(), testChunk()); err != nil {
		t.Fatal(err)
	}
	if w.String() != want {
		t.Errorf("second flush got\n%s", w.String())
	}
}

func TestJSONFormats(t *testing.T) {
	cases := []struct {
		kv   []string
		want string
	}{
		{[]string{"format", "json_lines"},
			`{"date":1700000000.123457,"message":"dummy"}` + "\n" +
				`{"date":1700000001.000001,"__internal__":{"log_metadata":{"m":1}},"n":-1,"f":1.5,"nested":{"a":[true,null]}}` + "\n"},
		{[]string{"format", "json", "json_date_format", "iso8601"},
			`[{"date":"2023-11-14T22:13:20.123456Z","message":"dummy"},` +
				`{"date":"2023-11-14T22:13:21.000001Z","__internal__":{"log_metadata":{"m":1}},"n":-1,"f":1.5,"nested":{"a":[true,null]}}]` + "\n"},
		{[]string{"format", "json_stream", "json_date_key", "false"},
			`{"message":"dummy"}{"__internal__":{"log_metadata":{"m":1}},"n":-1,"f":1.5,"nested":{"a":[true,null]}}` + "\n"},
		{[]string{"format", "JSON_LINES", "json_date_key", "ts", "json_date_format", "epoch"},
			`{"ts":1700000000,"message":"dummy"}` + "\n" +
				`{"ts":1700000001,"__internal__":{"log_metadata":{"m":1}},"n":-1,"f":1.5,"nested":{"a":[true,null]}}` + "\n"},
	}
	for _, c := range cases {
		o, w := newTest(t, c.kv...)
		if err := o.Flush(context.Background(), testChunk()); err != nil {
			t.Fatal(err)
		}
		if w.String() != c.want {
			t.Errorf("%v: got\n%s\nwant\n%s", c.kv, w.String(), c.want)
		}
	}
}

func TestDecodeErrorIsPermanent(t *testing.T) {
	o, w := newTest(t)
	c := testChunk()
	c.Data = append(c.Data, 0x92, 0xc1)
	err := o.Flush(context.Background(), c)
	if !plugin.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if !bytes.HasPrefix(w.Bytes(), []byte("[0] dummy.0:")) || bytes.Count(w.Bytes(), []byte("\n")) != 2 {
		t.Errorf("records before the bad event not printed: %q", w.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }

func TestWriteErrorIsRetry(t *testing.T) {
	o, err := newOutput(plugin.Settings{}, props(t), failWriter{})
	if err != nil {
		t.Fatal(err)
	}
	err = o.Flush(context.Background(), testChunk())
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("err = %v, want retry", err)
	}
}

func BenchmarkFlushJSONLines1000(b *testing.B) {
	var data []byte
	for i := range 1000 {
		e := event.Event{Time: event.Time{Sec: 1700000000 + int64(i), Nsec: 5}, Body: mp(
			"log", "2023-11-14T22:13:20.123Z INFO request handled path=/api/v1/items status=200",
			"stream", "stdout", "status", int64(200), "latency", 0.0123,
			"kubernetes", mp("pod_name", "api-7d9f", "namespace_name", "default"))}
		data = e.AppendMsgpack(data)
	}
	c := &chunk.Chunk{Tag: "kube", Records: 1000, Data: data}
	o, w := newTest(b, "format", "json_lines")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		if err := o.Flush(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}
