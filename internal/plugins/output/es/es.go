// Package es is Fluent Bit's Elasticsearch output (out_es) and its
// OpenSearch twin (out_opensearch): one implementation, two specs. Every
// chunk is sent as one request to the bulk API (POST <path>/_bulk), one
// action line and one document line per record:
//
//	{"create":{"_index":"fluent-bit","_type":"_doc","_id":"..."}}
//	{"@timestamp":"2023-11-14T22:13:20.123Z",...record...}
//
// Keys, as upstream: index/type, or logstash_format with logstash_prefix
// (or logstash_prefix_key, a record key), logstash_prefix_separator and
// logstash_dateformat (strftime, UTC) naming a daily index from the record
// time (current_time_index: from the time of the flush); time_key,
// time_key_format and time_key_nanos for the timestamp field added to every
// document; include_tag_key/tag_key; id_key and generate_id; write_operation
// create (default), index, update, upsert; replace_dots; suppress_type_name
// (no _type in the action, as Elasticsearch 8 and OpenSearch 2 require);
// pipeline; compress gzip; http_user/http_passwd, http_api_key, cloud_id and
// cloud_auth; buffer_size (how much of the response is read); TLS and
// network settings through the generic tls.* and net.* keys.
//
// What Floe does better than upstream, which retries the whole chunk when
// the bulk response reports any error:
//   - Per-item outcome. An item answered 2xx is accepted; 409 to a create is
//     a document that already exists (a redelivery), so accepted too; 429
//     and 5xx are retried; any other 4xx (a mapping error, a bad index name)
//     is permanent. The output keeps, per chunk id, which records are settled,
//     so the retry of a chunk sends only the records still owed. When every
//     record is settled and some failed permanently, the chunk answers ERROR
//     and goes to the dead letters naming the first failures.
//   - Exactly once. Without id_key (or when a record lacks it) and without
//     generate_id, every document gets _id = a digest of the chunk id and the
//     record's index, stable across redeliveries, so a chunk delivered again
//     after a crash (or replayed from the dead letters) creates nothing new:
//     create answers 409 and index overwrites. Upstream lets the server pick
//     ids, which duplicates every redelivered record.
//   - A record that already holds time_key keeps its own value instead of
//     getting a second @timestamp field (which Elasticsearch refuses as a
//     duplicate field).
//
// Deviations: generate_id hashes the record with SHA-256 instead of
// MurmurHash3, so ids differ from upstream's (same record, same id still
// holds); id_key and logstash_prefix_key take a key or a record accessor of
// keys only ($a['b']); the aws_* keys (Amazon OpenSearch Service SigV4) are
// refused.
package es

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	httpout "github.com/floe-io/floe/internal/plugins/output/http"
)

// Spec describes the es (Elasticsearch) output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput, Name: "es", Desc: "Elasticsearch",
		Keys: keys(true), NewOutput: newFor("es"),
	}
}

// OpenSearchSpec describes the opensearch output plugin.
func OpenSearchSpec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput, Name: "opensearch", Desc: "OpenSearch",
		Keys: keys(false), NewOutput: newFor("opensearch"),
	}
}

func keys(elastic bool) []plugin.Key {
	ks := []plugin.Key{
		{Name: "host", Default: "127.0.0.1", Desc: "IP address or hostname of the server"},
		{Name: "port", Type: plugin.Int, Default: "9200", Desc: "TCP port of the server"},
		{Name: "path", Desc: "path prefix of the bulk API, e.g. /es"},
		{Name: "index", Default: "fluent-bit", Desc: "index name"},
		{Name: "type", Default: "_doc", Desc: "document type (omitted with suppress_type_name)"},
		{Name: "suppress_type_name", Type: plugin.Bool, Default: "off", Desc: "omit _type from the bulk actions"},
		{Name: "logstash_format", Type: plugin.Bool, Default: "off", Desc: "index named PREFIX-DATE from the record time"},
		{Name: "logstash_prefix", Default: "logstash", Desc: "index prefix with logstash_format"},
		{Name: "logstash_prefix_key", Desc: "record key whose value is the index prefix"},
		{Name: "logstash_prefix_separator", Default: "-", Desc: "between prefix and date"},
		{Name: "logstash_dateformat", Default: "%Y.%m.%d", Desc: "strftime format of the index date"},
		{Name: "current_time_index", Type: plugin.Bool, Default: "off", Desc: "date the index by the flush time"},
		{Name: "time_key", Default: "@timestamp", Desc: "field that carries the record time"},
		{Name: "time_key_format", Default: "%Y-%m-%dT%H:%M:%S", Desc: "strftime format of the time field (milliseconds and Z are appended)"},
		{Name: "time_key_nanos", Type: plugin.Bool, Default: "off", Desc: "nanoseconds instead of milliseconds in the time field"},
		{Name: "include_tag_key", Type: plugin.Bool, Default: "off", Desc: "add the tag to every document"},
		{Name: "tag_key", Default: "_flb-key", Desc: "field of the tag with include_tag_key"},
		{Name: "generate_id", Type: plugin.Bool, Default: "off", Desc: "_id from a hash of the record"},
		{Name: "id_key", Desc: "record key whose value is the _id"},
		{Name: "write_operation", Default: "create", Enum: []string{"create", "index", "update", "upsert"}, Desc: "bulk operation"},
		{Name: "replace_dots", Type: plugin.Bool, Default: "off", Desc: "replace dots in keys with underscores"},
		{Name: "pipeline", Desc: "ingest pipeline to run"},
		{Name: "buffer_size", Default: "512KB", Desc: "bytes of the response read; false for no limit"},
		{Name: "http_user", Desc: "basic authentication user"},
		{Name: "http_passwd", Desc: "basic authentication password"},
		{Name: "http_api_key", Desc: "API key (Authorization: ApiKey ...)"},
		{Name: "compress", Enum: []string{"gzip"}, Desc: "gzip the request body"},
		{Name: "trace_output", Type: plugin.Bool, Default: "off", Desc: "log every bulk request"},
		{Name: "trace_error", Type: plugin.Bool, Default: "off", Desc: "log the request and response of a failed bulk"},
		{Name: "http.response_timeout", Type: plugin.Seconds, Default: "60s", Desc: "maximum time of one bulk request"},
		{Name: "aws_auth", Type: plugin.Bool, Desc: "not supported by Floe"},
		{Name: "aws_region", Desc: "not supported by Floe"},
		{Name: "aws_sts_endpoint", Desc: "not supported by Floe"},
		{Name: "aws_role_arn", Desc: "not supported by Floe"},
		{Name: "aws_external_id", Desc: "not supported by Floe"},
		{Name: "aws_service_name", Desc: "not supported by Floe"},
		{Name: "aws_profile", Desc: "not supported by Floe"},
		{Name: "workers", Type: plugin.Int, Default: "2"},
	}
	if elastic {
		ks = append(ks,
			plugin.Key{Name: "cloud_id", Desc: "Elastic Cloud deployment id (sets host, port 443 and TLS)"},
			plugin.Key{Name: "cloud_auth", Desc: "Elastic Cloud user:password"},
		)
	}
	return ks
}

// Output sends chunks to the bulk API. It is safe for concurrent flushes.
type Output struct {
	name      string // es or opensearch, for messages
	log       *slog.Logger
	client    *http.Client
	transport *http.Transport
	addr      string
	url       string
	timeout   time.Duration

	index, typ       string
	suppressType     bool
	logstash         bool
	prefix           string
	prefixKey        accessor
	sep, dateFmt     string
	currentTimeIndex bool
	timeKey          string
	timeKeyFmt       string
	timeNanos        bool
	tagKey           string // "" unless include_tag_key
	generateID       bool
	idKey            accessor
	op               string
	replaceDots      bool
	bufferSize       int64 // 0: no limit
	user, pass       string
	apiKey           string
	gzip             bool
	traceOutput      bool
	traceError       bool

	state *settled
	bufs  sync.Pool
	now   func() time.Time
}

func newFor(name string) func(context.Context, plugin.Settings, *plugin.Props) (plugin.Output, error) {
	return func(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
		return newOutput(name, set, p)
	}
}

func newOutput(name string, set plugin.Settings, p *plugin.Props) (*Output, error) {
	o := &Output{name: name, log: set.Logger, state: newSettled(4096), now: time.Now}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	for _, pr := range p.Section.Props {
		if k := strings.ToLower(pr.Key); strings.HasPrefix(k, "aws_") {
			return nil, p.Errorf(pr.Key, "%s is not supported by Floe (no AWS SigV4 signing); use basic authentication or an API key", pr.Key)
		}
	}
	host := strings.Trim(strings.TrimSpace(p.String("host")), "[]")
	port := p.Int("port")
	tlsForced := false
	if cid := strings.TrimSpace(p.String("cloud_id")); cid != "" {
		h, pt, err := parseCloudID(cid)
		if err != nil {
			return nil, p.Errorf("cloud_id", "%v", err)
		}
		host, port, tlsForced = h, pt, true
	}
	if host == "" {
		return nil, p.Errorf("host", "host is empty")
	}
	if port < 1 || port > 65535 {
		return nil, p.Errorf("port", "port %d is out of range (1-65535)", port)
	}
	o.addr = net.JoinHostPort(host, strconv.Itoa(port))

	t, tlsOn, err := httpout.Transport(p, host, o.log)
	if err != nil {
		return nil, err
	}
	if tlsForced && !tlsOn {
		// cloud_id means Elastic Cloud, which speaks only HTTPS.
		t.TLSClientConfig = nil
		tlsOn = true
	}
	o.transport = t
	o.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	path := strings.TrimRight(strings.TrimSpace(p.String("path")), "/")
	if path != "" && path[0] != '/' {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + o.addr + path + "/_bulk")
	if err != nil {
		return nil, p.Errorf("path", "invalid path %q: %v", p.String("path"), err)
	}
	if pl := strings.TrimSpace(p.String("pipeline")); pl != "" {
		u.RawQuery = url.Values{"pipeline": {pl}}.Encode()
	}
	o.url = u.String()
	o.timeout = time.Duration(p.Seconds("http.response_timeout") * float64(time.Second))

	o.index, o.typ = p.String("index"), p.String("type")
	if o.index == "" {
		return nil, p.Errorf("index", "index is empty")
	}
	o.suppressType = p.Bool("suppress_type_name")
	o.logstash = p.Bool("logstash_format")
	o.prefix = p.String("logstash_prefix")
	if p.Has("logstash_prefix_key") {
		if o.prefixKey, err = parseAccessor(p.String("logstash_prefix_key")); err != nil {
			return nil, p.Errorf("logstash_prefix_key", "%v", err)
		}
	}
	o.sep = p.String("logstash_prefix_separator")
	o.dateFmt = p.String("logstash_dateformat")
	if err := checkStrftime(o.dateFmt); err != nil {
		return nil, p.Errorf("logstash_dateformat", "%v", err)
	}
	o.currentTimeIndex = p.Bool("current_time_index")
	o.timeKey = p.String("time_key")
	o.timeKeyFmt = p.String("time_key_format")
	if err := checkStrftime(o.timeKeyFmt); err != nil {
		return nil, p.Errorf("time_key_format", "%v", err)
	}
	o.timeNanos = p.Bool("time_key_nanos")
	if p.Bool("include_tag_key") {
		o.tagKey = p.String("tag_key")
	}
	o.generateID = p.Bool("generate_id")
	if p.Has("id_key") {
		if o.idKey, err = parseAccessor(p.String("id_key")); err != nil {
			return nil, p.Errorf("id_key", "%v", err)
		}
	}
	o.op = strings.ToLower(p.String("write_operation"))
	o.replaceDots = p.Bool("replace_dots")
	if bs := strings.TrimSpace(p.String("buffer_size")); bs != "" {
		if v, berr := config.ParseBool(bs); berr == nil && !v {
			o.bufferSize = 0
		} else if n, serr := config.ParseSize(bs); serr == nil && n > 0 {
			o.bufferSize = n
		} else {
			return nil, p.Errorf("buffer_size", "%q is not a size (e.g. 512KB) or false", bs)
		}
	}
	if u := p.String("http_user"); u != "" {
		o.user, o.pass = u, p.String("http_passwd")
	}
	if ca := p.String("cloud_auth"); ca != "" {
		u, pw, ok := strings.Cut(ca, ":")
		if !ok {
			return nil, p.Errorf("cloud_auth", "cloud_auth must be user:password")
		}
		o.user, o.pass = u, pw
	}
	o.apiKey = p.String("http_api_key")
	if o.apiKey != "" && o.user != "" {
		return nil, p.Errorf("http_api_key", "set either http_api_key or http_user/cloud_auth, not both")
	}
	o.gzip = strings.EqualFold(strings.TrimSpace(p.String("compress")), "gzip")
	o.traceOutput = p.Bool("trace_output")
	o.traceError = p.Bool("trace_error")
	return o, nil
}

// parseCloudID decodes an Elastic Cloud id: "name:base64(domain$es$kibana)",
// the domain possibly with a port.
func parseCloudID(id string) (string, int, error) {
	_, enc, ok := strings.Cut(id, ":")
	if !ok {
		enc = id
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", 0, fmt.Errorf("cloud_id is not name:base64: %v", err)
	}
	parts := strings.Split(string(raw), "$")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", 0, errors.New("cloud_id does not hold a domain and an Elasticsearch id")
	}
	domain, port := parts[0], 443
	if h, p, err := net.SplitHostPort(domain); err == nil {
		domain = h
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, fmt.Errorf("cloud_id port %q: %v", p, err)
		}
	}
	return parts[1] + "." + domain, port, nil
}

// Close releases idle connections.
func (o *Output) Close(context.Context) error {
	o.transport.CloseIdleConnections()
	return nil
}

// Flush sends the records of c that are not yet settled in one bulk request.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("%s: %s chunks are not supported", o.name, c.Signal()))
	}
	st := o.state.get(c.ID)
	bp := o.getBuf()
	defer o.putBuf(bp)
	body, sent, err := o.appendBulk((*bp)[:0], c, st)
	*bp = body
	if err != nil {
		return plugin.Permanent(fmt.Errorf("%s: chunk %s: %w", o.name, c.ID, err))
	}
	if len(sent) == 0 {
		return o.finish(c, st)
	}
	if o.traceOutput {
		o.log.Info(o.name+": bulk request", "records", len(sent), "payload", string(body))
	}
	resp, err := o.post(ctx, body)
	if err != nil {
		return err
	}
	if err := o.settle(c, st, sent, resp); err != nil {
		if o.traceError {
			o.log.Error(o.name+": bulk request failed", "payload", string(body), "response", string(resp))
		}
		return err
	}
	return o.finish(c, st)
}

// finish answers for a chunk whose records are all settled.
func (o *Output) finish(c *chunk.Chunk, st *chunkState) error {
	o.state.drop(c.ID)
	if st.failed == 0 {
		return nil
	}
	return plugin.Permanent(fmt.Errorf("%s: %d of %d records of chunk %s refused: %s",
		o.name, st.failed, len(st.done), c.ID, strings.Join(st.reasons, "; ")))
}

// appendBulk writes the action and document lines of the records of c not
// yet settled, returning the record index of each item sent.
func (o *Output) appendBulk(dst []byte, c *chunk.Chunk, st *chunkState) ([]byte, []int, error) {
	var sent []int
	var idBase string
	if c.ID != "" {
		sum := sha256.Sum256([]byte(c.ID))
		idBase = hex.EncodeToString(sum[:12])
	}
	var now time.Time
	if o.currentTimeIndex {
		now = o.now().UTC()
	}
	i := -1
	err := format.EachRecord(c.Data, func(r *format.Record) error {
		i++
		if st.isDone(i) {
			return nil
		}
		mark := len(dst)
		var err error
		if dst, err = o.appendItem(dst, r, c.Tag, idBase, i, now); err != nil {
			dst = dst[:mark]
			return fmt.Errorf("record %d at byte offset %d: %w", i, r.Offset, err)
		}
		sent = append(sent, i)
		return nil
	})
	st.size(i + 1)
	return dst, sent, err
}

func (o *Output) appendItem(dst []byte, r *format.Record, tag, idBase string, i int, now time.Time) ([]byte, error) {
	t := r.Time.Std().UTC()
	// Action line.
	dst = append(dst, `{"`...)
	op := o.op
	if op == "upsert" {
		op = "update"
	}
	dst = append(dst, op...)
	dst = append(dst, `":{"_index":`...)
	if o.logstash {
		prefix := o.prefix
		if o.prefixKey != nil {
			if v, ok := o.prefixKey.lookup(r.Body); ok {
				prefix = v
			}
		}
		dt := t
		if o.currentTimeIndex {
			dt = now
		}
		// Index names are plain text in practice; render in place and
		// escape only when needed, so a record costs no allocation here.
		mark := len(dst)
		dst = append(dst, '"')
		dst = append(append(dst, prefix...), o.sep...)
		dst = appendStrftime(dst, o.dateFmt, dt)
		if needsEscape(dst[mark+1:]) {
			name := string(dst[mark+1:])
			dst = event.AppendJSONString(dst[:mark], name, event.JSONOptions{})
		} else {
			dst = append(dst, '"')
		}
	} else {
		dst = event.AppendJSONString(dst, o.index, event.JSONOptions{})
	}
	if !o.suppressType {
		dst = append(dst, `,"_type":`...)
		dst = event.AppendJSONString(dst, o.typ, event.JSONOptions{})
	}
	id := ""
	if o.idKey != nil {
		id, _ = o.idKey.lookup(r.Body)
	}
	if id == "" && o.generateID {
		sum := sha256.Sum256(r.Raw)
		id = fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	}
	switch {
	case id != "":
		dst = append(dst, `,"_id":`...)
		dst = event.AppendJSONString(dst, id, event.JSONOptions{})
	case idBase != "":
		// The stable id: hex digest of the chunk id, "-", record index.
		dst = append(dst, `,"_id":"`...)
		dst = append(dst, idBase...)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, int64(i), 10)
		dst = append(dst, '"')
	}
	dst = append(dst, "}}\n"...)

	// Document line.
	switch o.op {
	case "update":
		dst = append(dst, `{"doc":`...)
	case "upsert":
		dst = append(dst, `{"doc_as_upsert":true,"doc":`...)
	}
	var err error
	if dst, err = o.appendDoc(dst, r, t, tag); err != nil {
		return dst, err
	}
	if o.op == "update" || o.op == "upsert" {
		dst = append(dst, '}')
	}
	return append(dst, '\n'), nil
}

// appendDoc renders the record with the time key (and the tag key) first.
func (o *Output) appendDoc(dst []byte, r *format.Record, t time.Time, tag string) ([]byte, error) {
	hasTime, hasTag := false, false
	if err := format.Pairs(r.Body, func(k, _ []byte) bool {
		if s, ok := format.Str(k); ok {
			hasTime = hasTime || string(s) == o.timeKey
			hasTag = hasTag || (o.tagKey != "" && string(s) == o.tagKey)
		}
		return true
	}); err != nil {
		return dst, fmt.Errorf("record body is not a map: %w", err)
	}
	dst = append(dst, '{')
	sep := false
	if !hasTime {
		dst = event.AppendJSONString(dst, o.timeKey, event.JSONOptions{})
		dst = append(dst, ':', '"')
		dst = appendStrftime(dst, o.timeKeyFmt, t)
		if o.timeNanos {
			dst = append(dst, '.')
			dst = appendPadded(dst, int64(t.Nanosecond()), 9)
		} else {
			dst = append(dst, '.')
			dst = appendPadded(dst, int64(t.Nanosecond()/1e6), 3)
		}
		dst = append(dst, 'Z', '"')
		sep = true
	}
	if o.tagKey != "" && !hasTag {
		if sep {
			dst = append(dst, ',')
		}
		dst = event.AppendJSONString(dst, o.tagKey, event.JSONOptions{})
		dst = append(dst, ':')
		dst = event.AppendJSONString(dst, tag, event.JSONOptions{})
		sep = true
	}
	var err error
	mark := len(dst)
	if o.replaceDots {
		dst, err = appendDotless(dst, r.Body, 0)
	} else {
		dst, err = format.AppendJSON(dst, r.Body, event.JSONOptions{})
	}
	if err != nil {
		return dst, err
	}
	// dst[mark:] is the body's own {...}: splice its pairs after ours.
	inner := dst[mark+1 : len(dst)-1]
	if len(inner) == 0 {
		dst = append(dst[:mark], '}')
		return dst, nil
	}
	if sep {
		// The body's opening brace becomes the separator after our pairs
		// and its closing brace closes the document.
		dst[mark] = ','
		return dst, nil
	}
	copy(dst[mark:], dst[mark+1:])
	return dst[:len(dst)-1], nil
}

// needsEscape reports whether b holds a byte JSON must escape (or non-ASCII,
// left to the escaper's UTF-8 handling).
func needsEscape(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}

func appendPadded(dst []byte, v int64, width int) []byte {
	s := strconv.FormatInt(v, 10)
	for range width - len(s) {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

const maxDepth = 64

// appendDotless renders a MessagePack value as JSON with '.' in map keys
// replaced by '_' at every depth (replace_dots), as upstream does for
// Elasticsearch versions that read dots as object paths.
func appendDotless(dst, v []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, fmt.Errorf("nesting deeper than %d", maxDepth)
	}
	if len(v) == 0 {
		return dst, errors.New("empty value")
	}
	switch c := v[0]; {
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		dst = append(dst, '{')
		first := true
		var err error
		perr := format.Pairs(v, func(k, val []byte) bool {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			if s, ok := format.Str(k); ok {
				dst = event.AppendJSONString(dst, strings.ReplaceAll(string(s), ".", "_"), event.JSONOptions{})
			} else if dst, err = format.AppendJSON(dst, k, event.JSONOptions{}); err != nil {
				return false
			}
			dst = append(dst, ':')
			dst, err = appendDotless(dst, val, depth+1)
			return err == nil
		})
		if perr != nil {
			return dst, perr
		}
		if err != nil {
			return dst, err
		}
		return append(dst, '}'), nil
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		n, p := 0, 1
		switch {
		case c <= 0x9f:
			n = int(c & 0x0f)
		case c == 0xdc && len(v) >= 3:
			n, p = int(v[1])<<8|int(v[2]), 3
		case c == 0xdd && len(v) >= 5:
			n, p = int(v[1])<<24|int(v[2])<<16|int(v[3])<<8|int(v[4]), 5
		default:
			return dst, errors.New("truncated array")
		}
		dst = append(dst, '[')
		for i := range n {
			end, err := event.Skip(v, p)
			if err != nil {
				return dst, err
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendDotless(dst, v[p:end], depth+1); err != nil {
				return dst, err
			}
			p = end
		}
		return append(dst, ']'), nil
	}
	return format.AppendJSON(dst, v, event.JSONOptions{})
}

var errResponseTimeout = errors.New("no complete response within http.response_timeout")

// post sends one bulk request and returns the response body of a 200;
// every other outcome is an error classed as RETRY or ERROR.
func (o *Output) post(parent context.Context, body []byte) ([]byte, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if o.timeout > 0 {
		t := time.AfterFunc(o.timeout, func() { cancel(errResponseTimeout) })
		defer t.Stop()
	}
	payload := body
	if o.gzip {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		if _, err := zw.Write(body); err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", o.name, err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", o.name, err)
		}
		payload = zb.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(payload))
	if err != nil {
		return nil, plugin.Permanent(fmt.Errorf("%s: %w", o.name, err))
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("User-Agent", "Fluent-Bit")
	if o.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	switch {
	case o.apiKey != "":
		req.Header.Set("Authorization", "ApiKey "+o.apiKey)
	case o.user != "":
		req.SetBasicAuth(o.user, o.pass)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		if perr := parent.Err(); perr != nil {
			return nil, fmt.Errorf("%s: bulk request to %s abandoned: %w", o.name, o.addr, perr)
		}
		if errors.Is(context.Cause(ctx), errResponseTimeout) {
			err = fmt.Errorf("%w (%s)", errResponseTimeout, o.timeout)
		}
		return nil, fmt.Errorf("%s: bulk request to %s: %w", o.name, o.addr, err)
	}
	defer resp.Body.Close()
	limit := o.bufferSize
	if resp.StatusCode != http.StatusOK || limit == 0 {
		limit = 1 << 30
		if resp.StatusCode != http.StatusOK {
			limit = 4096
		}
	}
	rb, rerr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if rerr != nil {
		return nil, fmt.Errorf("%s: reading the bulk response of %s (HTTP status=%d): %w", o.name, o.addr, resp.StatusCode, rerr)
	}
	if resp.StatusCode == http.StatusOK {
		return rb, nil
	}
	serr := fmt.Errorf("%s: %s answered HTTP status=%d: %s", o.name, o.addr, resp.StatusCode, clip(rb))
	return nil, httpout.StatusAnswer(resp.StatusCode, resp.Header, serr)
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	return s
}

type bulkResponse struct {
	Errors bool                         `json:"errors"`
	Items  []map[string]json.RawMessage `json:"items"`
}

type bulkItem struct {
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

// settle reads a bulk response and marks each sent record accepted, failed
// for good, or still owed; it returns a RETRY error while records are owed.
func (o *Output) settle(c *chunk.Chunk, st *chunkState, sent []int, resp []byte) error {
	truncated := o.bufferSize > 0 && int64(len(resp)) > o.bufferSize
	head := resp[:min(len(resp), 256)]
	if bytes.Contains(head, []byte(`"errors":false`)) {
		for _, i := range sent {
			st.accept(i)
		}
		return nil
	}
	if truncated {
		return fmt.Errorf("%s: the bulk response of %s reports errors but is larger than buffer_size (%d bytes), so the failed items cannot be told apart; raise buffer_size or set it to false", o.name, o.addr, o.bufferSize)
	}
	var br bulkResponse
	if err := json.Unmarshal(resp, &br); err != nil {
		return fmt.Errorf("%s: cannot read the bulk response of %s: %w: %s", o.name, o.addr, err, clip(resp))
	}
	if !br.Errors {
		for _, i := range sent {
			st.accept(i)
		}
		return nil
	}
	if len(br.Items) != len(sent) {
		return fmt.Errorf("%s: the bulk response of %s has %d items for %d sent", o.name, o.addr, len(br.Items), len(sent))
	}
	retry, firstRetry := 0, ""
	for k, it := range br.Items {
		i := sent[k]
		var item bulkItem
		var op string
		for op = range it {
			if err := json.Unmarshal(it[op], &item); err != nil {
				return fmt.Errorf("%s: bulk item %d of %s: %w", o.name, k, o.addr, err)
			}
		}
		switch s := item.Status; {
		case s >= 200 && s < 300:
			st.accept(i)
		case s == http.StatusConflict && op == "create":
			// The document exists: an earlier delivery of this record.
			st.accept(i)
		case s == http.StatusTooManyRequests || s >= 500 || s == http.StatusRequestTimeout || s == 0 ||
			(s == http.StatusConflict && op == "update"):
			retry++
			if firstRetry == "" {
				firstRetry = fmt.Sprintf("record %d: status %d %s", i, s, clip(item.Error))
			}
		default:
			st.fail(i, fmt.Sprintf("record %d: status %d %s", i, s, clip(item.Error)))
			o.log.Error(o.name+": record refused, it will be dead-lettered with its chunk", "chunk", c.ID, "record", i, "status", s, "error", clip(item.Error))
		}
	}
	if retry > 0 {
		return fmt.Errorf("%s: %d of %d records of chunk %s to retry (%s)", o.name, retry, len(sent), c.ID, firstRetry)
	}
	return nil
}

func (o *Output) getBuf() *[]byte {
	if v, ok := o.bufs.Get().(*[]byte); ok {
		return v
	}
	return new([]byte)
}

func (o *Output) putBuf(b *[]byte) {
	if cap(*b) <= 16<<20 {
		o.bufs.Put(b)
	}
}
