// Package loki is Fluent Bit's Loki output (out_loki): it pushes every chunk
// to Loki's push API (POST /loki/api/v1/push), the records grouped into
// streams by their label set.
//
// Labels come from labels ("job=fluent-bit" by default; key=value pairs and
// record accessors, "$sub['stream']" or "name=$sub['stream']"), label_keys
// (record accessors, labelled by their last key), label_map_path (a JSON
// file mapping record paths to label names) and auto_kubernetes_labels
// (every pair of $kubernetes['labels']). Label names are sanitized to
// Loki's [a-zA-Z_][a-zA-Z0-9_]* by replacing other characters with '_'. A
// record lacking a label's key goes without that label. The keys of
// label_keys and remove_keys are removed from the line; line_format json
// (the default) renders the rest as JSON, key_value as "k=v k2=v2";
// drop_single_key sends the value of a record left with one key
// (on: as JSON, raw: a string unquoted).
// structured_metadata adds per-entry metadata (same syntax as labels).
// tenant_id sets X-Scope-OrgID; tenant_id_key takes it from the record, in
// which case one request is sent per tenant.
//
// Wire format: format json (the default, what Fluent Bit sends) or protobuf
// (a Floe addition: the push API's protobuf PushRequest, snappy-compressed,
// as Promtail and the Grafana agent send it; smaller and cheaper for Loki to
// decode). compress gzip applies to json.
//
// Answers: 2xx is OK; 429 and 5xx are RETRY (429/503 honour Retry-After);
// any other 4xx (an entry too old, a line too long, a bad label) is ERROR.
// A redelivered chunk is harmless: Loki drops an entry whose stream,
// timestamp and line equal one it already holds, and every entry keeps its
// record's timestamp.
package loki

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	httpout "github.com/floe-io/floe/internal/plugins/output/http"
)

// Spec describes the loki output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput, Name: "loki", Desc: "Loki",
		Keys: []plugin.Key{
			{Name: "host", Default: "127.0.0.1", Desc: "Loki host name or IP address"},
			{Name: "port", Type: plugin.Int, Default: "3100", Desc: "Loki TCP port"},
			{Name: "uri", Default: "/loki/api/v1/push", Desc: "push API path"},
			{Name: "http_user", Desc: "basic authentication user"},
			{Name: "http_passwd", Desc: "basic authentication password"},
			{Name: "bearer_token", Desc: "bearer token"},
			{Name: "header", Multi: true, Desc: "extra header 'Name value'; may repeat"},
			{Name: "tenant_id", Desc: "X-Scope-OrgID of every request"},
			{Name: "tenant_id_key", Desc: "record key holding the tenant id"},
			{Name: "labels", Default: "job=fluent-bit", Desc: "stream labels: key=value, $accessor or name=$accessor, comma separated"},
			{Name: "label_keys", Desc: "record accessors whose values become labels, comma separated"},
			{Name: "label_map_path", Desc: "JSON file mapping record paths to label names"},
			{Name: "structured_metadata", Desc: "per-entry metadata, same syntax as labels"},
			{Name: "remove_keys", Desc: "record accessors removed from the line, comma separated"},
			{Name: "drop_single_key", Default: "off", Enum: []string{"on", "off", "true", "false", "yes", "no", "raw"},
				Desc: "send the value of a record left with one key: on (as JSON), raw (strings unquoted)"},
			{Name: "structured_metadata_map_keys", Desc: "not supported by Floe"},
			{Name: "line_format", Default: "json", Enum: []string{"json", "key_value"}, Desc: "line rendering"},
			{Name: "auto_kubernetes_labels", Type: plugin.Bool, Default: "off", Desc: "add $kubernetes['labels'] as labels"},
			{Name: "format", Default: "json", Enum: []string{"json", "protobuf"}, Desc: "push API encoding (protobuf is snappy-compressed)"},
			{Name: "compress", Enum: []string{"gzip"}, Desc: "gzip the json body"},
			{Name: "http.response_timeout", Type: plugin.Seconds, Default: "60s", Desc: "maximum time of one push"},
			{Name: "workers", Type: plugin.Int, Default: "2"},
		},
		NewOutput: New,
	}
}

// drop_single_key modes.
const (
	dropJSON = 1 + iota // the value rendered as JSON: a string keeps its quotes
	dropRaw             // a string value as it is
)

// labelSpec is one label: a fixed value, or a record path.
type labelSpec struct {
	name  string
	value string
	path  []string // nil for a fixed value
}

// Output pushes chunks to Loki. It is safe for concurrent flushes.
type Output struct {
	log        *slog.Logger
	client     *http.Client
	transport  *http.Transport
	addr, url  string
	timeout    time.Duration
	user, pass string
	bearer     string
	headers    [][2]string
	tenant     string
	tenantKey  []string
	labels     []labelSpec
	meta       []labelSpec
	removes    [][]string
	dropSingle int // 0 off, dropJSON, dropRaw
	keyValue   bool
	k8sLabels  bool
	protobuf   bool
	gzip       bool
}

// New builds a loki output from its configuration.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	return newOutput(set, p)
}

func newOutput(set plugin.Settings, p *plugin.Props) (*Output, error) {
	o := &Output{log: set.Logger}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	ep, err := httpout.NewEndpoint(p, o.log)
	if err != nil {
		return nil, err
	}
	o.addr, o.transport, o.client = ep.Addr, ep.Transport, ep.Client
	scheme := ep.Scheme
	uri := strings.TrimSpace(p.String("uri"))
	if uri == "" || uri[0] != '/' {
		return nil, p.Errorf("uri", "uri %q must start with /", uri)
	}
	u, err := url.Parse(scheme + "://" + o.addr + uri)
	if err != nil {
		return nil, p.Errorf("uri", "invalid uri %q: %v", uri, err)
	}
	o.url = u.String()
	o.timeout = time.Duration(p.Seconds("http.response_timeout") * float64(time.Second))
	if v := p.String("http_user"); v != "" {
		o.user, o.pass = v, p.String("http_passwd")
	}
	o.bearer = p.String("bearer_token")
	for _, h := range p.All("header") {
		name, value, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || strings.TrimSpace(value) == "" {
			return nil, p.Errorf("header", "header %q needs a name and a value, e.g. 'X-Key value'", h)
		}
		o.headers = append(o.headers, [2]string{name, strings.TrimSpace(value)})
	}
	o.tenant = p.String("tenant_id")
	if v := strings.TrimSpace(p.String("tenant_id_key")); v != "" {
		if o.tenantKey, err = parsePath(v); err != nil {
			return nil, p.Errorf("tenant_id_key", "%v", err)
		}
	}
	if o.labels, err = parseLabels(p.String("labels"), false); err != nil {
		return nil, p.Errorf("labels", "%v", err)
	}
	if v := p.String("label_keys"); v != "" {
		for _, k := range splitList(v) {
			path, err := parsePath(k)
			if err != nil {
				return nil, p.Errorf("label_keys", "%v", err)
			}
			o.labels = append(o.labels, labelSpec{name: sanitize(path[len(path)-1]), path: path})
			o.removes = append(o.removes, path)
		}
	}
	if f := strings.TrimSpace(p.String("label_map_path")); f != "" {
		ls, err := readLabelMap(f)
		if err != nil {
			return nil, p.Errorf("label_map_path", "%v", err)
		}
		o.labels = append(o.labels, ls...)
	}
	if o.meta, err = parseLabels(p.String("structured_metadata"), true); err != nil {
		return nil, p.Errorf("structured_metadata", "%v", err)
	}
	if v := p.String("remove_keys"); v != "" {
		for _, k := range splitList(v) {
			path, err := parsePath(k)
			if err != nil {
				return nil, p.Errorf("remove_keys", "%v", err)
			}
			o.removes = append(o.removes, path)
		}
	}
	switch v := strings.ToLower(strings.TrimSpace(p.String("drop_single_key"))); v {
	case "raw":
		o.dropSingle = dropRaw
	case "on", "true", "yes":
		o.dropSingle = dropJSON
	}
	if p.Has("structured_metadata_map_keys") {
		return nil, p.Errorf("structured_metadata_map_keys", "structured_metadata_map_keys is not supported by Floe; list the keys in structured_metadata")
	}
	o.keyValue = strings.EqualFold(p.String("line_format"), "key_value")
	o.k8sLabels = p.Bool("auto_kubernetes_labels")
	o.protobuf = strings.EqualFold(p.String("format"), "protobuf")
	o.gzip = strings.EqualFold(strings.TrimSpace(p.String("compress")), "gzip")
	if o.gzip && o.protobuf {
		return nil, p.Errorf("compress", "compress gzip applies to format json; format protobuf is always snappy-compressed")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseLabels reads "key=value, $a['b'], name=$a['b']".
func parseLabels(s string, allowEmpty bool) ([]labelSpec, error) {
	var out []labelSpec
	for _, f := range splitList(s) {
		name, val, hasEq := strings.Cut(f, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		switch {
		case !hasEq && strings.HasPrefix(f, "$"):
			path, err := parsePath(f)
			if err != nil {
				return nil, err
			}
			out = append(out, labelSpec{name: sanitize(path[len(path)-1]), path: path})
		case !hasEq:
			return nil, fmt.Errorf("%q is neither key=value nor a $record_accessor", f)
		case name == "":
			return nil, fmt.Errorf("%q has an empty label name", f)
		case strings.HasPrefix(val, "$"):
			path, err := parsePath(val)
			if err != nil {
				return nil, err
			}
			out = append(out, labelSpec{name: sanitize(name), path: path})
		default:
			out = append(out, labelSpec{name: sanitize(name), value: val})
		}
	}
	if len(out) == 0 && !allowEmpty && s != "" {
		return nil, errors.New("no labels")
	}
	return out, nil
}

// readLabelMap reads a JSON object whose leaves are label names and whose
// paths are record paths: {"sub": {"stream": "stream"}}.
func readLabelMap(file string) ([]labelSpec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %v", file, err)
	}
	var out []labelSpec
	var walk func(prefix []string, m map[string]any) error
	walk = func(prefix []string, m map[string]any) error {
		for _, k := range event.SortedKeys(m) {
			path := append(append([]string(nil), prefix...), k)
			switch v := m[k].(type) {
			case string:
				out = append(out, labelSpec{name: sanitize(v), path: path})
			case map[string]any:
				if err := walk(path, v); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s: %s: a label name (string) or an object is expected", file, strings.Join(path, "."))
			}
		}
		return nil
	}
	if err := walk(nil, m); err != nil {
		return nil, err
	}
	return out, nil
}

// parsePath reads "key", "$key" or "$a['b']['c']".
func parsePath(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "$") {
		if s == "" {
			return nil, errors.New("empty key")
		}
		return []string{s}, nil
	}
	body := s[1:]
	i := strings.IndexByte(body, '[')
	if i < 0 {
		if body == "" {
			return nil, fmt.Errorf("%q: empty key after $", s)
		}
		return []string{body}, nil
	}
	path := []string{body[:i]}
	rest := body[i:]
	for rest != "" {
		if len(rest) < 4 || rest[0] != '[' || (rest[1] != '\'' && rest[1] != '"') {
			return nil, fmt.Errorf("record accessor %q: expected ['key'] at %q", s, rest)
		}
		q := rest[1]
		end := strings.IndexByte(rest[2:], q)
		if end < 0 || len(rest) < end+4 || rest[end+3] != ']' {
			return nil, fmt.Errorf("record accessor %q: unterminated ['key'] at %q", s, rest)
		}
		path = append(path, rest[2:2+end])
		rest = rest[end+4:]
	}
	if path[0] == "" {
		return nil, fmt.Errorf("record accessor %q has an empty first key", s)
	}
	return path, nil
}

// sanitize makes a valid Loki label name.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// Close releases idle connections.
func (o *Output) Close(context.Context) error {
	o.transport.CloseIdleConnections()
	return nil
}

// entry is one log line of a stream.
type entry struct {
	ts   int64
	line []byte
	meta [][2]string
}

type stream struct {
	labels  [][2]string // sorted by name
	key     string
	entries []entry
}

// batch is the streams of one tenant.
type batch struct {
	tenant  string
	streams []*stream
	byKey   map[string]*stream
}

// Flush groups the records of c into streams and pushes them.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("loki: %s chunks are not supported", c.Signal()))
	}
	batches, err := o.group(c)
	if err != nil {
		return plugin.Permanent(fmt.Errorf("loki: chunk %s: %w", c.ID, err))
	}
	for _, b := range batches {
		var body []byte
		if o.protobuf {
			body = snappy.Encode(nil, appendPushRequest(nil, b.streams))
		} else {
			body = appendPushJSON(nil, b.streams)
		}
		if err := o.push(ctx, b.tenant, body); err != nil {
			return err
		}
	}
	return nil
}

func (o *Output) group(c *chunk.Chunk) ([]*batch, error) {
	var batches []*batch
	byTenant := map[string]*batch{}
	i := -1
	err := format.EachRecord(c.Data, func(r *format.Record) error {
		i++
		body, _, err := event.Value(r.Body, 0)
		if err != nil {
			return fmt.Errorf("record %d at byte offset %d: %w", i, r.Offset, err)
		}
		m, ok := body.(event.Map)
		if !ok {
			return fmt.Errorf("record %d at byte offset %d: body is not a map", i, r.Offset)
		}
		tenant := o.tenant
		if o.tenantKey != nil {
			if v, ok := text(lookup(m, o.tenantKey)); ok {
				tenant = v
			}
		}
		labels := o.streamLabels(m)
		var meta [][2]string
		for _, l := range o.meta {
			if l.path == nil {
				meta = append(meta, [2]string{l.name, l.value})
			} else if v, ok := text(lookup(m, l.path)); ok {
				meta = append(meta, [2]string{l.name, v})
			}
		}
		for _, path := range o.removes {
			m = remove(m, path)
		}
		line, err := o.line(m)
		if err != nil {
			return fmt.Errorf("record %d at byte offset %d: %w", i, r.Offset, err)
		}
		b := byTenant[tenant]
		if b == nil {
			b = &batch{tenant: tenant, byKey: map[string]*stream{}}
			byTenant[tenant] = b
			batches = append(batches, b)
		}
		key := labelString(labels)
		s := b.byKey[key]
		if s == nil {
			s = &stream{labels: labels, key: key}
			b.byKey[key] = s
			b.streams = append(b.streams, s)
		}
		s.entries = append(s.entries, entry{ts: r.Time.UnixNano(), line: line, meta: meta})
		return nil
	})
	return batches, err
}

// streamLabels resolves the labels of one record, sorted by name; a later
// label of the same name replaces an earlier one.
func (o *Output) streamLabels(m event.Map) [][2]string {
	set := map[string]string{}
	for _, l := range o.labels {
		if l.path == nil {
			set[l.name] = l.value
		} else if v, ok := text(lookup(m, l.path)); ok {
			set[l.name] = v
		}
	}
	if o.k8sLabels {
		if km, ok := lookup(m, []string{"kubernetes", "labels"}).(event.Map); ok {
			for _, kv := range km {
				if v, ok := text(kv.Value); ok {
					set[sanitize(kv.Key)] = v
				}
			}
		}
	}
	out := make([][2]string, 0, len(set))
	for k, v := range set {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// labelString renders labels as Loki parses them: {a="x", b="y"}.
func labelString(ls [][2]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l[0])
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l[1]))
	}
	b.WriteByte('}')
	return b.String()
}

func lookup(m event.Map, path []string) any {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(event.Map)
		if !ok {
			return nil
		}
		v, ok := mm.Get(k)
		if !ok {
			return nil
		}
		cur = v
	}
	return cur
}

// remove returns m without the value at path (copying the maps it edits).
func remove(m event.Map, path []string) event.Map {
	i := m.Index(path[0])
	if i < 0 {
		return m
	}
	out := m.Clone()
	if len(path) == 1 {
		out.Delete(path[0])
		return out
	}
	if sub, ok := out[i].Value.(event.Map); ok {
		out[i].Value = remove(sub, path[1:])
	}
	return out
}

// text renders a scalar as a label value.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// line renders the record as the log line.
func (o *Output) line(m event.Map) ([]byte, error) {
	if o.dropSingle != 0 && len(m) == 1 {
		if s, ok := m[0].Value.(string); ok && (o.dropSingle == dropRaw || o.keyValue) {
			return []byte(s), nil
		}
		return event.AppendJSON(nil, m[0].Value, event.JSONOptions{}), nil
	}
	if !o.keyValue {
		return event.AppendJSON(nil, m, event.JSONOptions{}), nil
	}
	var b []byte
	for i, kv := range m {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, kv.Key...)
		b = append(b, '=')
		if s, ok := kv.Value.(string); ok {
			b = append(b, s...)
		} else {
			b = event.AppendJSON(b, kv.Value, event.JSONOptions{})
		}
	}
	return b, nil
}

// appendPushJSON renders the push API's JSON body:
// {"streams":[{"stream":{...},"values":[["<ns>","line",{meta}]]}]}.
func appendPushJSON(b []byte, streams []*stream) []byte {
	o := event.JSONOptions{}
	b = append(b, `{"streams":[`...)
	for i, s := range streams {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stream":{`...)
		for j, l := range s.labels {
			if j > 0 {
				b = append(b, ',')
			}
			b = event.AppendJSONString(b, l[0], o)
			b = append(b, ':')
			b = event.AppendJSONString(b, l[1], o)
		}
		b = append(b, `},"values":[`...)
		for j, e := range s.entries {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `["`...)
			b = strconv.AppendInt(b, e.ts, 10)
			b = append(b, `",`...)
			b = event.AppendJSONString(b, string(e.line), o)
			if len(e.meta) > 0 {
				b = append(b, ",{"...)
				for k, m := range e.meta {
					if k > 0 {
						b = append(b, ',')
					}
					b = event.AppendJSONString(b, m[0], o)
					b = append(b, ':')
					b = event.AppendJSONString(b, m[1], o)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

var errResponseTimeout = errors.New("no complete response within http.response_timeout")

func (o *Output) push(parent context.Context, tenant string, body []byte) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if o.timeout > 0 {
		t := time.AfterFunc(o.timeout, func() { cancel(errResponseTimeout) })
		defer t.Stop()
	}
	ctype := "application/json"
	encoding := ""
	if o.protobuf {
		ctype = "application/x-protobuf"
	} else if o.gzip {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("loki: gzip: %w", err)
		}
		body, encoding = zb.Bytes(), "gzip"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return plugin.Permanent(fmt.Errorf("loki: %w", err))
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "Fluent-Bit")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	switch {
	case o.bearer != "":
		req.Header.Set("Authorization", "Bearer "+o.bearer)
	case o.user != "":
		req.SetBasicAuth(o.user, o.pass)
	}
	for _, h := range o.headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := o.client.Do(req)
	if err != nil {
		if perr := parent.Err(); perr != nil {
			return fmt.Errorf("loki: push to %s abandoned: %w", o.addr, perr)
		}
		if errors.Is(context.Cause(ctx), errResponseTimeout) {
			err = fmt.Errorf("%w (%s)", errResponseTimeout, o.timeout)
		}
		return fmt.Errorf("loki: push to %s: %w", o.addr, err)
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	st := resp.StatusCode
	if st >= 200 && st < 300 {
		return nil
	}
	serr := fmt.Errorf("loki: %s answered HTTP status=%d: %s", o.addr, st, strings.TrimSpace(string(rb)))
	answer := httpout.StatusAnswer(st, resp.Header, serr)
	if plugin.IsPermanent(answer) {
		o.log.Error("loki: push refused, the chunk will be dead-lettered", "status", st, "response", strings.TrimSpace(string(rb)))
	}
	return answer
}
