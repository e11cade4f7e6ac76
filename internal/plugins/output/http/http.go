// Package httpout is Fluent Bit's http output (out_http): it sends every chunk
// to an HTTP server in one POST (or PUT) request.
//
// Body and headers, as upstream builds them:
//
//	format       body                                   Content-Type
//	json         [{"date":...,k:v},...] (the default)    application/json
//	json_stream  {"date":...,k:v}{"date":...,k:v}        application/json
//	json_lines   one record per line                    application/x-ndjson
//	msgpack      the chunk's MessagePack, verbatim       application/msgpack
//
// The JSON renderings are the shared ones of package format (json_date_key,
// json_date_format, Fluent Bit's msgpack-to-JSON rules). Headers are added in
// upstream's order: Content-Type, the tag under header_tag, Content-Encoding
// (compress gzip), Authorization (http_user/http_passwd), User-Agent
// "Fluent-Bit", then every header key. With allow_duplicated_headers (the
// default) a header key that repeats one of these adds a second value;
// without it the later one replaces the earlier, as flb_http_add_header does.
//
// Answers, as upstream's http_post: 200 to 205 are OK (the status and the
// response body are logged at info level, the body only with
// log_response_payload); 4xx other than 408 and 429 is ERROR (not retried:
// Floe sets the chunk aside as a dead letter); every other status (1xx, 206
// to 3xx, 408, 429, 5xx) and every connection, TLS or timeout error is RETRY.
// Redirects are not followed.
//
// Floe improvements over upstream:
//   - a 429 or 503 answer with a Retry-After header (seconds or an HTTP date)
//     is retried after that delay (capped at one hour) instead of the
//     scheduler's backoff;
//   - a tag that cannot be sent in a header (control characters) skips the
//     header_tag header with a warning, as Fluent Bit 5.1.3 does for CR, LF
//     and NUL, instead of failing the request.
//
// format gelf sends one GELF 1.1 JSON object per record, each followed by a
// newline (Graylog's HTTP GELF input takes them), built by package gelf with
// the gelf_*_key keys; a record without its short message key makes the
// chunk an ERROR, as upstream.
//
// Deviations, each refused with a configuration error naming the key:
// compress snappy and zstd; proxy (the HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY environment variables are honoured, as in Fluent Bit, unless
// net.proxy_env_ignore is on); tls.key_passwd (encrypted keys). The aws_*,
// oauth2.*, body_key and headers_key keys are not implemented.
// A header key sets the request's Host or User-Agent rather than adding a
// second one (Go sends a single value of each). http.response_timeout bounds
// the whole exchange, connection included.
//
// TLS follows Fluent Bit's defaults: tls.verify on checks the certificate
// chain (against tls.ca_file/tls.ca_path, or the system roots), and the host
// name is checked only with tls.verify_hostname on. tls.vhost sets the SNI
// name (and the name checked). See tls.go for the net.* keys.
package httpout

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/gelf"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
)

// Content types of the formats (out_http's FLB_HTTP_MIME_*).
const (
	mimeJSON    = "application/json"
	mimeNDJSON  = "application/x-ndjson"
	mimeMsgpack = "application/msgpack"
)

const (
	userAgent       = "Fluent-Bit"
	maxLoggedBody   = 4096     // response bytes kept for the log and errors
	maxDrainedBody  = 64 << 10 // response bytes read to reuse the connection
	maxRetryAfter   = time.Hour
	maxReasonLength = 512 // response bytes quoted in a returned error
)

// Spec describes the http output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "http",
		Desc:      "HTTP Output",
		Keys:      keys(),
		NewOutput: New,
	}
}

func keys() []plugin.Key {
	ks := []plugin.Key{
		{Name: "host", Default: "127.0.0.1", Desc: "IP address or hostname of the HTTP server"},
		{Name: "port", Type: plugin.Int, Default: "80", Desc: "TCP port of the HTTP server"},
		{Name: "uri", Default: "/", Desc: "request URI, e.g. /something; a leading / is added if missing"},
		{Name: "http_method", Default: "POST", Enum: []string{"POST", "PUT"}, Desc: "request method: POST or PUT"},
		{Name: "header", Multi: true, Desc: "a header to add, as 'Name value'; may repeat"},
		{Name: "header_tag", Desc: "header that carries the tag of the records"},
		{Name: "http_user", Desc: "basic authentication user"},
		{Name: "http_passwd", Desc: "basic authentication password (requires http_user)"},
		{Name: "compress", Enum: []string{"gzip", "snappy", "zstd"}, Desc: "payload compression; Floe supports gzip"},
		{Name: "allow_duplicated_headers", Type: plugin.Bool, Default: "true",
			Desc: "keep repeated headers; when off the last value of a header wins"},
		{Name: "log_response_payload", Type: plugin.Bool, Default: "true", Desc: "log the response body"},
		{Name: "proxy", Desc: "not supported: use the HTTP_PROXY/HTTPS_PROXY/NO_PROXY environment variables"},
		{Name: "http.response_timeout", Type: plugin.Seconds, Default: "60s",
			Desc: "maximum time for the request and its response"},
		{Name: "http.read_idle_timeout", Type: plugin.Seconds, Default: "0s",
			Desc: "maximum time between two reads of the response; 0 uses net.io_timeout"},
		{Name: "gelf_timestamp_key", Default: "timestamp", Desc: "format gelf: record key of the timestamp"},
		{Name: "gelf_host_key", Default: "host", Desc: "format gelf: record key of the host"},
		{Name: "gelf_short_message_key", Default: "short_message", Desc: "format gelf: record key of the short message (required)"},
		{Name: "gelf_full_message_key", Default: "full_message", Desc: "format gelf: record key of the full message"},
		{Name: "gelf_level_key", Default: "level", Desc: "format gelf: record key of the level"},
		// out_http runs two workers unless told otherwise.
		{Name: "workers", Type: plugin.Int, Default: "2"},
	}
	for _, k := range format.JSONKeys() {
		if k.Name == "format" {
			k.Default = "json"
			k.Enum = append(append([]string(nil), format.FormatValues...), "gelf")
			k.Desc = "payload format: json (default), json_lines, json_stream, msgpack or gelf"
		}
		ks = append(ks, k)
	}
	return ks
}

// header is one request header in the order it is added.
type header struct{ name, value string }

// Output sends chunks to an HTTP server. It is safe for concurrent flushes.
type Output struct {
	log        *slog.Logger
	client     *http.Client
	transport  *http.Transport
	addr       string // host:port, for messages
	url        *url.URL
	method     string
	json       *format.JSON // nil for msgpack and gelf
	gelf       *gelf.Keys   // format gelf
	jsonOpts   event.JSONOptions
	ctype      string
	gzip       bool
	headerTag  string
	user, pass string
	auth       bool
	headers    []header
	allowDup   bool
	logBody    bool
	timeout    time.Duration // http.response_timeout
	idle       time.Duration // http.read_idle_timeout or net.io_timeout

	bufs sync.Pool // *[]byte
}

// New builds an http output from its configuration.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	return newOutput(set, p)
}

func newOutput(set plugin.Settings, p *plugin.Props) (*Output, error) {
	o := &Output{log: set.Logger}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}

	if p.Has("proxy") {
		return nil, p.Errorf("proxy", "the proxy key is not supported by Floe; set the HTTP_PROXY (or HTTPS_PROXY) and NO_PROXY environment variables instead, which the http output honours")
	}

	host := strings.TrimSpace(p.String("host"))
	if host == "" {
		return nil, p.Errorf("host", "host is empty")
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	port := p.Int("port")
	if port < 1 || port > 65535 {
		return nil, p.Errorf("port", "port %d is out of range (1-65535)", port)
	}
	o.addr = net.JoinHostPort(host, strconv.Itoa(port))

	uri := strings.TrimSpace(p.String("uri"))
	if uri == "" {
		uri = "/"
	} else if uri[0] != '/' {
		uri = "/" + uri
	}
	if i := strings.IndexFunc(uri, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return nil, p.Errorf("uri", "uri %q contains a space or control character", uri)
	}

	tlsOn := p.Bool("tls")
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	u, err := url.Parse(scheme + "://" + o.addr + uri)
	if err != nil {
		return nil, p.Errorf("uri", "invalid uri %q: %v", uri, err)
	}
	o.url = u

	o.method = strings.ToUpper(p.String("http_method"))
	if o.method != http.MethodPost && o.method != http.MethodPut {
		return nil, p.Errorf("http_method", "invalid http_method %q: POST or PUT", p.String("http_method"))
	}

	switch f := strings.ToLower(p.String("format")); f {
	case "gelf":
		o.gelf = &gelf.Keys{ShortMessage: p.String("gelf_short_message_key"), FullMessage: p.String("gelf_full_message_key"),
			Host: p.String("gelf_host_key"), Level: p.String("gelf_level_key"), Timestamp: p.String("gelf_timestamp_key")}
		o.jsonOpts = set.Service.JSON
		o.ctype = mimeJSON
	case "msgpack":
		o.ctype = mimeMsgpack
	default:
		jf, ok := format.ParseJSONFormat(f)
		if !ok {
			return nil, p.Errorf("format", "unknown format %q (json, json_lines, json_stream, msgpack)", p.String("format"))
		}
		j, err := format.NewJSON(jf, p.String("json_date_key"), p.String("json_date_format"), set.Service.JSON)
		if err != nil {
			return nil, p.Errorf("json_date_format", "%v", err)
		}
		o.json = j
		o.ctype = mimeJSON
		if jf == format.JSONLines {
			o.ctype = mimeNDJSON
		}
	}

	switch c := strings.ToLower(strings.TrimSpace(p.String("compress"))); c {
	case "":
	case "gzip":
		o.gzip = true
	case "snappy", "zstd":
		return nil, p.Errorf("compress", "compress %s is not supported by Floe's http output (use gzip)", c)
	default:
		return nil, p.Errorf("compress", "invalid compress %q (gzip)", p.String("compress"))
	}

	if p.Has("header_tag") {
		o.headerTag = strings.TrimSpace(p.String("header_tag"))
		if !validHeaderName(o.headerTag) {
			return nil, p.Errorf("header_tag", "%q is not a valid header name", p.String("header_tag"))
		}
	}
	if user := p.String("http_user"); user != "" {
		o.auth, o.user, o.pass = true, user, p.String("http_passwd")
	}
	for _, v := range p.All("header") {
		name, value, ok := splitHeader(v)
		if !ok {
			return nil, p.Errorf("header", "header %q needs a name and a value, e.g. 'X-Key value'", v)
		}
		if !validHeaderName(name) {
			return nil, p.Errorf("header", "%q is not a valid header name", name)
		}
		if !validHeaderValue(value) {
			return nil, p.Errorf("header", "the value of header %s contains a control character", name)
		}
		o.headers = append(o.headers, header{name, value})
	}
	o.allowDup = p.Bool("allow_duplicated_headers")
	o.logBody = p.Bool("log_response_payload")

	o.timeout = seconds(p.Seconds("http.response_timeout"))
	o.idle = seconds(p.Seconds("http.read_idle_timeout"))

	nc, err := parseNet(p)
	if err != nil {
		return nil, err
	}
	if o.idle == 0 {
		o.idle = nc.ioTimeout
	}
	if k := unknownKey(p, "tls.", tlsKeys); k != "" {
		return nil, p.Errorf(k, "unknown TLS key %q", k)
	}
	var tc *tls.Config
	if tlsOn {
		if tc, err = parseTLS(p, host, o.log); err != nil {
			return nil, err
		}
	}
	o.transport = newTransport(nc, tc, o.idle)
	o.client = &http.Client{
		Transport: o.transport,
		// Upstream does not follow redirects: a 3xx is a RETRY.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return o, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// splitHeader splits a header value as FLB_CONFIG_MAP_SLIST_1 does: the name
// up to the first space, the value after it, both trimmed.
func splitHeader(v string) (name, value string, ok bool) {
	v = strings.TrimSpace(v)
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		return "", "", false
	}
	name, value = v[:i], strings.TrimSpace(v[i+1:])
	return name, value, name != "" && value != ""
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a header value: no
// control characters other than horizontal tab (what net/http accepts).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Close releases the idle connections.
func (o *Output) Close(context.Context) error {
	o.transport.CloseIdleConnections()
	return nil
}

func (o *Output) getBuf() *[]byte {
	if v, ok := o.bufs.Get().(*[]byte); ok {
		*v = (*v)[:0]
		return v
	}
	return new([]byte)
}

func (o *Output) putBuf(b *[]byte) {
	if cap(*b) <= 8<<20 {
		o.bufs.Put(b)
	}
}

// Flush renders the chunk and sends it in one request.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("http: %s chunks are not supported", c.Signal()))
	}
	body := c.Data
	if o.json != nil {
		b := o.getBuf()
		defer o.putBuf(b)
		var err error
		*b, err = o.json.AppendChunk(*b, c.Data)
		if err != nil {
			// Upstream: "failed to convert json", FLB_ERROR.
			return plugin.Permanent(fmt.Errorf("http: failed to convert the chunk to JSON: %w", err))
		}
		body = *b
	}
	if o.gelf != nil {
		b := o.getBuf()
		defer o.putBuf(b)
		i := 0
		err := format.EachRecord(c.Data, func(r *format.Record) error {
			var err error
			if *b, err = gelf.AppendRecord(*b, r.Time, r.Body, *o.gelf, o.jsonOpts); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			*b = append(*b, '\n')
			i++
			return nil
		})
		if err != nil {
			// Upstream: "error encoding to GELF", FLB_ERROR.
			return plugin.Permanent(fmt.Errorf("http: failed to convert the chunk to GELF: %w", err))
		}
		body = *b
	}
	if o.gzip {
		z := o.getBuf()
		defer o.putBuf(z)
		w := bytes.NewBuffer(*z)
		gw := gzipWriters.Get().(*gzip.Writer)
		gw.Reset(w)
		_, err := gw.Write(body)
		if cerr := gw.Close(); err == nil {
			err = cerr
		}
		gzipWriters.Put(gw)
		*z = w.Bytes()
		if err != nil {
			// Upstream sends the payload uncompressed when gzip fails.
			o.log.Warn("could not compress payload, sending as it is", "error", err)
		} else {
			return o.send(ctx, c.Tag, *z, true)
		}
	}
	return o.send(ctx, c.Tag, body, false)
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

var errResponseTimeout = errors.New("no complete response within http.response_timeout")

// send makes one request and maps its outcome to OK, RETRY or ERROR.
func (o *Output) send(parent context.Context, tag string, body []byte, gzipped bool) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if o.timeout > 0 {
		t := time.AfterFunc(o.timeout, func() { cancel(errResponseTimeout) })
		defer t.Stop()
	}
	var ex *exchange
	if o.idle > 0 {
		ex = &exchange{}
		ctx = httptrace.WithClientTrace(ctx, ex.trace())
		defer ex.done()
	}

	u := *o.url
	req, err := http.NewRequestWithContext(ctx, o.method, "", bytes.NewReader(body))
	if err != nil {
		return plugin.Permanent(fmt.Errorf("http: %w", err))
	}
	req.URL, req.Host = &u, u.Host
	o.setHeaders(req, tag, gzipped)

	resp, err := o.client.Do(req)
	if err != nil {
		return o.transportError(parent, ctx, err)
	}
	logged, rerr := readBody(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		// flb_http_do fails when the response cannot be read whole.
		return o.transportError(parent, ctx, fmt.Errorf("reading the response (HTTP status=%d): %w", resp.StatusCode, rerr))
	}
	st := resp.StatusCode

	// 200 OK, 201 Created, 202 Accepted, 203 Non-Authoritative, 204 No
	// Content, 205 Reset Content: nothing else is success upstream.
	if st >= 200 && st <= 205 {
		if o.logBody && len(logged) > 0 {
			o.log.Info(fmt.Sprintf("%s, HTTP status=%d\n%s", o.addr, st, logged))
		} else {
			o.log.Info(fmt.Sprintf("%s, HTTP status=%d", o.addr, st))
		}
		return nil
	}
	if o.logBody && len(logged) > 0 {
		o.log.Error(fmt.Sprintf("%s, HTTP status=%d\n%s", o.addr, st, logged))
	} else {
		o.log.Error(fmt.Sprintf("%s, HTTP status=%d", o.addr, st))
	}
	err = &StatusError{Addr: o.addr, Status: st, Body: reason(logged)}
	if st >= 400 && st < 500 && st != http.StatusRequestTimeout && st != http.StatusTooManyRequests {
		o.log.Warn(fmt.Sprintf("could not flush records to %s, chunk will not be retried", o.addr))
		return plugin.Permanent(err)
	}
	if st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return plugin.Throttle(err, d)
		}
	}
	return err
}

// transportError maps a failed request to RETRY, naming a response timeout.
func (o *Output) transportError(parent, ctx context.Context, err error) error {
	if perr := parent.Err(); perr != nil {
		// Shutting down or the flush was abandoned: the chunk is redelivered.
		return fmt.Errorf("http: request to %s abandoned: %w", o.addr, perr)
	}
	if errors.Is(context.Cause(ctx), errResponseTimeout) {
		err = fmt.Errorf("%w (%s)", errResponseTimeout, o.timeout)
	}
	o.log.Error(fmt.Sprintf("could not flush records to %s", o.addr), "error", err)
	return fmt.Errorf("http: could not flush records to %s: %w", o.addr, err)
}

// setHeaders adds the request headers in upstream's order.
func (o *Output) setHeaders(req *http.Request, tag string, gzipped bool) {
	h := req.Header
	o.add(req, "Content-Type", o.ctype)
	if o.headerTag != "" {
		switch {
		case tag == "":
			// flb_http_add_header refuses an empty value.
		case !validHeaderValue(tag):
			o.log.Warn("tag contains control characters; header_tag header skipped", "tag", tag, "header_tag", o.headerTag)
		default:
			o.add(req, o.headerTag, tag)
		}
	}
	if gzipped {
		o.add(req, "Content-Encoding", "gzip")
	}
	if o.auth {
		req.SetBasicAuth(o.user, o.pass)
	}
	h.Set("User-Agent", userAgent)
	for _, hd := range o.headers {
		o.add(req, hd.name, hd.value)
	}
}

// add adds one header: a second value when duplicates are allowed, else a
// replacement. Host and User-Agent have a single value in net/http, so a
// later one replaces the earlier.
func (o *Output) add(req *http.Request, name, value string) {
	switch http.CanonicalHeaderKey(name) {
	case "Host":
		req.Host = value
	case "User-Agent":
		req.Header.Set(name, value)
	default:
		if o.allowDup {
			req.Header.Add(name, value)
		} else {
			req.Header.Set(name, value)
		}
	}
}

// readBody reads the start of a response for the log and drains a bounded
// amount more so the connection can be reused.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxLoggedBody))
	if err == nil && len(b) == maxLoggedBody {
		_, err = io.Copy(io.Discard, io.LimitReader(r, maxDrainedBody))
	}
	return b, err
}

func reason(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxReasonLength {
		s = s[:maxReasonLength] + "..."
	}
	return s
}

// StatusError is a response with a status other than 200-205.
type StatusError struct {
	Addr   string
	Status int
	Body   string // start of the response body
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("http: %s, HTTP status=%d", e.Addr, e.Status)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date. A
// missing, malformed or non-positive delay yields false; it is capped at
// maxRetryAfter.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > int64(maxRetryAfter/time.Second) {
			n = int64(maxRetryAfter / time.Second)
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// ---- configuration helpers shared with tls.go ----

// boolKey parses a boolean key that the spec accepts as a free string (tls.*, net.*).
func boolKey(p *plugin.Props, key string, def bool) (bool, error) {
	if !p.Has(key) {
		return def, nil
	}
	v, err := config.ParseBool(p.String(key))
	if err != nil {
		return false, p.Errorf(key, "%q is not a boolean (on/off, true/false, yes/no)", p.String(key))
	}
	return v, nil
}

// secondsKey parses a time key that the spec accepts as a free string.
func secondsKey(p *plugin.Props, key string, def time.Duration) (time.Duration, error) {
	if !p.Has(key) {
		return def, nil
	}
	v, err := config.ParseSeconds(p.String(key))
	if err != nil || v < 0 {
		return 0, p.Errorf(key, "%q is not a time (e.g. 5, 10s, 1m)", p.String(key))
	}
	return seconds(v), nil
}

// intKey parses an integer key that the spec accepts as a free string.
func intKey(p *plugin.Props, key string, def int) (int, error) {
	if !p.Has(key) {
		return def, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(p.String(key)))
	if err != nil {
		return 0, p.Errorf(key, "%q is not an integer", p.String(key))
	}
	return v, nil
}
