// Package opentelemetry is Fluent Bit's opentelemetry input: an OTLP
// receiver for logs, metrics and traces.
//
//   - OTLP/HTTP on listen:port (default 0.0.0.0:4318): POST /v1/logs,
//     /v1/metrics and /v1/traces with Content-Type application/x-protobuf or
//     application/json (anything else: 415), Content-Encoding gzip, deflate
//     or zstd. The same port also answers OTLP/gRPC over cleartext HTTP/2, as
//     Fluent Bit's single port does.
//   - OTLP/gRPC on listen:grpc_port (default 4317, grpc off to disable): the
//     LogsService, MetricsService and TraceService Export methods, gzip
//     compression accepted.
//
// Logs become events by internal/otlplog (a group per scope holding the
// resource and scope, the OTLP fields under the logs_metadata_key metadata
// map); metrics and traces stay OTLP: each request becomes one metrics or
// traces chunk holding its ExportMetricsServiceRequest or
// ExportTraceServiceRequest protobuf (cut by resource, scope and item when it
// is larger than maxSignal), which the Vivo exporter and OTLP outputs read.
//
// Acknowledgement: a request is answered (successful_response_code, default
// 201 as Fluent Bit, with an empty Export*ServiceResponse in the request's
// encoding; gRPC OK) only after JetStream stored every chunk holding its
// data. Answers that are not success:
//
//   - 400 / InvalidArgument: the body does not decode (the reason is in the
//     google.rpc.Status body, in the request's encoding);
//   - 413 / ResourceExhausted: the body exceeds buffer_max_size (compressed),
//     or four times that once decompressed;
//   - 503 with Retry-After / Unavailable: the pipeline is paused
//     (backpressure: FLOE_IN full, or this input's mem_buf_limit reached,
//     which ingest tells the input at once) or could not store the data;
//     the client retries.
//
// Tags: with tag_from_uri (the default) the tag is the request path without
// its leading slash, other characters than letters, digits, '_' and '.'
// replaced by '_' ("v1_logs", and for gRPC
// "opentelemetry.proto.collector.logs.v1.LogsService_Export"); with
// tag_from_uri off, the tag key (or the instance name).
package opentelemetry

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // gzip-compressed gRPC requests
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/otlplog"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/netin"
	"github.com/floe-io/floe/internal/telemetry"
)

// Name is the plugin name.
const Name = "opentelemetry"

const (
	// maxLogBatch bounds one Write of log events: a scope group larger than
	// this is cut into several groups with the same header, so a group
	// never straddles two chunks.
	maxLogBatch = 256 << 10
	// retryAfter is what a paused input asks its clients to wait, in seconds.
	retryAfter = "1"
)

// maxSignal bounds one metrics or traces chunk, well under the 8 MiB
// message limit of the embedded server (a variable for tests).
var maxSignal = 4 << 20

// shutdownGrace bounds how long a stopping input waits for the requests in
// flight (a variable for tests).
var shutdownGrace = 10 * time.Second

// Spec describes the opentelemetry input.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: Name,
		Desc: "OTLP receiver: logs, metrics and traces over HTTP (protobuf, JSON) and gRPC",
		Keys: append([]plugin.Key{
			{Name: "listen", Default: "0.0.0.0", Desc: "address to listen on"},
			{Name: "host", Desc: "alias of listen"},
			{Name: "port", Type: plugin.Int, Default: "4318", Desc: "OTLP/HTTP port (also serves gRPC over HTTP/2)"},
			{Name: "grpc", Type: plugin.Bool, Default: "on", Desc: "serve OTLP/gRPC on grpc_port too"},
			{Name: "grpc_port", Type: plugin.Int, Default: "4317", Desc: "OTLP/gRPC port"},
			{Name: "http2", Type: plugin.Bool, Default: "on", Desc: "accept cleartext HTTP/2 (and so gRPC) on port"},
			{Name: "tag_from_uri", Type: plugin.Bool, Default: "true", Desc: "tag from the request path (v1_logs); off: the tag key"},
			{Name: "tag_key", Desc: "accepted; no effect: Fluent Bit's OTLP logs path does not apply it either"},
			{Name: "successful_response_code", Type: plugin.Int, Default: "201", Enum: []string{"200", "201", "204"}, Desc: "HTTP status of a success"},
			{Name: "buffer_max_size", Type: plugin.Size, Default: "4M", Desc: "largest request body; larger: 413"},
			{Name: "buffer_chunk_size", Type: plugin.Size, Default: "512K", Desc: "accepted; Floe reads bodies whole"},
			{Name: "logs_metadata_key", Default: otlplog.DefaultMetadataKey, Desc: "metadata key of the OTLP log fields"},
			{Name: "logs_body_key", Desc: "record key of every log body; unset: a kvlist body is the record, others go under log"},
		}, netin.TLSKeys()...),
		NewInput: New,
	}
}

// SignalWriter is the Writer method ingest offers for metrics and traces
// payloads (one chunk each).
type SignalWriter interface {
	WriteSignal(ctx context.Context, signal, tag string, data []byte, records int) (plugin.Receipt, error)
}

// Input is a configured opentelemetry input.
type Input struct {
	log         *slog.Logger
	listen      string
	port        int
	grpcPort    int // -1: no separate gRPC listener
	http2       bool
	tagFromURI  bool
	successCode int
	maxBody     int64
	opt         otlplog.Options
	metrics     *telemetry.NetInputMetrics // nil in tests without a registry
	tls         *netin.TLSConfig           // nil: cleartext

	paused atomic.Bool
	w      plugin.Writer

	// Requests in flight write with stopCtx too: it ends when the shutdown
	// grace is over, so none writes after Run returned (ingest closes then).
	stopCtx  context.Context
	stop     context.CancelFunc
	stopping bool
	inflight sync.WaitGroup

	mu       sync.Mutex
	httpAddr net.Addr
	grpcAddr net.Addr
	ready    chan struct{}
}

// New builds the input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	in := &Input{
		log:         set.Logger,
		listen:      p.String("listen"),
		port:        p.Int("port"),
		grpcPort:    p.Int("grpc_port"),
		http2:       p.Bool("http2"),
		tagFromURI:  p.Bool("tag_from_uri"),
		successCode: p.Int("successful_response_code"),
		maxBody:     p.Size("buffer_max_size"),
		opt: otlplog.Options{
			MetadataKey: p.String("logs_metadata_key"),
			BodyKey:     p.String("logs_body_key"),
		},
		ready: make(chan struct{}),
	}
	in.stopCtx, in.stop = context.WithCancel(context.Background())
	if p.Has("host") && !p.Has("listen") {
		in.listen = p.String("host")
	}
	if !p.Bool("grpc") {
		in.grpcPort = -1
	}
	if in.log == nil {
		in.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if set.Telemetry != nil {
		in.metrics = set.Telemetry.NetInput(set.DisplayName())
	}
	if in.port < 0 || in.port > 65535 {
		return nil, p.Errorf("port", "port %d out of range", in.port)
	}
	if in.grpcPort > 65535 || (in.grpcPort < 0 && p.Bool("grpc")) {
		return nil, p.Errorf("grpc_port", "grpc_port %d out of range", in.grpcPort)
	}
	if in.maxBody <= 0 {
		return nil, p.Errorf("buffer_max_size", "buffer_max_size must be positive")
	}
	var err error
	if in.tls, err = netin.TLS(p); err != nil {
		return nil, err
	}
	if p.Has("tag_key") {
		// Fluent Bit declares tag_key in the input's config map, but its
		// logs conversion (opentelemetry_logs.c) tags every record of a
		// request with the request's tag; a config written for it keeps
		// working here, with the same tags.
		in.log.Warn("tag_key has no effect on the opentelemetry input (as in Fluent Bit): records keep the request's tag", "tag_key", p.String("tag_key"))
	}
	return in, nil
}

// Pause makes the input refuse requests (503, gRPC UNAVAILABLE) until Resume.
func (in *Input) Pause() { in.paused.Store(true) }

// Resume accepts requests again.
func (in *Input) Resume() { in.paused.Store(false) }

// Ready is closed once the listeners are bound.
func (in *Input) Ready() <-chan struct{} { return in.ready }

// Addrs are the bound HTTP and gRPC addresses (grpc is "" when off); valid
// after Ready.
func (in *Input) Addrs() (httpAddr, grpcAddr string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.httpAddr != nil {
		httpAddr = in.httpAddr.String()
	}
	if in.grpcAddr != nil {
		grpcAddr = in.grpcAddr.String()
	}
	return httpAddr, grpcAddr
}

// Run serves until ctx ends, then stops accepting and lets the requests in
// flight finish (their data is acknowledged or refused, never dropped).
func (in *Input) Run(ctx context.Context, w plugin.Writer) error {
	in.w = w
	gs := in.newGRPCServer()
	hl, err := net.Listen("tcp", net.JoinHostPort(in.listen, strconv.Itoa(in.port)))
	if err != nil {
		return fmt.Errorf("opentelemetry: listen on port %d: %w", in.port, err)
	}
	var gl net.Listener
	if in.grpcPort >= 0 {
		gl, err = net.Listen("tcp", net.JoinHostPort(in.listen, strconv.Itoa(in.grpcPort)))
		if err != nil {
			hl.Close()
			return fmt.Errorf("opentelemetry: listen on grpc_port %d: %w", in.grpcPort, err)
		}
	}
	hl, gl = in.counted(hl), in.counted(gl)
	in.mu.Lock()
	in.httpAddr = hl.Addr()
	if gl != nil {
		in.grpcAddr = gl.Addr()
	}
	in.mu.Unlock()
	close(in.ready)

	hs := &http.Server{
		Handler:           http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { in.serveHTTP(rw, r, gs) }),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(in.log.Handler(), slog.LevelDebug),
	}
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetHTTP1(true)
	switch {
	case in.tls != nil:
		// HTTP/2 over TLS (ALPN h2) carries gRPC on port as well.
		hs.Protocols.SetHTTP2(in.http2)
		hs.TLSConfig = in.tls.Config().Clone()
	case in.http2:
		hs.Protocols.SetUnencryptedHTTP2(true)
	}
	errc := make(chan error, 2)
	go func() {
		if in.tls != nil {
			errc <- hs.ServeTLS(hl, "", "")
			return
		}
		errc <- hs.Serve(hl)
	}()
	if gl != nil {
		go func() { errc <- gs.Serve(gl) }()
	}
	in.log.Info("otlp listening", "http", hl.Addr().String(), "grpc", in.grpcAddrString(), "tls", in.tls != nil)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	// Let requests in flight wait for their receipts, for a while.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	_ = hs.Shutdown(sctx)
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		gs.Stop()
	}
	in.mu.Lock()
	in.stopping = true
	in.mu.Unlock()
	in.stop()
	in.inflight.Wait()
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) && !errors.Is(runErr, grpc.ErrServerStopped) && ctx.Err() == nil {
		return fmt.Errorf("opentelemetry: %w", runErr)
	}
	return nil
}

// countingListener counts accepted connections (floe_input_connections_total).
type countingListener struct {
	net.Listener
	c *telemetry.Counter
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.c.Add(1)
	}
	return conn, err
}

func (in *Input) counted(l net.Listener) net.Listener {
	if l == nil || in.metrics == nil {
		return l
	}
	return countingListener{l, &in.metrics.ConnectionsTotal}
}

func (in *Input) grpcAddrString() string {
	_, g := in.Addrs()
	return g
}

// ---- the part HTTP and gRPC share ----

// enter admits a request unless the input is stopping; the context it
// returns ends with the request or when the shutdown grace is over.
func (in *Input) enter(ctx context.Context) (context.Context, func(), bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopping {
		return nil, nil, false
	}
	in.inflight.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(in.stopCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
		in.inflight.Done()
	}, true
}

// errStopping refuses requests that arrive while the input shuts down.
var errStopping = errors.New("the input is shutting down: retry later")

// errPaused refuses a request while the pipeline is paused.
var errPaused = errors.New("the pipeline is paused (backpressure): retry later")

// requestError is a failure with the class the client sees.
type requestError struct {
	code codes.Code // InvalidArgument, ResourceExhausted, Unavailable, …
	err  error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func invalid(format string, args ...any) error {
	return &requestError{codes.InvalidArgument, fmt.Errorf(format, args...)}
}

func unavailable(err error) error { return &requestError{codes.Unavailable, err} }

func (in *Input) refuse() {
	if in.metrics != nil {
		in.metrics.Refused.Add(1)
	}
}

// uriTag turns a request path into a tag as Fluent Bit does.
func uriTag(path string) string {
	path = strings.TrimPrefix(path, "/")
	b := []byte(path)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (in *Input) tagFor(path string) string {
	if in.tagFromURI {
		return uriTag(path)
	}
	return "" // ingest uses the tag key, else the instance name
}

// ingestLogs writes the events of a logs request and waits for their receipts.
func (in *Input) ingestLogs(ctx context.Context, tag string, req plogotlp.ExportRequest) error {
	ld := req.Logs()
	if ld.LogRecordCount() == 0 {
		return nil
	}
	var rs []plugin.Receipt
	err := otlplog.FromLogs(ld, &in.opt, maxLogBatch, func(data []byte, records int) error {
		in.sealIfPaused(len(rs))
		r, err := in.w.Write(ctx, tag, data, records)
		if err != nil {
			return err
		}
		rs = append(rs, r)
		return nil
	})
	if err != nil {
		return unavailable(fmt.Errorf("logs not written: %w", err))
	}
	return in.wait(ctx, rs)
}

// ingestSignal writes a metrics or traces request as chunks of OTLP protobuf.
func (in *Input) ingestSignal(ctx context.Context, signal, tag string, parts []signalPart) error {
	sw, ok := in.w.(SignalWriter)
	if !ok {
		return unavailable(fmt.Errorf("this pipeline cannot take %s chunks", signal))
	}
	var rs []plugin.Receipt
	for _, p := range parts {
		if p.records == 0 {
			continue
		}
		if len(p.data) > maxSignal {
			return &requestError{codes.ResourceExhausted,
				fmt.Errorf("one %s item of %d bytes exceeds the chunk limit of %d bytes", signal, len(p.data), maxSignal)}
		}
		in.sealIfPaused(len(rs))
		r, err := sw.WriteSignal(ctx, signal, tag, p.data, p.records)
		if err != nil {
			return unavailable(fmt.Errorf("%s not written: %w", signal, err))
		}
		rs = append(rs, r)
	}
	return in.wait(ctx, rs)
}

// sealIfPaused is called before each write of a request after its first
// (written writes so far): a request admitted before a pause, which its
// own first writes may have caused (mem_buf_limit), is written whole
// rather than refused half-stored; sealing what it wrote lets the limit
// free as soon as that is stored instead of at the next flush.
func (in *Input) sealIfPaused(written int) {
	if written > 0 && in.paused.Load() {
		plugin.FlushWriter(in.w)
	}
}

// wait closes the open chunks at once (a client waits for them) and blocks
// until every receipt resolved.
func (in *Input) wait(ctx context.Context, rs []plugin.Receipt) error {
	if len(rs) == 0 {
		return nil
	}
	plugin.FlushWriter(in.w)
	for _, r := range rs {
		select {
		case <-r.Done():
			if err := r.Err(); err != nil {
				return unavailable(fmt.Errorf("not stored: %w", err))
			}
		case <-ctx.Done():
			return unavailable(fmt.Errorf("not acknowledged before the request ended: %w", ctx.Err()))
		}
	}
	return nil
}

// ---- OTLP/HTTP ----

const (
	ctProto = "application/x-protobuf"
	ctJSON  = "application/json"
)

func (in *Input) serveHTTP(rw http.ResponseWriter, r *http.Request, gs *grpc.Server) {
	if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		gs.ServeHTTP(rw, r)
		return
	}
	var signal string
	switch r.URL.Path {
	case "/v1/logs":
		signal = chunk.Logs
	case "/v1/metrics":
		signal = chunk.Metrics
	case "/v1/traces":
		signal = chunk.Traces
	default:
		http.Error(rw, "error: invalid endpoint "+strconv.Quote(r.URL.Path), http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "error: invalid HTTP method", http.StatusMethodNotAllowed)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var isJSON bool
	switch mt {
	case ctProto, "application/protobuf":
	case ctJSON:
		isJSON = true
	default:
		in.refuse()
		http.Error(rw, fmt.Sprintf("error: unsupported Content-Type %q: use %s or %s", mt, ctProto, ctJSON), http.StatusUnsupportedMediaType)
		return
	}
	ctx, leave, ok := in.enter(r.Context())
	if ok {
		defer leave()
	}
	if !ok || in.paused.Load() {
		msg := errPaused.Error()
		if !ok {
			msg = errStopping.Error()
		}
		in.refuse()
		rw.Header().Set("Retry-After", retryAfter)
		in.writeStatus(rw, isJSON, http.StatusServiceUnavailable, codes.Unavailable, msg)
		return
	}
	body, err := in.readBody(rw, r)
	if err != nil {
		in.refuse()
		var re *requestError
		code := http.StatusBadRequest
		if errors.As(err, &re) && re.code == codes.ResourceExhausted {
			code = http.StatusRequestEntityTooLarge
		}
		in.writeStatus(rw, isJSON, code, codeOf(err), err.Error())
		return
	}

	tag := in.tagFor(r.URL.Path)
	var resp interface {
		MarshalProto() ([]byte, error)
		MarshalJSON() ([]byte, error)
	}
	switch signal {
	case chunk.Logs:
		req := plogotlp.NewExportRequest()
		if err = unmarshal(req, body, isJSON); err == nil {
			err = in.ingestLogs(ctx, tag, req)
		}
		resp = plogotlp.NewExportResponse()
	case chunk.Metrics:
		req := pmetricotlp.NewExportRequest()
		if err = unmarshal(req, body, isJSON); err == nil {
			err = in.ingestSignal(ctx, signal, tag, metricParts(req, body, isJSON))
		}
		resp = pmetricotlp.NewExportResponse()
	case chunk.Traces:
		req := ptraceotlp.NewExportRequest()
		if err = unmarshal(req, body, isJSON); err == nil {
			err = in.ingestSignal(ctx, signal, tag, traceParts(req, body, isJSON))
		}
		resp = ptraceotlp.NewExportResponse()
	}
	if err != nil {
		in.refuse()
		code := codeOf(err)
		httpCode := http.StatusServiceUnavailable
		switch code {
		case codes.InvalidArgument:
			httpCode = http.StatusBadRequest
		case codes.ResourceExhausted:
			httpCode = http.StatusRequestEntityTooLarge
		default:
			rw.Header().Set("Retry-After", retryAfter)
		}
		if code != codes.InvalidArgument {
			in.log.Warn("request refused", "path", r.URL.Path, "status", httpCode, "error", err)
		}
		in.writeStatus(rw, isJSON, httpCode, code, err.Error())
		return
	}
	if in.successCode == http.StatusNoContent {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	var out []byte
	ct := ctProto
	if isJSON {
		out, _ = resp.MarshalJSON()
		ct = ctJSON
	} else {
		out, _ = resp.MarshalProto()
	}
	rw.Header().Set("Content-Type", ct)
	rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
	rw.WriteHeader(in.successCode)
	_, _ = rw.Write(out)
}

type unmarshaler interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}

func unmarshal(req unmarshaler, body []byte, isJSON bool) error {
	var err error
	if isJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		enc := "protobuf"
		if isJSON {
			enc = "JSON"
		}
		return invalid("request body of %d bytes is not an OTLP %s message: %v", len(body), enc, err)
	}
	return nil
}

func codeOf(err error) codes.Code {
	var re *requestError
	if errors.As(err, &re) {
		return re.code
	}
	return codes.Unavailable
}

// readBody reads the body within buffer_max_size and decompresses it within
// four times that.
func (in *Input) readBody(rw http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooBig := func(what string, limit int64) error {
		return &requestError{codes.ResourceExhausted, fmt.Errorf("%s exceeds buffer_max_size (%d bytes)", what, limit)}
	}
	if r.ContentLength > in.maxBody {
		return nil, tooBig(fmt.Sprintf("request body of %d bytes", r.ContentLength), in.maxBody)
	}
	raw, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, in.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooBig("request body", in.maxBody)
		}
		return nil, invalid("reading the request body: %v", err)
	}
	var dec io.Reader
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, invalid("gzip body: %v", err)
		}
		dec = zr
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, invalid("deflate body: %v", err)
		}
		dec = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(4*in.maxBody)))
		if err != nil {
			return nil, invalid("zstd body: %v", err)
		}
		defer zr.Close()
		dec = zr
	default:
		return nil, invalid("unsupported Content-Encoding %q: use gzip, deflate or zstd", enc)
	}
	limit := 4 * in.maxBody
	out, err := io.ReadAll(io.LimitReader(dec, limit+1))
	if err != nil {
		return nil, invalid("decompressing the request body: %v", err)
	}
	if int64(len(out)) > limit {
		return nil, tooBig("decompressed request body", limit)
	}
	return out, nil
}

// writeStatus answers with a google.rpc.Status in the request's encoding.
func (in *Input) writeStatus(rw http.ResponseWriter, isJSON bool, httpCode int, code codes.Code, msg string) {
	st := status.New(code, msg).Proto()
	var out []byte
	if isJSON {
		out, _ = protojson.Marshal(st)
		rw.Header().Set("Content-Type", ctJSON)
	} else {
		out, _ = proto.Marshal(st)
		rw.Header().Set("Content-Type", ctProto)
	}
	rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
	rw.WriteHeader(httpCode)
	_, _ = rw.Write(out)
}

var _ plugin.Pauser = (*Input)(nil)
