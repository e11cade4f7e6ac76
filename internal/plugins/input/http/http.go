// Package http is Fluent Bit's http input (plugins/in_http): an HTTP server
// (default 0.0.0.0:9880, optionally TLS) taking records in POST bodies.
//
//   - Content-Type application/json: an object is a record, an array is a
//     list of records; application/x-www-form-urlencoded: one record of the
//     fields (values percent-decoded). Floe also takes
//     application/msgpack (or x-msgpack): maps or arrays of maps, as JSON.
//   - Content-Encoding gzip or deflate bodies are inflated.
//   - The tag is the URL path without its leading slash, characters other
//     than letters, digits, '_' and '.' turned into '_' ("/app.log" → tag
//     app.log; "/" → the input's tag). tag_key takes a record's tag from
//     one of its string fields (a record accessor) instead.
//   - Answers as upstream: successful_response_code (201 by default; 200
//     or 204) with the success_header headers; 400 with the reason for a
//     missing or unknown Content-Type, an empty or undecodable body, or a
//     method other than POST; 413 when the body (or its inflated form) is
//     larger than buffer_max_size (http_server.buffer_max_size, 4M).
//   - add_remote_addr adds the first X-Forwarded-For address under
//     remote_addr_key (REMOTE_ADDR). enable_health_endpoint serves GET /health.
//
// A request is answered only once JetStream holds its records (so a client
// that got its 201 never loses them); a body is decoded whole before
// anything is written, so a 400 stores nothing. While the pipeline is paused
// (FLOE_IN full) or the input's mem_buf_limit is reached (ingest tells it
// through plugin.Pauser) the input answers 503 with Retry-After at once; a
// write held back anyway (it raced the pause) is answered 503 after the
// block timeout. It resumes by itself.
package http

import (
	"compress/gzip"
	"compress/zlib"
	"context"
	gotls "crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
	"github.com/floe-io/floe/internal/plugins/input/internal/jsonscan"
	"github.com/floe-io/floe/internal/plugins/input/internal/netin"
	"github.com/floe-io/floe/internal/telemetry"
)

// Spec describes the http input plugin.
func Spec() *plugin.Spec {
	keys := append(netin.ListenKeys(9880),
		plugin.Key{Name: "tag_key", Desc: "record accessor of a string field that sets the record's tag"},
		plugin.Key{Name: "success_header", Multi: true, Desc: "NAME VALUE header added to successful answers"},
		plugin.Key{Name: "successful_response_code", Type: plugin.Int, Default: "201", Enum: []string{"200", "201", "204"}},
		plugin.Key{Name: "add_remote_addr", Type: plugin.Bool, Default: "false", Desc: "add the X-Forwarded-For client address"},
		plugin.Key{Name: "remote_addr_key", Default: "REMOTE_ADDR"},
		plugin.Key{Name: "enable_health_endpoint", Type: plugin.Bool, Default: "false", Desc: "serve GET /health"},
	)
	for _, prefix := range []string{"http_server.", ""} {
		keys = append(keys,
			plugin.Key{Name: prefix + "buffer_max_size", Type: plugin.Size, Default: "4M", Desc: "largest request body (413 beyond)"},
			plugin.Key{Name: prefix + "buffer_chunk_size", Type: plugin.Size, Default: "512K", Desc: "accepted"},
			plugin.Key{Name: prefix + "max_connections", Type: plugin.Int, Default: "0", Desc: "connections beyond this are closed at once (0: no limit)"},
			plugin.Key{Name: prefix + "workers", Type: plugin.Int, Default: "1", Desc: "accepted; every connection has its own goroutine"},
			plugin.Key{Name: prefix + "http2", Type: plugin.Bool, Default: "true", Desc: "HTTP/2 (with TLS; cleartext serves HTTP/1.1)"},
		)
	}
	keys = append(keys,
		plugin.Key{Name: "http_server.idle_timeout", Type: plugin.Seconds, Default: "10", Desc: "idle keep-alive connections are closed after this"},
		plugin.Key{Name: "http_server.ingress_queue_event_limit", Type: plugin.Size, Desc: "accepted"},
		plugin.Key{Name: "http_server.ingress_queue_byte_limit", Type: plugin.Size, Desc: "accepted"},
	)
	keys = append(keys, netin.TLSKeys()...)
	return &plugin.Spec{
		Kind:     plugin.KindInput,
		Name:     "http",
		Desc:     "HTTP",
		Keys:     keys,
		NewInput: New,
	}
}

// BlockTimeout is how long a request waits for a write the pipeline holds
// back before it is answered 503: a request already past the paused check
// when the input was paused.
const BlockTimeout = 2 * time.Second

// HTTP is a configured http input.
type HTTP struct {
	netin.PauseFlag
	addr      string
	log       *slog.Logger
	m         *telemetry.NetInputMetrics
	tls       *tls
	maxBody   int64
	maxConns  int
	idle      time.Duration
	http2     bool
	code      int
	headers   [][2]string
	tagKey    *recordaccessor.Accessor
	remoteKey string // "" unless add_remote_addr
	health    bool
	bound     netin.Bound
	block     time.Duration
	now       func() event.Time
}

type tls = netin.TLSConfig

// New builds an http input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	h := &HTTP{log: netin.Logger(set), m: netin.Metrics(set), block: BlockTimeout, now: event.Now,
		code: p.Int("successful_response_code"), health: p.Bool("enable_health_endpoint"),
		idle: time.Duration(p.Seconds("http_server.idle_timeout") * float64(time.Second))}
	var err error
	if h.addr, err = netin.Addr(p); err != nil {
		return nil, err
	}
	pick := func(key string) string {
		if p.Has("http_server." + key) {
			return "http_server." + key
		}
		return key
	}
	h.maxBody = p.Size(pick("buffer_max_size"))
	if h.maxBody <= 0 {
		return nil, p.Errorf(pick("buffer_max_size"), "buffer_max_size must be positive")
	}
	h.maxConns = p.Int(pick("max_connections"))
	h.http2 = p.Bool(pick("http2"))
	for _, v := range p.All("success_header") {
		name, value, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || name == "" {
			return nil, p.Errorf("success_header", "success_header %q is not NAME VALUE", v)
		}
		h.headers = append(h.headers, [2]string{name, strings.TrimSpace(value)})
	}
	if k := p.String("tag_key"); k != "" {
		if h.tagKey, err = recordaccessor.Parse(k); err != nil {
			return nil, p.Errorf("tag_key", "invalid record accessor pattern for tag_key: %v", err)
		}
	}
	if p.Bool("add_remote_addr") {
		h.remoteKey = p.String("remote_addr_key")
	}
	if h.tls, err = netin.TLS(p); err != nil {
		return nil, err
	}
	return h, nil
}

// Addr waits until the input listens and returns its address.
func (h *HTTP) Addr(ctx context.Context) (string, error) {
	a, err := h.bound.Wait(ctx)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// Run serves until ctx ends, then lets requests in flight finish.
func (h *HTTP) Run(ctx context.Context, w plugin.Writer) error {
	ln, err := netin.ListenStream("tcp", h.addr, 0)
	h.bound.Set(netin.AddrOf(ln), err)
	if err != nil {
		return err
	}
	if h.maxConns > 0 {
		ln = &limitListener{Listener: ln, max: int64(h.maxConns), m: h.m, log: h.log}
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { h.serve(rw, r, w) }),
		IdleTimeout:       h.idle,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          netin.ErrorLog(h.log, h.m),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				h.m.Connections.Add(1)
				h.m.ConnectionsTotal.Add(1)
			case http.StateClosed, http.StateHijacked:
				h.m.Connections.Add(-1)
			}
		},
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	if !h.http2 {
		srv.TLSNextProto = map[string]func(*http.Server, *gotls.Conn, http.Handler){}
	}
	h.log.Info("listening", "address", ln.Addr().String(), "tls", h.tls != nil)
	errc := make(chan error, 1)
	go func() {
		if h.tls != nil {
			srv.TLSConfig = h.tls.Config().Clone()
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// limitListener closes connections beyond max at once (max_connections).
type limitListener struct {
	net.Listener
	max    int64
	active atomic.Int64
	m      *telemetry.NetInputMetrics
	log    *slog.Logger
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.max {
			l.active.Add(-1)
			l.m.Refused.Add(1)
			l.log.Warn("max_connections reached, connection closed", "remote", c.RemoteAddr().String(), "max", l.max)
			c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *limitListener
	done atomic.Bool
}

func (c *countedConn) Close() error {
	if c.done.CompareAndSwap(false, true) {
		c.l.active.Add(-1)
	}
	return c.Conn.Close()
}

// fail answers an error status with a message body, as upstream does.
func (h *HTTP) fail(rw http.ResponseWriter, code int, msg string) {
	switch code {
	case http.StatusServiceUnavailable, http.StatusRequestEntityTooLarge:
		h.m.Refused.Add(1)
	case http.StatusBadRequest:
		h.m.Errors.Add(1)
	}
	if code == http.StatusServiceUnavailable {
		rw.Header().Set("Retry-After", "1")
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.WriteHeader(code)
	io.WriteString(rw, msg)
}

func (h *HTTP) serve(rw http.ResponseWriter, r *http.Request, w plugin.Writer) {
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		h.fail(rw, http.StatusBadRequest, "error: invalid request\n")
		return
	}
	if h.health && r.Method == http.MethodGet && path == "/health" {
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, "{\n  \"status\": \"ok\",\n  \"timestamp\": %q\n}\n", time.Now().UTC().Format(time.RFC3339Nano))
		return
	}
	if r.Method != http.MethodPost {
		h.fail(rw, http.StatusBadRequest, "error: invalid HTTP method\n")
		return
	}
	if h.IsPaused() {
		h.fail(rw, http.StatusServiceUnavailable, "error: deferred ingress queue is full\n")
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		h.fail(rw, http.StatusBadRequest, "error: header 'Content-Type' is not set\n")
		return
	}
	media, _, _ := mime.ParseMediaType(ct)
	switch media {
	case "application/json", "application/x-www-form-urlencoded", "application/msgpack", "application/x-msgpack":
	default:
		h.fail(rw, http.StatusBadRequest, "error: invalid 'Content-Type'\n")
		return
	}
	body, code, err := h.readBody(rw, r)
	if err != nil {
		h.log.Warn("request refused", "remote", r.RemoteAddr, "status", code, "error", err)
		h.fail(rw, code, "error: "+err.Error()+"\n")
		return
	}
	if len(body) == 0 {
		h.fail(rw, http.StatusBadRequest, "error: no payload found\n")
		return
	}
	tag := ""
	if len(path) > 1 {
		tag = sanitize(path[1:])
	}
	batches, err := h.decode(media, body, tag, r)
	if err != nil {
		h.log.Warn("undecodable request body", "remote", r.RemoteAddr, "content_type", media, "error", err)
		h.fail(rw, http.StatusBadRequest, "error: unable to process records: "+err.Error()+"\n")
		return
	}
	if code, err := h.write(r.Context(), w, batches); err != nil {
		h.log.Warn("records not accepted", "remote", r.RemoteAddr, "status", code, "error", err)
		msg := "error: " + err.Error() + "\n"
		if code == http.StatusServiceUnavailable {
			msg = "error: deferred ingress queue is full\n"
		}
		h.fail(rw, code, msg)
		return
	}
	for _, hd := range h.headers {
		rw.Header().Add(hd[0], hd[1])
	}
	rw.WriteHeader(h.code)
}

// readBody reads the body, inflating it, within buffer_max_size.
func (h *HTTP) readBody(rw http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.ContentLength > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("payload of %d bytes exceeds buffer_max_size %d", r.ContentLength, h.maxBody)
	}
	var src io.Reader = http.MaxBytesReader(rw, r.Body, h.maxBody)
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, statusOf(err), fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	case "deflate":
		zr, err := zlib.NewReader(src)
		if err != nil {
			return nil, statusOf(err), fmt.Errorf("deflate body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, http.StatusBadRequest, fmt.Errorf("unsupported Content-Encoding %q (gzip and deflate are)", enc)
	}
	// The inflated body is bounded too, against compression bombs.
	b, err := io.ReadAll(io.LimitReader(src, h.maxBody+1))
	if err != nil {
		return nil, statusOf(err), fmt.Errorf("reading body: %w", err)
	}
	if int64(len(b)) > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("inflated payload exceeds buffer_max_size %d", h.maxBody)
	}
	return b, 0, nil
}

func statusOf(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// sanitize keeps letters, digits, '_' and '.' (http_prot.c).
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// batch is the run of consecutive records of one tag.
type batch struct {
	tag string
	b   netin.Batch
}

// decode turns a whole body into batches of records, or fails without
// having written anything.
func (h *HTTP) decode(media string, body []byte, tag string, r *http.Request) ([]*batch, error) {
	var values []byte // MessagePack values, concatenated
	switch media {
	case "application/json":
		var err error
		if values, err = jsonValues(body); err != nil {
			return nil, err
		}
	case "application/x-www-form-urlencoded":
		values = urlencoded(body, h.log)
	default:
		values = body
	}
	remote := ""
	if h.remoteKey != "" {
		remote = forwardedFor(r)
	}
	now := h.now()
	var out []*batch
	var scratch []byte
	add := func(rec []byte) {
		t := tag
		if h.tagKey != nil {
			if v, ok := h.tagKey.Get(rec); ok {
				if s, ok := recordaccessor.Str(v); ok {
					t = sanitize(string(s))
				}
			}
		}
		if remote != "" && !hasKey(rec, h.remoteKey) {
			scratch = netin.AppendField(scratch[:0], rec, h.remoteKey, remote)
			rec = scratch
		}
		if len(out) == 0 || out[len(out)-1].tag != t {
			out = append(out, &batch{tag: t})
		}
		out[len(out)-1].b.Add(now, rec, "", "")
	}
	for off, n := 0, 0; off < len(values); n++ {
		end, err := event.Skip(values, off)
		if err != nil {
			return nil, fmt.Errorf("value %d: %w", n+1, err)
		}
		v := values[off:end]
		switch {
		case netin.IsMap(v):
			add(v)
		case isArray(v):
			elems, err := arrayElems(v)
			if err != nil {
				return nil, fmt.Errorf("value %d: %w", n+1, err)
			}
			for i, e := range elems {
				if !netin.IsMap(e) {
					return nil, fmt.Errorf("element %d of array %d is not an object", i+1, n+1)
				}
				add(e)
			}
		default:
			return nil, fmt.Errorf("value %d is neither an object nor an array", n+1)
		}
		off = end
	}
	if len(out) == 0 {
		return nil, errors.New("no records found")
	}
	return out, nil
}

// jsonValues converts every JSON value of body, concatenated.
func jsonValues(body []byte) ([]byte, error) {
	var out []byte
	off := 0
	for {
		off = jsonscan.SkipWS(body, off)
		if off >= len(body) {
			return out, nil
		}
		end, err := jsonscan.Value(body, off, true)
		if errors.Is(err, jsonscan.ErrIncomplete) {
			return nil, fmt.Errorf("JSON data is incomplete (value at byte offset %d)", off)
		}
		if err != nil {
			return nil, err
		}
		if out, err = event.AppendFromJSON(out, body[off:end]); err != nil {
			var je *event.JSONError
			if errors.As(err, &je) {
				return nil, fmt.Errorf("invalid JSON at byte offset %d: %s", off+je.Offset, je.Msg)
			}
			return nil, err
		}
		off = end
	}
}

// urlencoded makes one record of key=value pairs (parse_payload_urlencoded).
func urlencoded(body []byte, log *slog.Logger) []byte {
	var pairs [][2]string
	for _, kv := range strings.Split(string(body), "&") {
		kv = strings.TrimPrefix(kv, "\n")
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if d, err := url.QueryUnescape(v); err == nil {
			v = d
		} else {
			log.Warn("invalid percent-encoding, keeping raw value", "field", k)
		}
		pairs = append(pairs, [2]string{k, v})
	}
	if len(pairs) == 0 {
		return nil
	}
	b := event.AppendMapHeader(nil, len(pairs))
	for _, p := range pairs {
		b = event.AppendString(b, p[0])
		b = event.AppendString(b, p[1])
	}
	return b
}

// forwardedFor is the client of X-Forwarded-For (its first address).
func forwardedFor(r *http.Request) string {
	v := r.Header.Get("X-Forwarded-For")
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

func hasKey(rec []byte, key string) bool {
	a := recordaccessor.Accessor{Key: key, Found: true}
	_, ok := a.Get(rec)
	return ok
}

// write stores the batches and waits until JetStream holds them.
func (h *HTTP) write(ctx context.Context, w plugin.Writer, batches []*batch) (int, error) {
	var rs []plugin.Receipt
	for i, b := range batches {
		if i > 0 && h.IsPaused() {
			// Admitted before the pause, which this request's own
			// first batches may have caused (mem_buf_limit): refusing
			// it half-written would make the client resend what is
			// stored. Seal what it wrote, so the limit frees as soon
			// as that is stored, and write the rest.
			plugin.FlushWriter(w)
		}
		wctx, cancel := context.WithTimeout(ctx, h.block)
		r, err := w.Write(wctx, b.tag, b.b.Data, b.b.Records)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return http.StatusServiceUnavailable, err
			}
			return http.StatusInternalServerError, err
		}
		rs = append(rs, r)
	}
	plugin.FlushWriter(w)
	for _, r := range rs {
		select {
		case <-r.Done():
			if err := r.Err(); err != nil {
				return http.StatusInternalServerError, fmt.Errorf("records not stored: %w", err)
			}
		case <-ctx.Done():
			return http.StatusServiceUnavailable, ctx.Err()
		}
	}
	return 0, nil
}

var _ plugin.Pauser = (*HTTP)(nil)

func isArray(b []byte) bool {
	return len(b) > 0 && (b[0]&0xf0 == 0x90 || b[0] == 0xdc || b[0] == 0xdd)
}

// arrayElems splits an encoded array into its encoded elements.
func arrayElems(b []byte) ([][]byte, error) {
	var n, off int
	switch c := b[0]; {
	case c&0xf0 == 0x90:
		n, off = int(c&0x0f), 1
	case c == 0xdc && len(b) >= 3:
		n, off = int(b[1])<<8|int(b[2]), 3
	case c == 0xdd && len(b) >= 5:
		n, off = int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4]), 5
	default:
		return nil, errors.New("truncated array header")
	}
	out := make([][]byte, 0, min(n, len(b)))
	for range n {
		end, err := event.Skip(b, off)
		if err != nil {
			return nil, err
		}
		out = append(out, b[off:end])
		off = end
	}
	return out, nil
}
