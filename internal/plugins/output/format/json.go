package format

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// AppendJSON appends the JSON rendering of the MessagePack value v with
// Fluent Bit's msgpack2json rules (flb_msgpack_to_json_str): scalars as
// [event.AppendJSON] renders them (floats, strings, bin, ext), compact
// output, and in every map a string key that appears again later in the same
// map is skipped, so the last value wins. Non-string keys are rendered as
// their JSON value, unquoted, as Fluent Bit does.
func AppendJSON(dst, v []byte, o event.JSONOptions) ([]byte, error) {
	dst, _, err := appendJSON(dst, v, 0, 0, o)
	return dst, err
}

func appendJSON(dst, b []byte, off, depth int, o event.JSONOptions) ([]byte, int, error) {
	if depth > maxDepth {
		return dst, 0, errAt(off, "nesting deeper than %d", maxDepth)
	}
	// Fast paths for the commonest values.
	if off < len(b) {
		switch c := b[off]; {
		case c >= 0xa0 && c <= 0xbf:
			end := off + 1 + int(c&0x1f)
			if end <= len(b) {
				return event.AppendJSONString(dst, bstr(b[off+1:end]), o), end, nil
			}
		case c <= 0x7f:
			return strconv.AppendUint(dst, uint64(c), 10), off + 1, nil
		}
	}
	it, p, err := readItem(b, off)
	if err != nil {
		return dst, 0, err
	}
	switch it.k {
	case kNil:
		dst = append(dst, "null"...)
	case kBool:
		dst = strconv.AppendBool(dst, it.b)
	case kUint:
		dst = strconv.AppendUint(dst, it.u, 10)
	case kInt:
		dst = strconv.AppendInt(dst, it.i, 10)
	case kFloat32, kFloat64:
		dst = event.AppendJSONFloat(dst, it.f, o)
	case kStr, kBin:
		dst = event.AppendJSONString(dst, bstr(it.data), o)
	case kExt:
		dst = event.AppendJSON(dst, event.Ext{Type: it.ext, Data: it.data}, o)
	case kArray:
		dst = append(dst, '[')
		for i := 0; i < it.n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, p, err = appendJSON(dst, b, p, depth+1, o); err != nil {
				return dst, 0, err
			}
		}
		dst = append(dst, ']')
	case kMap:
		return appendJSONMap(dst, b, it.n, p, depth, o)
	}
	return dst, p, nil
}

// pair is the location of one key/value pair inside a map, or one of the
// pairs a record rendering adds in front of the body's.
type pair struct {
	key   []byte // string key bytes, nil for a non-string key
	k, v  int    // offsets of key and value
	synth synth
	name  string // key of a synthesized pair
}

type synth uint8

const (
	synthNone synth = iota
	synthDate
	synthInternal
)

// appendJSONMap renders the n pairs starting at p. It writes the pairs in
// one pass while noting the string keys; only when a key turns out to be
// repeated does it rewrite the map with duplicates removed.
func appendJSONMap(dst, b []byte, n, p, depth int, o event.JSONOptions) ([]byte, int, error) {
	start, first := len(dst), p
	var kbuf [32]string
	keys := kbuf[:0]
	dst = append(dst, '{')
	var err error
	for i := 0; i < n; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var k string
		var isStr bool
		if dst, p, k, isStr, err = appendKey(dst, b, p, depth+1, o); err != nil {
			return dst, 0, err
		}
		if isStr {
			keys = append(keys, k)
		}
		dst = append(dst, ':')
		if dst, p, err = appendJSON(dst, b, p, depth+1, o); err != nil {
			return dst, 0, err
		}
	}
	dst = append(dst, '}')
	if !hasDup(keys) {
		return dst, p, nil
	}
	return appendJSONMapDedup(dst[:start], b, n, first, depth, o)
}

// appendKey renders the map key at p; for a string key it also returns the key.
func appendKey(dst, b []byte, p, depth int, o event.JSONOptions) ([]byte, int, string, bool, error) {
	if p < len(b) && b[p] >= 0xa0 && b[p] <= 0xbf {
		end := p + 1 + int(b[p]&0x1f)
		if end > len(b) {
			return dst, 0, "", false, errAt(p, "truncated value")
		}
		k := bstr(b[p+1 : end])
		return event.AppendJSONString(dst, k, o), end, k, true, nil
	}
	var k string
	isStr := false
	if kit, _, kerr := readItem(b, p); kerr == nil && kit.k == kStr {
		k, isStr = bstr(kit.data), true
	}
	dst, p, err := appendJSON(dst, b, p, depth, o)
	return dst, p, k, isStr, err
}

// hasDup reports whether a key occurs twice.
func hasDup(keys []string) bool {
	if len(keys) > 32 {
		seen := make(map[string]struct{}, len(keys))
		for _, k := range keys {
			if _, ok := seen[k]; ok {
				return true
			}
			seen[k] = struct{}{}
		}
		return false
	}
	for i := 1; i < len(keys); i++ {
		for j := 0; j < i; j++ {
			if keys[i] == keys[j] {
				return true
			}
		}
	}
	return false
}

// appendJSONMapDedup renders a map whose string keys repeat.
func appendJSONMapDedup(dst, b []byte, n, p, depth int, o event.JSONOptions) ([]byte, int, error) {
	var stack [16]pair
	pairs := stack[:0]
	var err error
	for i := 0; i < n; i++ {
		var pr pair
		pr.k = p
		if kit, _, kerr := readItem(b, p); kerr == nil && kit.k == kStr {
			pr.key = kit.data
		}
		if pr.v, err = event.Skip(b, p); err != nil {
			return dst, 0, err
		}
		if p, err = event.Skip(b, pr.v); err != nil {
			return dst, 0, err
		}
		pairs = append(pairs, pr)
	}
	dst, err = writePairs(dst, b, pairs, depth, o, nil, nil)
	return dst, p, err
}

// writePairs writes {k:v,...} skipping every string key that appears again
// later (key_exists_in_map in flb_pack.c). j and r render synthesized pairs.
func writePairs(dst, b []byte, pairs []pair, depth int, o event.JSONOptions, j *JSON, r *Record) ([]byte, error) {
	var last map[string]int
	if len(pairs) > 32 {
		last = make(map[string]int, len(pairs))
		for i := range pairs {
			if k, ok := pairKey(&pairs[i]); ok {
				last[k] = i
			}
		}
	}
	dst = append(dst, '{')
	first := true
	var err error
	for i := range pairs {
		pr := &pairs[i]
		if k, ok := pairKey(pr); ok && laterDup(pairs, i, k, last) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		switch pr.synth {
		case synthDate:
			dst = event.AppendJSONString(dst, pr.name, o)
			dst = append(dst, ':')
			dst = j.appendDate(dst, r.Time)
			continue
		case synthInternal:
			dst = append(dst, `"__internal__":`...)
			if dst, err = j.appendInternal(dst, r); err != nil {
				return dst, err
			}
			continue
		}
		if dst, _, err = appendJSON(dst, b, pr.k, depth+1, o); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		if dst, _, err = appendJSON(dst, b, pr.v, depth+1, o); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func pairKey(pr *pair) (string, bool) {
	if pr.synth != synthNone {
		return pr.name, true
	}
	if pr.key != nil {
		return bstr(pr.key), true
	}
	return "", false
}

func laterDup(pairs []pair, i int, k string, last map[string]int) bool {
	if last != nil {
		return last[k] != i
	}
	for j := i + 1; j < len(pairs); j++ {
		if k2, ok := pairKey(&pairs[j]); ok && k2 == k {
			return true
		}
	}
	return false
}

// bstr views b as a string without copying; the string must not outlive b
// and b must not change while it is in use (renderers only read it).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// JSONFormat is the shape of a JSON rendering of a chunk.
type JSONFormat int

const (
	// JSONArray ("json") renders the chunk as one array of records.
	JSONArray JSONFormat = iota + 1
	// JSONStream ("json_stream") concatenates the records with no separator.
	JSONStream
	// JSONLines ("json_lines") writes one record per line.
	JSONLines
)

// DateFormat is how the date key's value is rendered.
type DateFormat int

const (
	DateDouble           DateFormat = iota // seconds as a float: 1700000000.123457
	DateISO8601                            // "2023-11-14T22:13:20.123456Z"
	DateEpoch                              // integer seconds
	DateJavaSQLTimestamp                   // "2023-11-14 22:13:20.123456"
	DateEpochMS                            // integer milliseconds
)

// ParseJSONFormat maps a "format" value to a JSONFormat (flb_pack_to_json_format_type);
// ok is true with f == 0 for "msgpack", which is not JSON.
func ParseJSONFormat(s string) (f JSONFormat, ok bool) {
	switch strings.ToLower(s) {
	case "msgpack":
		return 0, true
	case "json":
		return JSONArray, true
	case "json_stream":
		return JSONStream, true
	case "json_lines":
		return JSONLines, true
	}
	return 0, false
}

// ParseDateFormat maps a json_date_format value (flb_pack_to_json_date_type).
func ParseDateFormat(s string) (DateFormat, bool) {
	switch strings.ToLower(s) {
	case "double":
		return DateDouble, true
	case "java_sql_timestamp":
		return DateJavaSQLTimestamp, true
	case "iso8601":
		return DateISO8601, true
	case "epoch":
		return DateEpoch, true
	case "epoch_ms", "epoch_millis", "epoch_milliseconds":
		return DateEpochMS, true
	}
	return 0, false
}

// FormatValues are the "format" values out_stdout and out_null accept.
var FormatValues = []string{"msgpack", "json", "json_stream", "json_lines"}

// DateFormatValues are the accepted json_date_format values.
var DateFormatValues = []string{"double", "epoch", "epoch_ms", "epoch_millis", "epoch_milliseconds", "iso8601", "java_sql_timestamp"}

// JSONKeys are the format/json_date_key/json_date_format keys shared by
// out_stdout and out_null, with Fluent Bit's defaults.
func JSONKeys() []plugin.Key {
	return []plugin.Key{
		{Name: "format", Default: "msgpack", Enum: FormatValues,
			Desc: "data format to print: msgpack, json, json_lines or json_stream"},
		{Name: "json_date_key", Default: "date",
			Desc: "name of the time key in JSON output; false disables it"},
		{Name: "json_date_format", Default: "double", Enum: DateFormatValues,
			Desc: "format of the date: double, epoch, epoch_ms, iso8601 or java_sql_timestamp"},
	}
}

// JSON renders chunks as flb_pack_msgpack_to_json_format does. Every record
// becomes one JSON object holding, in order:
//
//   - the date key (unless disabled) with the record time in DateFormat;
//   - "__internal__": {"group_attributes": ..., "log_metadata": ...} when the
//     record's metadata or its group's attributes are a non-empty map
//     (group_attributes only inside a group);
//   - the body's pairs.
//
// Duplicate keys across all three are resolved as in any map: the last wins.
type JSON struct {
	Format     JSONFormat
	DateKey    string
	NoDate     bool // json_date_key disabled
	DateFormat DateFormat
	Options    event.JSONOptions
}

// NewJSON builds a JSON renderer from the plugin's format, json_date_key and
// json_date_format values. f must not be 0 (msgpack).
func NewJSON(f JSONFormat, dateKey, dateFormat string, o event.JSONOptions) (*JSON, error) {
	j := &JSON{Format: f, DateKey: dateKey, Options: o}
	// flb_utils_bool(value) == FLB_FALSE disables the key: false, off, no.
	if v, err := config.ParseBool(dateKey); err == nil && !v {
		j.NoDate = true
	}
	if dateFormat != "" {
		df, ok := ParseDateFormat(dateFormat)
		if !ok {
			return nil, fmt.Errorf("invalid json_date_format %q", dateFormat)
		}
		j.DateFormat = df
	}
	return j, nil
}

// AppendChunk renders every record of a chunk. Like Fluent Bit it produces
// "[]" for a json array without records and nothing for the other formats.
// On a decode error the records rendered so far are returned with the error.
func (j *JSON) AppendChunk(dst, data []byte) ([]byte, error) {
	if j.Format == JSONArray {
		dst = append(dst, '[')
	}
	first := true
	err := EachRecord(data, func(r *Record) error {
		mark := len(dst)
		if j.Format == JSONArray && !first {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = j.AppendRecord(dst, r); err != nil {
			dst = dst[:mark]
			return err
		}
		if j.Format == JSONLines {
			dst = append(dst, '\n')
		}
		first = false
		return nil
	})
	if j.Format == JSONArray {
		dst = append(dst, ']')
	}
	return dst, err
}

// AppendRecord renders one record as a JSON object (no separator).
func (j *JSON) AppendRecord(dst []byte, r *Record) ([]byte, error) {
	start := len(dst)
	var kbuf [32]string
	keys := kbuf[:0]
	dst = append(dst, '{')
	sep := false
	if !j.NoDate {
		keys = append(keys, j.DateKey)
		dst = event.AppendJSONString(dst, j.DateKey, j.Options)
		dst = append(dst, ':')
		dst = j.appendDate(dst, r.Time)
		sep = true
	}
	internal := MapLen(r.GroupAttrs) > 0 || MapLen(r.Meta) > 0
	var err error
	if internal {
		if sep {
			dst = append(dst, ',')
		}
		keys = append(keys, "__internal__")
		dst = append(dst, `"__internal__":`...)
		if dst, err = j.appendInternal(dst, r); err != nil {
			return dst[:start], err
		}
		sep = true
	}
	it, p, err := readItem(r.Body, 0)
	if err != nil {
		return dst[:start], err
	}
	if it.k != kMap {
		return dst[:start], errAt(0, "record body is not a map")
	}
	body := p
	for i := 0; i < it.n; i++ {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		var k string
		var isStr bool
		if dst, p, k, isStr, err = appendKey(dst, r.Body, p, 1, j.Options); err != nil {
			return dst[:start], err
		}
		if isStr {
			keys = append(keys, k)
		}
		dst = append(dst, ':')
		if dst, p, err = appendJSON(dst, r.Body, p, 1, j.Options); err != nil {
			return dst[:start], err
		}
	}
	dst = append(dst, '}')
	if !hasDup(keys) {
		return dst, nil
	}

	// A key repeats: collect the pairs and write them without duplicates.
	dst = dst[:start]
	var stack [16]pair
	pairs := stack[:0]
	if !j.NoDate {
		pairs = append(pairs, pair{name: j.DateKey, synth: synthDate})
	}
	if internal {
		pairs = append(pairs, pair{name: "__internal__", synth: synthInternal})
	}
	p = body
	for i := 0; i < it.n; i++ {
		var pr pair
		pr.k = p
		if kit, _, kerr := readItem(r.Body, p); kerr == nil && kit.k == kStr {
			pr.key = kit.data
		}
		if pr.v, err = event.Skip(r.Body, p); err != nil {
			return dst, err
		}
		if p, err = event.Skip(r.Body, pr.v); err != nil {
			return dst, err
		}
		pairs = append(pairs, pr)
	}
	return writePairs(dst, r.Body, pairs, 0, j.Options, j, r)
}

func (j *JSON) appendInternal(dst []byte, r *Record) ([]byte, error) {
	var err error
	dst = append(dst, '{')
	if r.GroupAttrs != nil {
		dst = append(dst, `"group_attributes":`...)
		if dst, err = AppendJSON(dst, r.GroupAttrs, j.Options); err != nil {
			return dst, err
		}
		dst = append(dst, ',')
	}
	dst = append(dst, `"log_metadata":`...)
	if dst, err = AppendJSON(dst, r.Meta, j.Options); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

func (j *JSON) appendDate(dst []byte, t event.Time) []byte {
	switch j.DateFormat {
	case DateEpoch:
		return strconv.AppendUint(dst, uint64(t.Sec), 10)
	case DateEpochMS:
		return strconv.AppendUint(dst, uint64(t.Sec*1000+int64(t.Nsec/1e6)), 10)
	case DateISO8601:
		return appendQuotedTime(dst, t, "2006-01-02T15:04:05", "Z")
	case DateJavaSQLTimestamp:
		return appendQuotedTime(dst, t, "2006-01-02 15:04:05", "")
	}
	return event.AppendJSONFloat(dst, t.Float(), j.Options)
}

// appendQuotedTime writes "<UTC layout>.<microseconds><suffix>".
func appendQuotedTime(dst []byte, t event.Time, layout, suffix string) []byte {
	dst = append(dst, '"')
	dst = time.Unix(t.Sec, 0).UTC().AppendFormat(dst, layout)
	dst = append(dst, '.')
	us := t.Nsec / 1000
	var buf [8]byte
	s := strconv.AppendUint(buf[:0], uint64(us), 10)
	for i := len(s); i < 6; i++ {
		dst = append(dst, '0')
	}
	dst = append(dst, s...)
	dst = append(dst, suffix...)
	return append(dst, '"')
}
