// Package otlplog maps Fluent Bit log events to OTLP LogRecords and back, as
// ../shared/spec/otelwasm.md §14 describes: FromLogs is Fluent Bit's
// in_opentelemetry (OTLP → events, with a group per scope), ToLogs is its
// out_opentelemetry (events → OTLP, resources and scopes rebuilt from the
// group headers). The OTLP input, the OTLP output and the OTelWasm host share
// it, so an event keeps its body, attributes, severity, trace context,
// resource and scope through any of them.
//
// OTLP → event (FromLogs), for each ScopeLogs that holds records:
//
//   - a group start: metadata {schema: "otlp", resource_id, scope_id}, body
//     {resource: {attributes, dropped_attributes_count, schema_url}, scope:
//     {schema_url, name, version, attributes, dropped_attributes_count}}, each
//     field present only when set;
//   - per LogRecord an event timed by time_unix_nano, else
//     observed_time_unix_nano, else now; metadata {<MetadataKey>:
//     {observed_timestamp, timestamp, severity_number (1–24 only),
//     severity_text, attributes, dropped_attributes_count, trace_id (bin),
//     span_id (bin), trace_flags, event_name}} with every field but
//     trace_flags present only when set (Fluent Bit always writes
//     trace_flags); record = the body map itself when the body is a kvlist
//     and no BodyKey is set, else {<BodyKey or "log">: body};
//   - a group end.
//
// Event → OTLP (ToLogs):
//
//   - resource and scope from the OTLP group headers; a new ResourceLogs
//     when the header's resource_id or resource differs from the current
//     one, a new ScopeLogs when its scope_id or scope differs; records
//     outside an OTLP group go into one empty resource with one empty scope;
//   - body: the first of BodyKeys present in the record, else the whole
//     record as a kvlist;
//   - attributes: every top-level metadata key but <MetadataKey>, then the
//     record's other keys when BodyKeyAttributes is on and a body key
//     matched, then <MetadataKey>.attributes (else the AttributesMetadataKey
//     map);
//   - time_unix_nano: <MetadataKey>.timestamp, else the
//     TimestampMetadataKey metadata key, else the event time;
//     observed_time_unix_nano: <MetadataKey>.observed_timestamp, else the
//     ObservedTimestampMetadataKey key, else ObservedNow() when set;
//   - severity_number: <MetadataKey>.severity_number, else the metadata key,
//     else the record key (each accepted only in 1–24), else derived from the
//     severity text (info → 9, warn → 13, …); severity_text in the same order;
//   - trace_id / span_id: binary of the right length, or a hex string
//     (32 or 16 digits), from <MetadataKey>, else the metadata key, else the
//     record key; flags from <MetadataKey>.trace_flags, else the metadata key;
//     event_name from <MetadataKey>.event_name.
//
// Values: str → string, bin → bytes, int → int64 (uint64 above MaxInt64
// clamped), float → double, bool → bool, nil → empty, array → array, map →
// kvlist (non-string keys stringified by the event decoder), EventTime ext →
// int64 nanoseconds, other ext → bytes. The tag is never put into the record.
package otlplog

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/floe-io/floe/internal/event"
)

// DefaultMetadataKey is Fluent Bit's logs_metadata_key.
const DefaultMetadataKey = "otlp"

// DefaultBodyKey holds a body that is not a kvlist when no BodyKey is set.
const DefaultBodyKey = "log"

// Options configure the mapping. The zero value is Fluent Bit's default.
// Key names may start with "$" as record accessors do; only top-level keys
// are looked up.
type Options struct {
	// MetadataKey is the metadata map holding the OTLP fields ("otlp").
	MetadataKey string

	// BodyKey (OTLP → event) puts every body under this record key, a
	// kvlist too (Fluent Bit's logs_body_key on in_opentelemetry).
	BodyKey string
	// Now stamps records with neither time (OTLP → event); time.Now if nil.
	Now func() time.Time

	// BodyKeys (event → OTLP) are record keys tried in order for the body
	// (out_opentelemetry's logs_body_key, repeatable).
	BodyKeys []string
	// BodyKeyAttributes adds the record's other keys to the attributes
	// when a body key matched.
	BodyKeyAttributes bool
	// Record keys read when the metadata has no value (logs_*_message_key).
	SeverityTextKey, SeverityNumberKey, TraceIDKey, SpanIDKey string
	// Metadata keys read after <MetadataKey> (logs_*_metadata_key).
	TimestampMetadataKey, ObservedTimestampMetadataKey           string
	SeverityTextMetadataKey, SeverityNumberMetadataKey           string
	TraceIDMetadataKey, SpanIDMetadataKey, TraceFlagsMetadataKey string
	AttributesMetadataKey                                        string
	// ObservedNow supplies observed_time_unix_nano when no metadata does;
	// nil leaves it 0 (unknown), as Fluent Bit does.
	ObservedNow func() time.Time
}

func (o *Options) metaKey() string {
	if o == nil || o.MetadataKey == "" {
		return DefaultMetadataKey
	}
	return o.MetadataKey
}

// ---- OTLP → events ----

// FromLogs maps ld to events and hands them to emit one scope group at a
// time: group start, records, group end. A group whose encoding would exceed
// maxBytes (0 = no limit) is cut into several groups with the same header, so
// each emitted batch fits a chunk and keeps its resource and scope. records
// counts the log records only, not the markers. emit must not keep data after
// it returns. FromLogs stops at the first error emit returns.
func FromLogs(ld plog.Logs, opt *Options, maxBytes int, emit func(data []byte, records int) error) error {
	if opt == nil {
		opt = &Options{}
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	var buf, header []byte
	rls := ld.ResourceLogs()
	for ri := 0; ri < rls.Len(); ri++ {
		rl := rls.At(ri)
		sls := rl.ScopeLogs()
		for si := 0; si < sls.Len(); si++ {
			sl := sls.At(si)
			lrs := sl.LogRecords()
			if lrs.Len() == 0 {
				continue
			}
			header = appendGroupStart(header[:0], rl, sl, ri, si)
			buf = append(buf[:0], header...)
			n := 0
			for li := 0; li < lrs.Len(); li++ {
				mark := len(buf)
				buf = appendRecord(buf, lrs.At(li), opt, now)
				if maxBytes > 0 && n > 0 && len(buf)+len(groupEnd) > maxBytes {
					rec := bytes.Clone(buf[mark:])
					buf = append(buf[:mark], groupEnd...)
					if err := emit(buf, n); err != nil {
						return err
					}
					buf = append(append(buf[:0], header...), rec...)
					n = 0
				}
				n++
			}
			buf = append(buf, groupEnd...)
			if err := emit(buf, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// groupEnd is the encoded group end marker: [[-2 as EventTime, {}], {}].
var groupEnd = func() []byte {
	ev := event.Event{Time: event.Time{Sec: event.GroupEndSec}}
	return ev.AppendMsgpack(nil)
}()

func appendGroupStart(b []byte, rl plog.ResourceLogs, sl plog.ScopeLogs, ri, si int) []byte {
	b = append(b, 0x92, 0x92)
	b = event.Time{Sec: event.GroupStartSec}.AppendMsgpack(b)
	b = event.AppendMapHeader(b, 3)
	b = event.AppendString(b, "schema")
	b = event.AppendString(b, "otlp")
	b = event.AppendString(b, "resource_id")
	b = event.AppendInt(b, int64(ri))
	b = event.AppendString(b, "scope_id")
	b = event.AppendInt(b, int64(si))

	b = event.AppendMapHeader(b, 2)
	b = event.AppendString(b, "resource")
	res := rl.Resource()
	n := 0
	if res.Attributes().Len() > 0 {
		n++
	}
	if res.DroppedAttributesCount() > 0 {
		n++
	}
	if rl.SchemaUrl() != "" {
		n++
	}
	b = event.AppendMapHeader(b, n)
	if res.Attributes().Len() > 0 {
		b = event.AppendString(b, "attributes")
		b = appendAttrMap(b, res.Attributes())
	}
	if res.DroppedAttributesCount() > 0 {
		b = event.AppendString(b, "dropped_attributes_count")
		b = event.AppendUint(b, uint64(res.DroppedAttributesCount()))
	}
	if rl.SchemaUrl() != "" {
		b = event.AppendString(b, "schema_url")
		b = event.AppendString(b, rl.SchemaUrl())
	}

	b = event.AppendString(b, "scope")
	sc := sl.Scope()
	n = 0
	for _, set := range []bool{sl.SchemaUrl() != "", sc.Name() != "", sc.Version() != "",
		sc.Attributes().Len() > 0, sc.DroppedAttributesCount() > 0} {
		if set {
			n++
		}
	}
	b = event.AppendMapHeader(b, n)
	if sl.SchemaUrl() != "" {
		b = event.AppendString(b, "schema_url")
		b = event.AppendString(b, sl.SchemaUrl())
	}
	if sc.Name() != "" {
		b = event.AppendString(b, "name")
		b = event.AppendString(b, sc.Name())
	}
	if sc.Version() != "" {
		b = event.AppendString(b, "version")
		b = event.AppendString(b, sc.Version())
	}
	if sc.Attributes().Len() > 0 {
		b = event.AppendString(b, "attributes")
		b = appendAttrMap(b, sc.Attributes())
	}
	if sc.DroppedAttributesCount() > 0 {
		b = event.AppendString(b, "dropped_attributes_count")
		b = event.AppendUint(b, uint64(sc.DroppedAttributesCount()))
	}
	return b
}

// maxEventSec keeps event seconds clear of the group marker values.
const maxEventSec = math.MaxUint32 - 2

func eventTime(ns uint64) (event.Time, bool) {
	if ns == 0 || ns/1e9 > maxEventSec {
		return event.Time{}, false
	}
	return event.Time{Sec: int64(ns / 1e9), Nsec: uint32(ns % 1e9)}, true
}

func appendRecord(b []byte, lr plog.LogRecord, opt *Options, now func() time.Time) []byte {
	t, ok := eventTime(uint64(lr.Timestamp()))
	if !ok {
		t, ok = eventTime(uint64(lr.ObservedTimestamp()))
	}
	if !ok {
		t = event.FromTime(now())
	}
	b = append(b, 0x92, 0x92)
	b = t.AppendMsgpack(b)

	// metadata: {<key>: {...}}
	b = event.AppendMapHeader(b, 1)
	b = event.AppendString(b, opt.metaKey())
	sev := lr.SeverityNumber()
	sevOK := sev >= 1 && sev <= 24
	tid, sid := lr.TraceID(), lr.SpanID()
	n := 1 // trace_flags
	for _, set := range []bool{lr.ObservedTimestamp() != 0, lr.Timestamp() != 0, sevOK,
		lr.SeverityText() != "", lr.Attributes().Len() > 0, lr.DroppedAttributesCount() > 0,
		!tid.IsEmpty(), !sid.IsEmpty(), lr.EventName() != ""} {
		if set {
			n++
		}
	}
	b = event.AppendMapHeader(b, n)
	if lr.ObservedTimestamp() != 0 {
		b = event.AppendString(b, "observed_timestamp")
		b = event.AppendUint(b, uint64(lr.ObservedTimestamp()))
	}
	if lr.Timestamp() != 0 {
		b = event.AppendString(b, "timestamp")
		b = event.AppendUint(b, uint64(lr.Timestamp()))
	}
	if sevOK {
		b = event.AppendString(b, "severity_number")
		b = event.AppendUint(b, uint64(sev))
	}
	if lr.SeverityText() != "" {
		b = event.AppendString(b, "severity_text")
		b = event.AppendString(b, lr.SeverityText())
	}
	if lr.Attributes().Len() > 0 {
		b = event.AppendString(b, "attributes")
		b = appendAttrMap(b, lr.Attributes())
	}
	if lr.DroppedAttributesCount() > 0 {
		b = event.AppendString(b, "dropped_attributes_count")
		b = event.AppendUint(b, uint64(lr.DroppedAttributesCount()))
	}
	if !tid.IsEmpty() {
		b = event.AppendString(b, "trace_id")
		b = event.AppendBytes(b, tid[:])
	}
	if !sid.IsEmpty() {
		b = event.AppendString(b, "span_id")
		b = event.AppendBytes(b, sid[:])
	}
	b = event.AppendString(b, "trace_flags")
	b = event.AppendUint(b, uint64(lr.Flags()&0xff))
	if lr.EventName() != "" {
		b = event.AppendString(b, "event_name")
		b = event.AppendString(b, lr.EventName())
	}

	// record
	body := lr.Body()
	if opt.BodyKey == "" && body.Type() == pcommon.ValueTypeMap {
		return appendAttrMap(b, body.Map())
	}
	key := opt.BodyKey
	if key == "" {
		key = DefaultBodyKey
	}
	b = event.AppendMapHeader(b, 1)
	b = event.AppendString(b, key)
	return AppendValue(b, body)
}

func appendAttrMap(b []byte, m pcommon.Map) []byte {
	b = event.AppendMapHeader(b, m.Len())
	for k, v := range m.All() {
		b = event.AppendString(b, k)
		b = AppendValue(b, v)
	}
	return b
}

// AppendValue appends an AnyValue as MessagePack: string → str, bool, int →
// int, double → float64, bytes → bin, slice → array, map → map, empty → nil.
func AppendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return event.AppendString(b, v.Str())
	case pcommon.ValueTypeBool:
		return event.AppendBool(b, v.Bool())
	case pcommon.ValueTypeInt:
		return event.AppendInt(b, v.Int())
	case pcommon.ValueTypeDouble:
		return event.AppendFloat64(b, v.Double())
	case pcommon.ValueTypeBytes:
		return event.AppendBytes(b, v.Bytes().AsRaw())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		b = event.AppendArrayHeader(b, s.Len())
		for i := 0; i < s.Len(); i++ {
			b = AppendValue(b, s.At(i))
		}
		return b
	case pcommon.ValueTypeMap:
		return appendAttrMap(b, v.Map())
	}
	return event.AppendNil(b)
}

// ---- events → OTLP ----

// ToLogs maps a chunk of events (Fluent Bit v2 or v1 layout, with or without
// OTLP group markers) to OTLP logs. It returns the number of log records and
// an error naming the byte offset of the first event it cannot decode.
func ToLogs(data []byte, opt *Options) (plog.Logs, int, error) {
	if opt == nil {
		opt = &Options{}
	}
	m := newMapper(opt)
	it := event.NewIter(data)
	for it.Next() {
		raw := it.Event()
		switch raw.Kind() {
		case event.KindGroupStart:
			if err := m.groupStart(raw); err != nil {
				return m.ld, m.n, err
			}
			continue
		case event.KindGroupEnd:
			m.grouped = false
			continue
		}
		ev, err := raw.Decode()
		if err != nil {
			return m.ld, m.n, err
		}
		m.record(&ev)
	}
	return m.ld, m.n, it.Err()
}

// FromEvent maps one event to a LogRecord (no resource or scope).
func FromEvent(ev *event.Event, lr plog.LogRecord, opt *Options) {
	if opt == nil {
		opt = &Options{}
	}
	newMapper(opt).fill(ev, lr)
}

type mapper struct {
	opt     *Options
	ld      plog.Logs
	n       int
	grouped bool // inside an OTLP group

	// current OTLP group
	rl             plog.ResourceLogs
	sl             plog.ScopeLogs
	resID, scopeID int64
	resRaw         []byte
	scopeRaw       []byte
	haveRes        bool
	haveScope      bool

	// records outside OTLP groups
	plain    plog.ScopeLogs
	plainSet bool
}

func newMapper(opt *Options) *mapper {
	return &mapper{opt: opt, ld: plog.NewLogs()}
}

// groupStart reads an OTLP group header; other groups are ignored, so their
// records go to the default resource.
func (m *mapper) groupStart(raw *event.RawEvent) error {
	m.grouped = false
	ev, err := raw.Decode()
	if err != nil {
		return err
	}
	if s, _ := ev.Meta.Get("schema"); s != "otlp" {
		return nil
	}
	resID, ok1 := asInt(ev.Meta, "resource_id")
	scopeID, ok2 := asInt(ev.Meta, "scope_id")
	if !ok1 || !ok2 {
		return nil
	}
	resource, _ := ev.Body.Get("resource")
	scope, _ := ev.Body.Get("scope")
	resMap, _ := resource.(event.Map)
	scopeMap, _ := scope.(event.Map)
	// Groups of different requests may carry the same ids in one chunk:
	// compare the headers themselves too.
	resRaw := resMap.AppendMsgpack(nil)
	scopeRaw := scopeMap.AppendMsgpack(nil)
	if !m.haveRes || resID != m.resID || !bytes.Equal(resRaw, m.resRaw) {
		m.rl = m.ld.ResourceLogs().AppendEmpty()
		setResource(m.rl, resMap)
		m.resID, m.resRaw, m.haveRes, m.haveScope = resID, resRaw, true, false
	}
	if !m.haveScope || scopeID != m.scopeID || !bytes.Equal(scopeRaw, m.scopeRaw) {
		m.sl = m.rl.ScopeLogs().AppendEmpty()
		setScope(m.sl, scopeMap)
		m.scopeID, m.scopeRaw, m.haveScope = scopeID, scopeRaw, true
	}
	m.grouped = true
	return nil
}

func setResource(rl plog.ResourceLogs, res event.Map) {
	r := rl.Resource()
	if a, ok := res.Get("attributes"); ok {
		if am, ok := a.(event.Map); ok {
			putMap(r.Attributes(), am)
		}
	}
	if n, ok := asUint(res, "dropped_attributes_count"); ok {
		r.SetDroppedAttributesCount(uint32(min(n, math.MaxUint32)))
	}
	if s, ok := res.Get("schema_url"); ok {
		if s, ok := s.(string); ok {
			rl.SetSchemaUrl(s)
		}
	}
}

func setScope(sl plog.ScopeLogs, sc event.Map) {
	s := sl.Scope()
	if v, ok := sc.Get("name"); ok {
		if v, ok := v.(string); ok {
			s.SetName(v)
		}
	}
	if v, ok := sc.Get("version"); ok {
		if v, ok := v.(string); ok {
			s.SetVersion(v)
		}
	}
	if a, ok := sc.Get("attributes"); ok {
		if am, ok := a.(event.Map); ok {
			putMap(s.Attributes(), am)
		}
	}
	if n, ok := asUint(sc, "dropped_attributes_count"); ok {
		s.SetDroppedAttributesCount(uint32(min(n, math.MaxUint32)))
	}
	if v, ok := sc.Get("schema_url"); ok {
		if v, ok := v.(string); ok {
			sl.SetSchemaUrl(v)
		}
	}
}

func (m *mapper) record(ev *event.Event) {
	var sl plog.ScopeLogs
	if m.grouped {
		sl = m.sl
	} else {
		if !m.plainSet {
			m.plain = m.ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
			m.plainSet = true
		}
		sl = m.plain
	}
	m.fill(ev, sl.LogRecords().AppendEmpty())
	m.n++
}

func trimKey(k string) string { return strings.TrimPrefix(k, "$") }

// lookup finds key (a configured key name) in m; "" never matches.
func lookup(m event.Map, key string) (any, bool) {
	if key == "" {
		return nil, false
	}
	return m.Get(trimKey(key))
}

func (m *mapper) fill(ev *event.Event, lr plog.LogRecord) {
	opt := m.opt
	mk := opt.metaKey()
	var otlp event.Map
	if v, ok := ev.Meta.Get(mk); ok {
		otlp, _ = v.(event.Map)
	}

	// Body.
	bodyKey := ""
	for _, k := range opt.BodyKeys {
		if v, ok := lookup(ev.Body, k); ok {
			putValue(lr.Body(), v)
			bodyKey = trimKey(k)
			break
		}
	}
	if bodyKey == "" {
		putMap(lr.Body().SetEmptyMap(), ev.Body)
	}

	// Attributes: metadata keys, then the record's other keys, then otlp.attributes.
	attrs := lr.Attributes()
	for _, kv := range ev.Meta {
		if kv.Key == mk {
			continue
		}
		putValue(attrs.PutEmpty(kv.Key), kv.Value)
	}
	if opt.BodyKeyAttributes && bodyKey != "" {
		for _, kv := range ev.Body {
			if kv.Key == bodyKey {
				continue
			}
			putValue(attrs.PutEmpty(kv.Key), kv.Value)
		}
	}
	if v, ok := otlp.Get("attributes"); ok {
		if am, ok := v.(event.Map); ok {
			putMap(attrs, am)
		}
	} else if v, ok := lookup(ev.Meta, opt.AttributesMetadataKey); ok {
		if am, ok := v.(event.Map); ok {
			putMap(attrs, am)
		}
	}
	if n, ok := asUint(otlp, "dropped_attributes_count"); ok {
		lr.SetDroppedAttributesCount(uint32(min(n, math.MaxUint32)))
	}

	// Times.
	if ts, ok := firstUint(otlp, "timestamp", ev.Meta, opt.TimestampMetadataKey); ok {
		lr.SetTimestamp(pcommon.Timestamp(ts))
	} else if ev.Time.Sec >= 0 {
		lr.SetTimestamp(pcommon.Timestamp(uint64(ev.Time.Sec)*1e9 + uint64(ev.Time.Nsec)))
	}
	if ts, ok := firstUint(otlp, "observed_timestamp", ev.Meta, opt.ObservedTimestampMetadataKey); ok {
		lr.SetObservedTimestamp(pcommon.Timestamp(ts))
	} else if opt.ObservedNow != nil {
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(opt.ObservedNow()))
	}

	// Severity.
	text, textOK := firstString(
		[]event.Map{otlp, ev.Meta, ev.Body},
		[]string{"severity_text", opt.SeverityTextMetadataKey, opt.SeverityTextKey})
	if textOK {
		lr.SetSeverityText(text)
	}
	num := int64(0)
	for i, src := range []event.Map{otlp, ev.Meta, ev.Body} {
		key := []string{"severity_number", opt.SeverityNumberMetadataKey, opt.SeverityNumberKey}[i]
		if n, ok := lookupInt(src, key); ok && n >= 1 && n <= 24 {
			num = n
			break
		}
	}
	if num == 0 && textOK {
		num = int64(SeverityFromText(text))
	}
	lr.SetSeverityNumber(plog.SeverityNumber(num))

	// Trace context.
	for i, src := range []event.Map{otlp, ev.Meta, ev.Body} {
		key := []string{"trace_id", opt.TraceIDMetadataKey, opt.TraceIDKey}[i]
		if v, ok := lookup(src, key); ok {
			if id, ok := idBytes(v, 16); ok {
				lr.SetTraceID(pcommon.TraceID(id))
				break
			}
		}
	}
	for i, src := range []event.Map{otlp, ev.Meta, ev.Body} {
		key := []string{"span_id", opt.SpanIDMetadataKey, opt.SpanIDKey}[i]
		if v, ok := lookup(src, key); ok {
			if id, ok := idBytes(v, 8); ok {
				lr.SetSpanID(pcommon.SpanID(id[:8]))
				break
			}
		}
	}
	if f, ok := firstUint(otlp, "trace_flags", ev.Meta, opt.TraceFlagsMetadataKey); ok {
		lr.SetFlags(plog.LogRecordFlags(uint32(min(f, math.MaxUint32))))
	}
	if v, ok := otlp.Get("event_name"); ok {
		if s, ok := v.(string); ok {
			lr.SetEventName(s)
		}
	}
}

// firstUint reads a non-negative integer from otlp[key], else meta[metaKey].
func firstUint(otlp event.Map, key string, meta event.Map, metaKey string) (uint64, bool) {
	if v, ok := otlp.Get(key); ok {
		return toUint(v)
	}
	if v, ok := lookup(meta, metaKey); ok {
		return toUint(v)
	}
	return 0, false
}

func firstString(srcs []event.Map, keys []string) (string, bool) {
	for i, src := range srcs {
		if v, ok := lookup(src, keys[i]); ok {
			if s, ok := v.(string); ok && s != "" {
				return s, true
			}
		}
	}
	return "", false
}

func lookupInt(m event.Map, key string) (int64, bool) {
	v, ok := lookup(m, key)
	if !ok {
		return 0, false
	}
	switch v := v.(type) {
	case int64:
		return v, true
	case uint64:
		return math.MaxInt64, true
	}
	return 0, false
}

func asInt(m event.Map, key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	return n, ok
}

func asUint(m event.Map, key string) (uint64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	return toUint(v)
}

func toUint(v any) (uint64, bool) {
	switch v := v.(type) {
	case int64:
		if v >= 0 {
			return uint64(v), true
		}
	case uint64:
		return v, true
	}
	return 0, false
}

// idBytes reads a trace or span id: binary of exactly n bytes, or a string of
// 2n hex digits. An all-zero id counts as absent.
func idBytes(v any, n int) ([16]byte, bool) {
	var id [16]byte
	switch v := v.(type) {
	case []byte:
		if len(v) != n {
			return id, false
		}
		copy(id[:], v)
	case string:
		if len(v) != 2*n {
			return id, false
		}
		if _, err := hex.Decode(id[:n], []byte(v)); err != nil {
			return id, false
		}
	default:
		return id, false
	}
	return id, id != [16]byte{}
}

func putMap(dst pcommon.Map, src event.Map) {
	dst.EnsureCapacity(dst.Len() + len(src))
	for _, kv := range src {
		putValue(dst.PutEmpty(kv.Key), kv.Value)
	}
}

// putValue sets dst from a decoded MessagePack value.
func putValue(dst pcommon.Value, v any) {
	switch v := v.(type) {
	case nil:
		// empty
	case string:
		dst.SetStr(v)
	case bool:
		dst.SetBool(v)
	case int64:
		dst.SetInt(v)
	case uint64:
		dst.SetInt(math.MaxInt64) // above MaxInt64: clamp
	case float64:
		dst.SetDouble(v)
	case float32:
		dst.SetDouble(float64(v))
	case []byte:
		dst.SetEmptyBytes().FromRaw(v)
	case []any:
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(v))
		for _, e := range v {
			putValue(s.AppendEmpty(), e)
		}
	case event.Map:
		putMap(dst.SetEmptyMap(), v)
	case event.Ext:
		if t, ok := extTime(v); ok {
			dst.SetInt(t)
			return
		}
		dst.SetEmptyBytes().FromRaw(v.Data)
	default:
		dst.SetStr(fmt.Sprint(v))
	}
}

// extTime reads a Fluent EventTime extension as nanoseconds.
func extTime(e event.Ext) (int64, bool) {
	if e.Type != 0 || len(e.Data) != 8 {
		return 0, false
	}
	sec := int64(uint32(e.Data[0])<<24 | uint32(e.Data[1])<<16 | uint32(e.Data[2])<<8 | uint32(e.Data[3]))
	nsec := int64(uint32(e.Data[4])<<24 | uint32(e.Data[5])<<16 | uint32(e.Data[6])<<8 | uint32(e.Data[7]))
	return sec*1e9 + nsec, true
}

// SeverityFromText maps a level name to its OTLP severity number: the OTLP
// short names (TRACE, DEBUG2, WARN4, …, case-insensitive) and the usual
// aliases (warning, err, critical, emerg, notice, …). Unknown text gives 0.
func SeverityFromText(s string) plog.SeverityNumber {
	s = strings.ToLower(strings.TrimSpace(s))
	step := 0
	if n := len(s); n > 1 && s[n-1] >= '2' && s[n-1] <= '4' {
		step = int(s[n-1] - '1')
		s = s[:n-1]
	}
	base := 0
	switch s {
	case "trace", "trc":
		base = 1
	case "debug", "dbg", "fine", "finer", "finest":
		base = 5
	case "info", "information", "informational", "notice", "inf":
		base = 9
	case "warn", "warning", "wrn":
		base = 13
	case "error", "err", "eror":
		base = 17
	case "fatal", "critical", "crit", "alert", "emerg", "emergency", "panic", "ftl":
		base = 21
	default:
		return 0
	}
	return plog.SeverityNumber(base + step)
}
