package opentelemetry

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // the server accepts gzip requests
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/floe-io/floe/internal/testutil/freeport"
)

// fault is the answer a sink gives one request instead of accepting it.
type fault struct {
	httpStatus int           // HTTP: this status
	retryAfter string        // HTTP: Retry-After value
	code       codes.Code    // gRPC: this code
	retryDelay time.Duration // gRPC: a RetryInfo detail when > 0
	rejected   int64         // accept, answering a partial success with this many rejected
	message    string
}

// otlpSink is an OTLP receiver built on pdata's request and response types
// and its gRPC service registration: what a Collector's otlp receiver runs.
type otlpSink struct {
	grpc    bool
	addr    string
	discard bool // benchmarks: decode and count, keep nothing
	tls     *tls.Config
	h2c     bool // HTTP: also accept cleartext HTTP/2

	mu      sync.Mutex
	logs    []plog.Logs
	metrics []pmetric.Metrics
	traces  []ptrace.Traces
	heads   []http.Header // HTTP headers or gRPC metadata of each accepted request
	paths   []string
	faults  []fault
	hits    int // requests received, faulted ones included

	hs *http.Server
	gs *grpc.Server
}

func newSink(t testing.TB, useGRPC bool, opts ...func(*otlpSink)) *otlpSink {
	s := &otlpSink{grpc: useGRPC}
	for _, o := range opts {
		o(s)
	}
	s.listen(t, freeport.Addr(t))
	t.Cleanup(s.stop)
	return s
}

func (s *otlpSink) listen(t testing.TB, addr string) {
	var ln net.Listener
	var err error
	for range 50 { // the port of a restarted sink may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	if s.grpc {
		var sopts []grpc.ServerOption
		if s.tls != nil {
			sopts = append(sopts, grpc.Creds(credentials.NewTLS(s.tls)))
		}
		gs := grpc.NewServer(sopts...)
		plogotlp.RegisterGRPCServer(gs, &logsServer{s: s})
		pmetricotlp.RegisterGRPCServer(gs, &metricsServer{s: s})
		ptraceotlp.RegisterGRPCServer(gs, &tracesServer{s: s})
		s.gs = gs
		go func() { _ = gs.Serve(ln) }()
		return
	}
	hs := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	if s.h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		hs.Protocols = &p
	}
	s.hs = hs
	if s.tls != nil {
		hs.TLSConfig = s.tls.Clone()
		go func() { _ = hs.ServeTLS(ln, "", "") }()
		return
	}
	go func() { _ = hs.Serve(ln) }()
}

func (s *otlpSink) stop() {
	if s.gs != nil {
		s.gs.Stop()
	}
	if s.hs != nil {
		_ = s.hs.Close()
	}
}

func (s *otlpSink) hostPort() (string, string) {
	h, p, _ := net.SplitHostPort(s.addr)
	return h, p
}

// config gives the output keys that point at the sink.
func (s *otlpSink) config(extra ...string) []string {
	h, p := s.hostPort()
	c := []string{"host " + h, "port " + p}
	if s.grpc {
		c = append(c, "grpc on")
	}
	return append(c, extra...)
}

func (s *otlpSink) inject(f ...fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// take pops the next fault, counting the request.
func (s *otlpSink) take() (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func (s *otlpSink) record(path string, h http.Header, store func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.discard {
		return
	}
	store()
	s.heads = append(s.heads, h)
	s.paths = append(s.paths, path)
}

func (s *otlpSink) storedLogs() []plog.Logs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plog.Logs(nil), s.logs...)
}

// logRecords flattens every stored LogRecord with its resource and scope.
func (s *otlpSink) logRecords() []storedRecord {
	var out []storedRecord
	for _, ld := range s.storedLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				sl := rl.ScopeLogs().At(j)
				for k := 0; k < sl.LogRecords().Len(); k++ {
					out = append(out, storedRecord{rl, sl, sl.LogRecords().At(k)})
				}
			}
		}
	}
	return out
}

type storedRecord struct {
	rl plog.ResourceLogs
	sl plog.ScopeLogs
	lr plog.LogRecord
}

// seqs returns the "seq" of each stored record body (a kvlist).
func (s *otlpSink) seqs(t testing.TB) []int64 {
	var out []int64
	for _, r := range s.logRecords() {
		v, ok := r.lr.Body().Map().Get("seq")
		if !ok {
			t.Errorf("stored record without seq: %v", r.lr.Body().AsRaw())
			continue
		}
		out = append(out, v.Int())
	}
	return out
}

// ---- gRPC: pdata's service registrations ----

type logsServer struct {
	plogotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (g *logsServer) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	resp := plogotlp.NewExportResponse()
	f, ok := g.s.take()
	if err := grpcFault(f, ok); err != nil {
		return resp, err
	}
	ld := plog.NewLogs()
	req.Logs().CopyTo(ld)
	g.s.record(grpcLogsPath, mdHeader(ctx), func() { g.s.logs = append(g.s.logs, ld) })
	if ok && f.rejected > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(f.rejected)
		resp.PartialSuccess().SetErrorMessage(f.message)
	}
	return resp, nil
}

type metricsServer struct {
	pmetricotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (g *metricsServer) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	resp := pmetricotlp.NewExportResponse()
	f, ok := g.s.take()
	if err := grpcFault(f, ok); err != nil {
		return resp, err
	}
	md := pmetric.NewMetrics()
	req.Metrics().CopyTo(md)
	g.s.record(grpcMetricsPath, mdHeader(ctx), func() { g.s.metrics = append(g.s.metrics, md) })
	if ok && f.rejected > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(f.rejected)
		resp.PartialSuccess().SetErrorMessage(f.message)
	}
	return resp, nil
}

type tracesServer struct {
	ptraceotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (g *tracesServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	f, ok := g.s.take()
	if err := grpcFault(f, ok); err != nil {
		return resp, err
	}
	td := ptrace.NewTraces()
	req.Traces().CopyTo(td)
	g.s.record(grpcTracesPath, mdHeader(ctx), func() { g.s.traces = append(g.s.traces, td) })
	if ok && f.rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(f.rejected)
		resp.PartialSuccess().SetErrorMessage(f.message)
	}
	return resp, nil
}

func grpcFault(f fault, ok bool) error {
	if !ok || f.code == codes.OK {
		return nil
	}
	st := status.New(f.code, f.message)
	if f.retryDelay > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryDelay)}); err == nil {
			st = d
		}
	}
	return st.Err()
}

func mdHeader(ctx context.Context) http.Header {
	h := http.Header{}
	md, _ := metadata.FromIncomingContext(ctx)
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return h
}

// ---- OTLP/HTTP: the receiver's decode and answer ----

func (s *otlpSink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f, faulted := s.take()
	var body io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	case "zstd":
		zr, err := zstd.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	isJSON := r.Header.Get("Content-Type") == "application/json"
	if !isJSON && r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	if faulted && f.httpStatus != 0 {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		b, _ := proto.Marshal(&spb.Status{Code: int32(codes.Unknown), Message: f.message})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(f.httpStatus)
		_, _ = w.Write(b)
		return
	}
	type codec interface {
		UnmarshalProto([]byte) error
		UnmarshalJSON([]byte) error
	}
	decode := func(req codec) bool {
		var err error
		if isJSON {
			err = req.UnmarshalJSON(data)
		} else {
			err = req.UnmarshalProto(data)
		}
		if err != nil {
			http.Error(w, "cannot decode: "+err.Error(), http.StatusBadRequest)
			return false
		}
		return true
	}
	type response interface {
		MarshalProto() ([]byte, error)
		MarshalJSON() ([]byte, error)
	}
	var resp response
	path := r.URL.Path
	r.Header.Set("X-Test-Proto", r.Proto)
	switch path {
	case "/v1/logs", "/custom/logs":
		req := plogotlp.NewExportRequest()
		if !decode(req) {
			return
		}
		s.record(path, r.Header.Clone(), func() { s.logs = append(s.logs, req.Logs()) })
		lr := plogotlp.NewExportResponse()
		if faulted && f.rejected > 0 {
			lr.PartialSuccess().SetRejectedLogRecords(f.rejected)
			lr.PartialSuccess().SetErrorMessage(f.message)
		}
		resp = lr
	case "/v1/metrics":
		req := pmetricotlp.NewExportRequest()
		if !decode(req) {
			return
		}
		s.record(path, r.Header.Clone(), func() { s.metrics = append(s.metrics, req.Metrics()) })
		mr := pmetricotlp.NewExportResponse()
		if faulted && f.rejected > 0 {
			mr.PartialSuccess().SetRejectedDataPoints(f.rejected)
			mr.PartialSuccess().SetErrorMessage(f.message)
		}
		resp = mr
	case "/v1/traces":
		req := ptraceotlp.NewExportRequest()
		if !decode(req) {
			return
		}
		s.record(path, r.Header.Clone(), func() { s.traces = append(s.traces, req.Traces()) })
		tr := ptraceotlp.NewExportResponse()
		if faulted && f.rejected > 0 {
			tr.PartialSuccess().SetRejectedSpans(f.rejected)
			tr.PartialSuccess().SetErrorMessage(f.message)
		}
		resp = tr
	default:
		http.NotFound(w, r)
		return
	}
	var b []byte
	if isJSON {
		b, err = resp.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, err = resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (s *otlpSink) String() string { return fmt.Sprintf("otlp sink %s (grpc=%v)", s.addr, s.grpc) }

// header returns the headers of the i-th accepted request.
func (s *otlpSink) header(i int) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heads[i]
}
