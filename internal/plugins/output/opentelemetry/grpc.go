package opentelemetry

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor for compress gzip
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	httpout "github.com/floe-io/floe/internal/plugins/output/http"
)

// The requests are sent as the protobuf bytes the output already holds
// (metrics and traces chunks are OTLP protobuf, logs are encoded by pdata
// once) over a codec that passes bytes through, and the method path is the
// configured grpc_*_uri: pdata's typed clients would decode a chunk only for
// gRPC to encode it again, and cannot call another path.

// rawMessage is a request or response body as bytes.
type rawMessage struct{ b []byte }

// rawCodec passes rawMessage bytes through; it is forced per call, so the
// process-wide "proto" codec is left alone.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return nil, fmt.Errorf("opentelemetry: cannot encode %T", v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("opentelemetry: cannot decode into %T", v)
	}
	m.b = data.Materialize()
	return nil
}

// grpcSender speaks OTLP/gRPC over one client connection.
type grpcSender struct {
	o    *Output
	conn *grpc.ClientConn
	md   metadata.MD
	opts []grpc.CallOption
}

func newGRPCSender(o *Output, ep *httpout.Endpoint) (*grpcSender, error) {
	creds := insecure.NewCredentials()
	if ep.Scheme == "https" {
		// The tls.* keys as the HTTP transport read them; gRPC adds h2 to
		// the ALPN protocols itself.
		creds = credentials.NewTLS(ep.Transport.TLSClientConfig.Clone())
	}
	// The mesh's retries pace redelivery after a failure; gRPC's default
	// reconnect backoff (up to two minutes) would only add to them.
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = 250*time.Millisecond, 5*time.Second
	conn, err := grpc.NewClient("passthrough:///"+ep.Addr, grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 10 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("gRPC client for %s: %w", ep.Addr, err)
	}
	s := &grpcSender{o: o, conn: conn, md: metadata.MD{}}
	for _, h := range o.headers {
		s.md.Append(strings.ToLower(h[0]), h[1])
	}
	if o.user != "" {
		s.md.Set("authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(o.user+":"+o.pass)))
	}
	s.opts = []grpc.CallOption{grpc.ForceCodecV2(rawCodec{})}
	if o.gzip {
		s.opts = append(s.opts, grpc.UseCompressor("gzip"))
	}
	return s, nil
}

func (s *grpcSender) close() error { return s.conn.Close() }

func (s *grpcSender) export(parent context.Context, r request) error {
	o := s.o
	ctx := parent
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, o.timeout)
		defer cancel()
	}
	if len(s.md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, s.md)
	}
	path := o.signal(r.sig).path
	var out rawMessage
	err := s.conn.Invoke(ctx, path, &rawMessage{b: r.body}, &out, s.opts...)
	if err == nil {
		o.grpcPartial(r.sig, out.b)
		return nil
	}
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("opentelemetry %s: export to %s%s abandoned: %w", o.name, o.addr, path, perr)
	}
	st := status.Convert(err)
	serr := fmt.Errorf("opentelemetry %s: %s%s answered gRPC status %s: %s", o.name, o.addr, path, st.Code(), st.Message())
	delay, hasDelay := retryDelay(st)
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		if hasDelay {
			return plugin.Throttle(serr, delay)
		}
		return serr
	case codes.ResourceExhausted:
		// Retryable only when the receiver says it can recover (OTLP spec).
		if hasDelay {
			return plugin.Throttle(serr, delay)
		}
	}
	if o.logBody {
		o.log.Error("opentelemetry: export refused, the chunk will be dead-lettered", "signal", r.sig, "records", r.records, "code", st.Code().String(), "message", st.Message())
	}
	return plugin.Permanent(serr)
}

// retryDelay is the RetryInfo delay of a status, capped at one hour.
func retryDelay(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return min(max(ri.GetRetryDelay().AsDuration(), 0), time.Hour), true
		}
	}
	return 0, false
}

// grpcPartial reads the partial success of an Export*ServiceResponse.
func (o *Output) grpcPartial(sig string, body []byte) {
	if len(body) == 0 {
		return
	}
	switch sig {
	case chunk.Logs:
		resp := plogotlp.NewExportResponse()
		if resp.UnmarshalProto(body) == nil {
			o.partial(sig, resp.PartialSuccess().RejectedLogRecords(), resp.PartialSuccess().ErrorMessage())
		}
	case chunk.Metrics:
		resp := pmetricotlp.NewExportResponse()
		if resp.UnmarshalProto(body) == nil {
			o.partial(sig, resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage())
		}
	case chunk.Traces:
		resp := ptraceotlp.NewExportResponse()
		if resp.UnmarshalProto(body) == nil {
			o.partial(sig, resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage())
		}
	}
}
