package opentelemetry

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/floe-io/floe/internal/chunk"
)

// The gRPC services are declared by hand over a codec that hands the
// handlers the raw (decompressed) request bytes: a request that does not
// decode is then answered InvalidArgument with the reason (gRPC's own
// decoding would answer Internal), and metrics and traces bodies go into
// their chunks without being encoded again.

// rawMessage is a request or response body as bytes.
type rawMessage struct{ b []byte }

// rawCodec is the server's only codec; it is registered under "proto" so
// clients sending application/grpc (+proto) reach it.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(*rawMessage); ok {
		return m.b, nil
	}
	return nil, fmt.Errorf("opentelemetry: cannot encode %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("opentelemetry: cannot decode into %T", v)
	}
	// gRPC may reuse its buffer after the handler's decode: keep a copy.
	m.b = append([]byte(nil), data...)
	return nil
}

func (in *Input) newGRPCServer() *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.ForceServerCodec(rawCodec{}),
		grpc.MaxRecvMsgSize(int(min(4*in.maxBody, 1<<31-1))),
	}
	if in.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(in.tls.Config().Clone())))
	}
	s := grpc.NewServer(opts...)
	for _, svc := range []struct {
		name   string
		signal string
	}{
		{"opentelemetry.proto.collector.logs.v1.LogsService", chunk.Logs},
		{"opentelemetry.proto.collector.metrics.v1.MetricsService", chunk.Metrics},
		{"opentelemetry.proto.collector.trace.v1.TraceService", chunk.Traces},
	} {
		signal := svc.signal
		s.RegisterService(&grpc.ServiceDesc{
			ServiceName: svc.name,
			HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{
				MethodName: "Export",
				Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
					var req rawMessage
					if err := dec(&req); err != nil {
						return nil, err
					}
					return in.exportGRPC(ctx, signal, req.b)
				},
			}},
			Metadata: "opentelemetry/proto/collector/" + signal + "/v1/" + signal + "_service.proto",
		}, in)
	}
	return s
}

// exportGRPC handles one Export call; the response is an empty
// Export*ServiceResponse (zero bytes).
func (in *Input) exportGRPC(ctx context.Context, signal string, body []byte) (any, error) {
	ctx, leave, ok := in.enter(ctx)
	if !ok {
		in.refuse()
		return nil, status.Error(codes.Unavailable, errStopping.Error())
	}
	defer leave()
	if in.paused.Load() {
		in.refuse()
		return nil, status.Error(codes.Unavailable, errPaused.Error())
	}
	method, _ := grpc.Method(ctx)
	tag := in.tagFor(method)
	var err error
	switch signal {
	case chunk.Logs:
		req := plogotlp.NewExportRequest()
		if err = unmarshal(req, body, false); err == nil {
			err = in.ingestLogs(ctx, tag, req)
		}
	case chunk.Metrics:
		req := pmetricotlp.NewExportRequest()
		if err = unmarshal(req, body, false); err == nil {
			err = in.ingestSignal(ctx, signal, tag, metricParts(req, body, false))
		}
	case chunk.Traces:
		req := ptraceotlp.NewExportRequest()
		if err = unmarshal(req, body, false); err == nil {
			err = in.ingestSignal(ctx, signal, tag, traceParts(req, body, false))
		}
	}
	if err != nil {
		in.refuse()
		var re *requestError
		if !errors.As(err, &re) || re.code != codes.InvalidArgument {
			in.log.Warn("request refused", "method", method, "error", err)
		}
		return nil, status.Error(codeOf(err), err.Error())
	}
	return &rawMessage{}, nil
}
