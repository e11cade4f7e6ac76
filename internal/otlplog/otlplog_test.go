package otlplog

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var (
	traceID = pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	spanID  = pcommon.SpanID{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8}
	t0      = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
)

// decoded is one event as the test reads it back.
type decoded struct {
	kind event.Kind
	ev   event.Event
}

// collect runs FromLogs and decodes every batch, checking each batch's
// record count against what it holds.
func collect(t *testing.T, ld plog.Logs, opt *Options, maxBytes int) ([][]decoded, int) {
	t.Helper()
	var batches [][]decoded
	total := 0
	err := FromLogs(ld, opt, maxBytes, func(data []byte, records int) error {
		var b []decoded
		n := 0
		it := event.NewIter(data)
		for it.Next() {
			raw := it.Event()
			ev, err := raw.Decode()
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if raw.Kind() == event.KindRecord {
				n++
			}
			b = append(b, decoded{raw.Kind(), ev})
		}
		if err := it.Err(); err != nil {
			t.Fatalf("iterate: %v", err)
		}
		if n != records {
			t.Errorf("batch says %d records, holds %d", records, n)
		}
		if maxBytes > 0 && len(data) > maxBytes && records > 1 {
			t.Errorf("batch of %d bytes with %d records exceeds %d", len(data), records, maxBytes)
		}
		total += records
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return batches, total
}

func render(v any) string { return plugintest.Render(v) }

func sampleLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().SetDroppedAttributesCount(2)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.SetSchemaUrl("https://scope/schema")
	sl.Scope().SetName("app/logger")
	sl.Scope().SetVersion("1.2.3")
	sl.Scope().Attributes().PutBool("scoped", true)
	sl.Scope().SetDroppedAttributesCount(1)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")
	lr.Body().SetStr("disk almost full")
	lr.Attributes().PutInt("disk.pct", 97)
	lr.Attributes().PutStr("host", "a")
	lr.SetDroppedAttributesCount(3)
	lr.SetTraceID(traceID)
	lr.SetSpanID(spanID)
	lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	lr.SetEventName("disk.alert")
	return ld
}

func TestFromLogsGroupHeaderAndRecord(t *testing.T) {
	batches, n := collect(t, sampleLogs(), nil, 0)
	if n != 1 || len(batches) != 1 || len(batches[0]) != 3 {
		t.Fatalf("got %d records in %d batches: %+v", n, len(batches), batches)
	}
	b := batches[0]
	if b[0].kind != event.KindGroupStart || b[2].kind != event.KindGroupEnd || b[1].kind != event.KindRecord {
		t.Fatalf("kinds = %v %v %v", b[0].kind, b[1].kind, b[2].kind)
	}
	if got, want := render(b[0].ev.Meta), `{"schema":"otlp","resource_id":0,"scope_id":0}`; got != want {
		t.Errorf("group meta = %s, want %s", got, want)
	}
	wantBody := `{"resource":{"attributes":{"service.name":"checkout"},"dropped_attributes_count":2,"schema_url":"https://opentelemetry.io/schemas/1.26.0"},` +
		`"scope":{"schema_url":"https://scope/schema","name":"app/logger","version":"1.2.3","attributes":{"scoped":true},"dropped_attributes_count":1}}`
	if got := render(b[0].ev.Body); got != wantBody {
		t.Errorf("group body =\n %s\nwant\n %s", got, wantBody)
	}
	rec := b[1].ev
	if rec.Time != event.FromTime(t0) {
		t.Errorf("time = %+v, want %+v", rec.Time, event.FromTime(t0))
	}
	ns := t0.UnixNano()
	wantMeta := `{"otlp":{"observed_timestamp":` + itoa(ns+1e9) + `,"timestamp":` + itoa(ns) +
		`,"severity_number":13,"severity_text":"WARN","attributes":{"disk.pct":97,"host":"a"},"dropped_attributes_count":3,` +
		`"trace_id":b"\x01\x02\x03\x04\x05\x06\a\b\t\n\v\f\r\x0e\x0f\x10","span_id":b"\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8","trace_flags":1,"event_name":"disk.alert"}}`
	if got := render(rec.Meta); got != wantMeta {
		t.Errorf("meta =\n %s\nwant\n %s", got, wantMeta)
	}
	if got := render(rec.Body); got != `{"log":"disk almost full"}` {
		t.Errorf("body = %s", got)
	}
}

func itoa(n int64) string { return render(n) }

func TestFromLogsOnlySetFieldsAndTimes(t *testing.T) {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	// Only an observed time: it stamps the event.
	a := lrs.AppendEmpty()
	a.SetObservedTimestamp(pcommon.NewTimestampFromTime(t0))
	a.Body().SetInt(7)
	// No time at all: Now stamps it. Severity out of range is dropped.
	b := lrs.AppendEmpty()
	b.SetSeverityNumber(plog.SeverityNumber(30))
	// A time beyond the 32-bit EventTime range falls back to observed/now.
	c := lrs.AppendEmpty()
	c.SetTimestamp(pcommon.Timestamp(math.MaxUint64))
	now := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	batches, _ := collect(t, ld, &Options{Now: func() time.Time { return now }}, 0)
	evs := batches[0]
	if len(evs) != 5 {
		t.Fatalf("%d events", len(evs))
	}
	if got := render(evs[0].ev.Body); got != `{"resource":{},"scope":{}}` {
		t.Errorf("empty header body = %s", got)
	}
	if evs[1].ev.Time != event.FromTime(t0) {
		t.Errorf("observed-only time = %+v", evs[1].ev.Time)
	}
	if got := render(evs[1].ev.Meta); got != `{"otlp":{"observed_timestamp":`+itoa(t0.UnixNano())+`,"trace_flags":0}}` {
		t.Errorf("meta = %s", got)
	}
	if got := render(evs[1].ev.Body); got != `{"log":7}` {
		t.Errorf("body = %s", got)
	}
	if evs[2].ev.Time != event.FromTime(now) {
		t.Errorf("untimed record = %+v, want now", evs[2].ev.Time)
	}
	if got := render(evs[2].ev.Meta); got != `{"otlp":{"trace_flags":0}}` {
		t.Errorf("meta with invalid severity = %s", got)
	}
	if got := render(evs[2].ev.Body); got != `{"log":<nil>}` {
		t.Errorf("empty body = %s", got)
	}
	if evs[3].ev.Time != event.FromTime(now) {
		t.Errorf("out-of-range time = %+v, want now", evs[3].ev.Time)
	}
}

func TestFromLogsBodies(t *testing.T) {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	kv := lrs.AppendEmpty().Body().SetEmptyMap()
	kv.PutStr("message", "hi")
	kv.PutInt("n", -3)
	v := lrs.AppendEmpty().Body()
	all := v.SetEmptySlice()
	all.AppendEmpty().SetStr("s")
	all.AppendEmpty().SetBool(true)
	all.AppendEmpty().SetInt(math.MinInt64)
	all.AppendEmpty().SetDouble(2.5)
	all.AppendEmpty().SetEmptyBytes().FromRaw([]byte{0, 0xff})
	all.AppendEmpty() // empty
	all.AppendEmpty().SetEmptyMap().PutEmptySlice("inner").AppendEmpty().SetStr("x")

	batches, _ := collect(t, ld, nil, 0)
	if got := render(batches[0][1].ev.Body); got != `{"message":"hi","n":-3}` {
		t.Errorf("kvlist body becomes the record: %s", got)
	}
	if got, want := render(batches[0][2].ev.Body), `{"log":["s",true,-9223372036854775808,2.5,b"\x00\xff",<nil>,{"inner":["x"]}]}`; got != want {
		t.Errorf("array body = %s, want %s", got, want)
	}

	batches, _ = collect(t, ld, &Options{BodyKey: "payload", MetadataKey: "otel"}, 0)
	if got := render(batches[0][1].ev.Body); got != `{"payload":{"message":"hi","n":-3}}` {
		t.Errorf("with body key, kvlist body = %s", got)
	}
	if _, ok := batches[0][1].ev.Meta.Get("otel"); !ok {
		t.Errorf("metadata key not used: %s", render(batches[0][1].ev.Meta))
	}
}

func TestFromLogsIDsAndSkippedScopes(t *testing.T) {
	ld := plog.NewLogs()
	for r := 0; r < 2; r++ {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutInt("r", int64(r))
		rl.ScopeLogs().AppendEmpty() // no records: no group
		for s := 0; s < 2; s++ {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName("s" + itoa(int64(s)))
			sl.LogRecords().AppendEmpty().Body().SetStr("x")
		}
	}
	batches, n := collect(t, ld, nil, 0)
	if n != 4 || len(batches) != 4 {
		t.Fatalf("%d records in %d batches", n, len(batches))
	}
	var ids []string
	for _, b := range batches {
		ids = append(ids, render(b[0].ev.Meta))
	}
	want := []string{
		`{"schema":"otlp","resource_id":0,"scope_id":1}`, `{"schema":"otlp","resource_id":0,"scope_id":2}`,
		`{"schema":"otlp","resource_id":1,"scope_id":1}`, `{"schema":"otlp","resource_id":1,"scope_id":2}`,
	}
	if strings.Join(ids, "\n") != strings.Join(want, "\n") {
		t.Errorf("headers:\n%s\nwant\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
}

func TestFromLogsSplitsBigGroups(t *testing.T) {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName("big")
	const count = 500
	for i := 0; i < count; i++ {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(int64(i+1) * 1e9))
		lr.Body().SetStr(strings.Repeat("x", 100) + itoa(int64(i)))
	}
	batches, n := collect(t, ld, nil, 4096)
	if n != count {
		t.Fatalf("%d records, want %d", n, count)
	}
	if len(batches) < 10 {
		t.Fatalf("only %d batches for ~75 KB at 4 KiB", len(batches))
	}
	next := 0
	for _, b := range batches {
		if b[0].kind != event.KindGroupStart || b[len(b)-1].kind != event.KindGroupEnd {
			t.Fatal("a batch is not a whole group")
		}
		if got := render(b[0].ev.Body); got != `{"resource":{},"scope":{"name":"big"}}` {
			t.Fatalf("repeated header = %s", got)
		}
		for _, d := range b[1 : len(b)-1] {
			body, _ := d.ev.Body.Get("log")
			if want := strings.Repeat("x", 100) + itoa(int64(next)); body != want {
				t.Fatalf("record %d: body %v", next, body)
			}
			next++
		}
	}
}

// ---- events → OTLP ----

func chunkOf(evs ...event.Event) []byte {
	var b []byte
	for i := range evs {
		b = evs[i].AppendMsgpack(b)
	}
	return b
}

func kv(pairs ...any) event.Map { return plugintest.KV(pairs...) }

func TestToLogsUngroupedDefaults(t *testing.T) {
	ev := event.Event{
		Time: event.FromTime(t0),
		Meta: kv("source", "tail", "otlp", kv("ignored", 1)),
		Body: kv("message", "hello", "level", "error", "n", int64(3)),
	}
	ld, n, err := ToLogs(chunkOf(ev, ev), nil)
	if err != nil || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if ld.ResourceLogs().Len() != 1 || ld.ResourceLogs().At(0).ScopeLogs().Len() != 1 {
		t.Fatal("ungrouped records must share one empty resource and scope")
	}
	rl := ld.ResourceLogs().At(0)
	if rl.Resource().Attributes().Len() != 0 || rl.ScopeLogs().At(0).Scope().Name() != "" {
		t.Error("default resource/scope not empty")
	}
	lr := rl.ScopeLogs().At(0).LogRecords().At(0)
	if got := pairs(lr.Body().Map()); got != `message=hello,level=error,n=3` {
		t.Errorf("whole record body = %s", got)
	}
	if got := lr.Attributes().AsRaw(); len(got) != 1 || got["source"] != "tail" {
		t.Errorf("attributes = %v (metadata keys but otlp)", got)
	}
	if lr.Timestamp().AsTime() != t0 {
		t.Errorf("time = %v", lr.Timestamp().AsTime())
	}
	if lr.ObservedTimestamp() != 0 || lr.SeverityNumber() != 0 || !lr.TraceID().IsEmpty() {
		t.Error("fields set without a source")
	}
}

// pairs renders a pdata map in its own order.
func pairs(m pcommon.Map) string {
	var out []string
	for k, v := range m.All() {
		out = append(out, k+"="+v.AsString())
	}
	return strings.Join(out, ",")
}

func TestToLogsBodyKeysAndAttributes(t *testing.T) {
	ev := event.Event{
		Time: event.FromTime(t0),
		Meta: kv("m1", "a", "otlp", kv("attributes", kv("k", "v", "m1", "from-otlp"))),
		Body: kv("log", "line", "message", "msg", "extra", true),
	}
	opt := &Options{BodyKeys: []string{"$message", "log"}, BodyKeyAttributes: true}
	ld, _, err := ToLogs(chunkOf(ev), opt)
	if err != nil {
		t.Fatal(err)
	}
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if lr.Body().Str() != "msg" {
		t.Errorf("body = %v, want the first configured key present", lr.Body().AsRaw())
	}
	// metadata, then the record's other keys, then otlp.attributes (which
	// overrides a metadata key of the same name).
	if got, want := pairs(lr.Attributes()), "m1=from-otlp,log=line,extra=true,k=v"; got != want {
		t.Errorf("attributes = %s, want %s", got, want)
	}

	// Without BodyKeyAttributes the other record keys are not attributes,
	// and AttributesMetadataKey is read when otlp has none.
	ev.Meta = kv("Attributes", kv("x", int64(1)))
	ld, _, _ = ToLogs(chunkOf(ev), &Options{BodyKeys: []string{"log"}, AttributesMetadataKey: "$Attributes"})
	lr = ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if lr.Body().Str() != "line" {
		t.Errorf("body = %v", lr.Body().AsRaw())
	}
	if got := pairs(lr.Attributes()); got != `Attributes={"x":1},x=1` {
		t.Errorf("attributes = %s", got)
	}
}

func TestToLogsTimesSeverityTrace(t *testing.T) {
	hexTrace := hex.EncodeToString(traceID[:])
	hexSpan := hex.EncodeToString(spanID[:])
	cases := []struct {
		name string
		opt  *Options
		meta event.Map
		body event.Map
		want func(t *testing.T, lr plog.LogRecord)
	}{
		{"otlp metadata wins", &Options{SeverityTextKey: "level", TraceIDKey: "tid"},
			kv("otlp", kv("timestamp", uint64(5e9), "observed_timestamp", int64(6e9), "severity_number", int64(17),
				"severity_text", "ERROR", "trace_id", traceID[:], "span_id", spanID[:], "trace_flags", int64(1),
				"event_name", "e", "dropped_attributes_count", int64(4))),
			kv("level", "debug", "tid", strings.Repeat("ab", 16)),
			func(t *testing.T, lr plog.LogRecord) {
				if lr.Timestamp() != 5e9 || lr.ObservedTimestamp() != 6e9 {
					t.Errorf("times %d %d", lr.Timestamp(), lr.ObservedTimestamp())
				}
				if lr.SeverityNumber() != 17 || lr.SeverityText() != "ERROR" {
					t.Errorf("severity %d %q", lr.SeverityNumber(), lr.SeverityText())
				}
				if lr.TraceID() != traceID || lr.SpanID() != spanID || lr.Flags() != 1 || lr.EventName() != "e" {
					t.Errorf("trace %v %v %d %q", lr.TraceID(), lr.SpanID(), lr.Flags(), lr.EventName())
				}
				if lr.DroppedAttributesCount() != 4 {
					t.Errorf("dropped = %d", lr.DroppedAttributesCount())
				}
			}},
		{"metadata keys, then record keys, hex ids", &Options{
			TimestampMetadataKey: "ts", ObservedTimestampMetadataKey: "$obs",
			SeverityNumberMetadataKey: "sevn", SeverityTextKey: "level",
			TraceIDKey: "traceId", SpanIDMetadataKey: "sid", TraceFlagsMetadataKey: "flags"},
			kv("ts", int64(7e9), "obs", int64(8e9), "sevn", int64(99), "sid", hexSpan, "flags", int64(1)),
			kv("level", "warn", "traceId", hexTrace),
			func(t *testing.T, lr plog.LogRecord) {
				if lr.Timestamp() != 7e9 || lr.ObservedTimestamp() != 8e9 {
					t.Errorf("times %d %d", lr.Timestamp(), lr.ObservedTimestamp())
				}
				// 99 is out of range: the number comes from the text.
				if lr.SeverityNumber() != plog.SeverityNumberWarn || lr.SeverityText() != "warn" {
					t.Errorf("severity %d %q", lr.SeverityNumber(), lr.SeverityText())
				}
				if lr.TraceID() != traceID || lr.SpanID() != spanID || lr.Flags() != 1 {
					t.Errorf("trace %v %v %d", lr.TraceID(), lr.SpanID(), lr.Flags())
				}
			}},
		{"invalid ids and values ignored; observed from ObservedNow", &Options{
			SeverityNumberKey: "sev", TraceIDKey: "tid", SpanIDKey: "sid",
			ObservedNow: func() time.Time { return t0 }},
			kv("otlp", kv("trace_id", []byte{1, 2, 3}, "timestamp", int64(-1))),
			kv("sev", int64(0), "tid", "xyz", "sid", strings.Repeat("0", 16)),
			func(t *testing.T, lr plog.LogRecord) {
				if !lr.TraceID().IsEmpty() || !lr.SpanID().IsEmpty() {
					t.Errorf("ids %v %v", lr.TraceID(), lr.SpanID())
				}
				if lr.SeverityNumber() != 0 {
					t.Errorf("severity %d", lr.SeverityNumber())
				}
				if lr.ObservedTimestamp().AsTime() != t0 {
					t.Errorf("observed %v", lr.ObservedTimestamp().AsTime())
				}
				if lr.Timestamp().AsTime() != t0 {
					t.Errorf("an invalid otlp.timestamp falls back to the event time: %v", lr.Timestamp().AsTime())
				}
			}},
		{"record severity number", &Options{SeverityNumberKey: "sev"}, nil, kv("sev", int64(21)),
			func(t *testing.T, lr plog.LogRecord) {
				if lr.SeverityNumber() != 21 || lr.SeverityText() != "" {
					t.Errorf("severity %d %q", lr.SeverityNumber(), lr.SeverityText())
				}
				if lr.Timestamp().AsTime() != t0 {
					t.Errorf("event time not used: %v", lr.Timestamp().AsTime())
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := event.Event{Time: event.FromTime(t0), Meta: c.meta, Body: c.body}
			ld, n, err := ToLogs(chunkOf(ev), c.opt)
			if err != nil || n != 1 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			c.want(t, ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
		})
	}
}

func TestSeverityFromText(t *testing.T) {
	for in, want := range map[string]plog.SeverityNumber{
		"TRACE": 1, "trace3": 3, "debug": 5, "DEBUG4": 8, "Info": 9, "information": 9, "notice": 9,
		"INFO2": 10, "warn": 13, "WARNING": 13, "warn4": 16, "error": 17, "err": 17, "ERROR2": 18,
		"fatal": 21, "critical": 21, "emerg": 21, "FATAL4": 24, "verbose": 0, "": 0, "info5": 0,
	} {
		if got := SeverityFromText(in); got != want {
			t.Errorf("SeverityFromText(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestToLogsValues(t *testing.T) {
	ts := event.Time{Sec: 1700000000, Nsec: 42}
	ev := event.Event{Time: ts, Body: kv(
		"s", "str", "b", []byte{1, 2}, "i", int64(-5), "u", uint64(math.MaxUint64), "f", 1.25,
		"f32", float32(0.5), "t", true, "nil", nil, "arr", []any{int64(1), "two"},
		"map", kv("k", kv("deep", false)), "et", event.Ext{Type: 0, Data: ts.AppendMsgpack(nil)[2:]},
		"ext", event.Ext{Type: 9, Data: []byte{7}},
	)}
	ld, _, err := ToLogs(chunkOf(ev), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Map()
	check := func(k string, typ pcommon.ValueType, want string) {
		t.Helper()
		v, ok := body.Get(k)
		if !ok || v.Type() != typ || v.AsString() != want {
			t.Errorf("%s = %v (%s), want %s %s", k, v.AsRaw(), v.Type(), typ, want)
		}
	}
	check("s", pcommon.ValueTypeStr, "str")
	check("b", pcommon.ValueTypeBytes, "AQI=")
	check("i", pcommon.ValueTypeInt, "-5")
	check("u", pcommon.ValueTypeInt, "9223372036854775807")
	check("f", pcommon.ValueTypeDouble, "1.25")
	check("f32", pcommon.ValueTypeDouble, "0.5")
	check("t", pcommon.ValueTypeBool, "true")
	check("nil", pcommon.ValueTypeEmpty, "")
	check("arr", pcommon.ValueTypeSlice, `[1,"two"]`)
	check("map", pcommon.ValueTypeMap, `{"k":{"deep":false}}`)
	check("et", pcommon.ValueTypeInt, "1700000000000000042")
	check("ext", pcommon.ValueTypeBytes, "Bw==")
}

func groupStart(resID, scopeID int64, res, scope event.Map) event.Event {
	return event.Event{Time: event.Time{Sec: event.GroupStartSec},
		Meta: kv("schema", "otlp", "resource_id", resID, "scope_id", scopeID),
		Body: kv("resource", res, "scope", scope)}
}

var groupEndEv = event.Event{Time: event.Time{Sec: event.GroupEndSec}}

func TestToLogsGroups(t *testing.T) {
	rec := func(s string) event.Event { return event.Event{Time: event.FromTime(t0), Body: kv("m", s)} }
	resA := kv("attributes", kv("service.name", "a"), "dropped_attributes_count", int64(1), "schema_url", "su")
	resB := kv("attributes", kv("service.name", "b"))
	sc1 := kv("name", "s1", "version", "v", "attributes", kv("x", int64(1)), "dropped_attributes_count", int64(2), "schema_url", "ss")
	sc2 := kv("name", "s2")
	data := chunkOf(
		rec("loose1"),
		groupStart(0, 0, resA, sc1), rec("a1"), groupEndEv,
		groupStart(0, 0, resA, sc1), rec("a1b"), groupEndEv, // same group again: merged
		groupStart(0, 1, resA, sc2), rec("a2"), groupEndEv,
		groupStart(0, 0, resB, sc1), rec("b1"), groupEndEv, // same ids, other resource (another request)
		rec("loose2"),
		event.Event{Time: event.Time{Sec: event.GroupStartSec}, Meta: kv("schema", "other")}, rec("loose3"), groupEndEv,
	)
	ld, n, err := ToLogs(data, nil)
	if err != nil || n != 7 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	var got []string
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			line := render(rl.Resource().Attributes().AsRaw()["service.name"]) + "/" + sl.Scope().Name() + ":"
			for k := 0; k < sl.LogRecords().Len(); k++ {
				line += " " + sl.LogRecords().At(k).Body().Map().AsRaw()["m"].(string)
			}
			got = append(got, line)
		}
	}
	want := []string{`<nil>/: loose1 loose2 loose3`, `"a"/s1: a1 a1b`, `"a"/s2: a2`, `"b"/s1: b1`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("layout:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rl := ld.ResourceLogs().At(1)
	if rl.SchemaUrl() != "su" || rl.Resource().DroppedAttributesCount() != 1 {
		t.Errorf("resource schema/dropped = %q %d", rl.SchemaUrl(), rl.Resource().DroppedAttributesCount())
	}
	sl := rl.ScopeLogs().At(0)
	if sl.SchemaUrl() != "ss" || sl.Scope().Version() != "v" || sl.Scope().DroppedAttributesCount() != 2 ||
		sl.Scope().Attributes().Len() != 1 {
		t.Errorf("scope = %q %q %d %v", sl.SchemaUrl(), sl.Scope().Version(), sl.Scope().DroppedAttributesCount(), sl.Scope().Attributes().AsRaw())
	}
}

func TestToLogsBadInputNamesOffset(t *testing.T) {
	good := chunkOf(event.Event{Time: event.FromTime(t0), Body: kv("a", "b")})
	bad := append(bytes.Clone(good), 0x92, 0x92, 0xd7, 0x00, 1, 2, 3, 4, 0, 0, 0, 0, 0x81, 0xa1) // truncated
	_, n, err := ToLogs(bad, nil)
	if err == nil {
		t.Fatal("truncated chunk accepted")
	}
	if n != 1 {
		t.Errorf("records before the error = %d", n)
	}
	if !strings.Contains(err.Error(), "offset") {
		t.Errorf("error does not name the offset: %v", err)
	}
}

// ---- round trips ----

func marshal(t testing.TB, ld plog.Logs) []byte {
	t.Helper()
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func toJSON(t testing.TB, ld plog.Logs) string {
	t.Helper()
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roundTrip maps OTLP → events (one chunk) → OTLP.
func roundTrip(t testing.TB, ld plog.Logs, in, out *Options) plog.Logs {
	t.Helper()
	var chunk []byte
	if err := FromLogs(ld, in, 0, func(data []byte, _ int) error {
		chunk = append(chunk, data...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	back, n, err := ToLogs(chunk, out)
	if err != nil {
		t.Fatal(err)
	}
	if n != ld.LogRecordCount() {
		t.Fatalf("%d records back, sent %d", n, ld.LogRecordCount())
	}
	return back
}

func TestRoundTripOTLP(t *testing.T) {
	// Every field set, kvlist bodies: identity with default options.
	ld := sampleLogs()
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().SetEmptyMap().PutStr("msg", "m")
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "second")
	for s := 0; s < 2; s++ {
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("scope" + itoa(int64(s)))
		for i := 0; i < 3; i++ {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.Timestamp(1700000000e9 + int64(i)))
			m := lr.Body().SetEmptyMap()
			m.PutInt("i", int64(i))
			m.PutEmptyBytes("raw").FromRaw([]byte{byte(i)})
			lr.Attributes().PutDouble("d", float64(i)/3)
			lr.SetSeverityNumber(plog.SeverityNumber(i + 1))
		}
	}
	back := roundTrip(t, ld, nil, nil)
	if !bytes.Equal(marshal(t, back), marshal(t, ld)) {
		t.Errorf("round trip changed the logs:\n got %s\nwant %s", toJSON(t, back), toJSON(t, ld))
	}

	// Any body kind round trips when both sides use the same body key.
	ld2 := sampleLogs()
	lrs := ld2.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	lrs.AppendEmpty().Body().SetDouble(1.5)
	lrs.At(1).SetTimestamp(1)
	lrs.AppendEmpty().Body().SetEmptySlice().AppendEmpty().SetBool(false)
	lrs.At(2).SetTimestamp(2)
	lrs.AppendEmpty().Body().SetEmptyMap().PutStr("log", "kvlist with a log key")
	lrs.At(3).SetTimestamp(3)
	back = roundTrip(t, ld2, &Options{BodyKey: "body"}, &Options{BodyKeys: []string{"body"}})
	if !bytes.Equal(marshal(t, back), marshal(t, ld2)) {
		t.Errorf("round trip with body key changed the logs:\n got %s\nwant %s", toJSON(t, back), toJSON(t, ld2))
	}
}

func TestRoundTripEvents(t *testing.T) {
	// An event as the OTLP input writes it comes back byte for byte.
	ld := sampleLogs()
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().SetEmptyMap().PutStr("msg", "m")
	var first []byte
	_ = FromLogs(ld, nil, 0, func(data []byte, _ int) error { first = bytes.Clone(data); return nil })
	back, _, err := ToLogs(first, nil)
	if err != nil {
		t.Fatal(err)
	}
	var second []byte
	_ = FromLogs(back, nil, 0, func(data []byte, _ int) error { second = bytes.Clone(data); return nil })
	if !bytes.Equal(first, second) {
		t.Errorf("events changed:\n%x\n%x", first, second)
	}
}
