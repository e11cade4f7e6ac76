// Package opentelemetry is Fluent Bit's OpenTelemetry output
// (out_opentelemetry): it exports logs, metrics and traces chunks to an OTLP
// receiver (an OpenTelemetry Collector, a vendor endpoint) over OTLP/HTTP
// (protobuf by default, JSON with format json) or OTLP/gRPC (grpc on).
//
// Logs chunks are mapped to OTLP LogRecords by internal/otlplog.ToLogs, the
// mapping of Fluent Bit's out_opentelemetry (../shared/spec/otelwasm.md §14):
// resource and scope from the OTLP group headers, the body from the first
// logs_body_key present (else the whole record), attributes from the
// metadata, severity, trace context and timestamps from the otlp metadata
// map, then the logs_*_metadata_key metadata keys, then the
// logs_*_message_key record keys. A chunk is sent as requests of at most
// batch_size log records. Metrics and traces chunks already hold an OTLP
// Export*ServiceRequest in protobuf: they are sent as they are (re-encoded
// only for format json, or for metrics when add_label adds attributes to
// every data point).
//
// Answers, as the OTLP specification and the Collector's exporters read them:
//
//   - HTTP 2xx / gRPC OK: delivered. A partial success (rejected_* > 0) is
//     logged with the receiver's message and the rejected records are
//     counted as dropped (reason "rejected"); the chunk is acknowledged, since
//     the receiver refused those records for good and resending the rest
//     would duplicate it.
//   - HTTP 429, 502, 503, 504 (and 408, and any other 5xx as Fluent Bit
//     does): RETRY, after Retry-After when the receiver sets it. gRPC
//     Canceled, DeadlineExceeded, Aborted, OutOfRange, Unavailable and
//     DataLoss: RETRY, after the RetryInfo delay when one is attached;
//     ResourceExhausted is RETRY when it carries RetryInfo (the receiver
//     says it can recover) and ERROR otherwise (a request above the
//     receiver's message size would never pass). A connection failure or a
//     timeout is RETRY.
//   - Any other 4xx, and gRPC InvalidArgument, NotFound, PermissionDenied,
//     Unauthenticated, FailedPrecondition, Unimplemented, Internal, Unknown…:
//     ERROR (plugin.Permanent), so the chunk goes to the dead letters.
//
// When a chunk needs several requests and one of them fails, the output
// remembers how many went through for that chunk id, so the mesh's retry
// resumes after them instead of sending them twice.
package opentelemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/otlplog"
	"github.com/floe-io/floe/internal/plugin"
	httpout "github.com/floe-io/floe/internal/plugins/output/http"
	"github.com/floe-io/floe/internal/telemetry"
)

// Default gRPC method paths of the three OTLP services.
const (
	grpcLogsPath    = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	grpcMetricsPath = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
	grpcTracesPath  = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
)

// DropRejected is the drop reason of records a receiver refused in a
// partial success.
const DropRejected = "rejected"

// Spec describes the opentelemetry output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput, Name: "opentelemetry", Desc: "OpenTelemetry (OTLP/HTTP and OTLP/gRPC)",
		Keys: []plugin.Key{
			{Name: "host", Default: "127.0.0.1", Desc: "OTLP receiver host name or IP address"},
			{Name: "port", Type: plugin.Int, Default: "80", Desc: "OTLP receiver TCP port (4318 HTTP, 4317 gRPC by convention)"},
			{Name: "logs_uri", Default: "/v1/logs", Desc: "OTLP/HTTP path of logs"},
			{Name: "metrics_uri", Default: "/v1/metrics", Desc: "OTLP/HTTP path of metrics"},
			{Name: "traces_uri", Default: "/v1/traces", Desc: "OTLP/HTTP path of traces"},
			{Name: "grpc", Type: plugin.Bool, Default: "off", Desc: "export over OTLP/gRPC instead of OTLP/HTTP"},
			{Name: "grpc_logs_uri", Default: grpcLogsPath, Desc: "gRPC method of logs"},
			{Name: "grpc_metrics_uri", Default: grpcMetricsPath, Desc: "gRPC method of metrics"},
			{Name: "grpc_traces_uri", Default: grpcTracesPath, Desc: "gRPC method of traces"},
			{Name: "http2", Default: "off", Enum: []string{"on", "off", "force", "true", "false"},
				Desc: "HTTP/2 for OTLP/HTTP: on (over TLS), force (also cleartext h2c)"},
			{Name: "format", Default: "protobuf", Enum: []string{"protobuf", "json"}, Desc: "OTLP/HTTP encoding (Floe addition)"},
			{Name: "compress", Enum: []string{"gzip", "zstd"}, Desc: "payload compression (gRPC: gzip only)"},
			{Name: "header", Multi: true, Desc: "extra header (gRPC: metadata) 'Name value'; may repeat"},
			{Name: "http_user", Desc: "basic authentication user"},
			{Name: "http_passwd", Desc: "basic authentication password"},
			{Name: "add_label", Multi: true, Desc: "'name value' attribute added to every metric data point; may repeat"},
			{Name: "batch_size", Type: plugin.Int, Default: "1000", Desc: "maximum log records per request"},
			{Name: "log_response_payload", Type: plugin.Bool, Default: "true", Desc: "log the receiver's answer to a refused request"},
			{Name: "http.response_timeout", Type: plugin.Seconds, Default: "60s", Desc: "maximum time of one request"},
			{Name: "logs_body_key", Multi: true, Desc: "record key whose value becomes the body (repeatable, first present wins); else the whole record"},
			{Name: "logs_body_key_attributes", Type: plugin.Bool, Default: "false", Desc: "with a body key, the other record keys become attributes"},
			{Name: "logs_metadata_key", Default: otlplog.DefaultMetadataKey, Desc: "metadata map holding the OTLP fields"},
			{Name: "logs_timestamp_metadata_key", Default: "$Timestamp", Desc: "metadata key of time_unix_nano"},
			{Name: "logs_observed_timestamp_metadata_key", Default: "$ObservedTimestamp", Desc: "metadata key of observed_time_unix_nano"},
			{Name: "logs_severity_text_metadata_key", Default: "$SeverityText", Desc: "metadata key of severity_text"},
			{Name: "logs_severity_number_metadata_key", Default: "$SeverityNumber", Desc: "metadata key of severity_number"},
			{Name: "logs_trace_flags_metadata_key", Default: "$TraceFlags", Desc: "metadata key of the trace flags"},
			{Name: "logs_trace_id_metadata_key", Default: "$TraceId", Desc: "metadata key of trace_id"},
			{Name: "logs_span_id_metadata_key", Default: "$SpanId", Desc: "metadata key of span_id"},
			{Name: "logs_attributes_metadata_key", Default: "$Attributes", Desc: "metadata key of a map of attributes"},
			{Name: "logs_severity_text_message_key", Default: "$SeverityText", Desc: "record key of severity_text"},
			{Name: "logs_severity_number_message_key", Default: "$SeverityNumber", Desc: "record key of severity_number"},
			{Name: "logs_trace_id_message_key", Default: "$TraceId", Desc: "record key of trace_id (hex or binary)"},
			{Name: "logs_span_id_message_key", Default: "$SpanId", Desc: "record key of span_id (hex or binary)"},
		},
		NewOutput: New,
	}
}

// signal is what the output needs per OTLP signal.
type signal struct {
	url  string // OTLP/HTTP endpoint
	path string // gRPC method
}

// Output exports chunks to an OTLP receiver. It is safe for concurrent flushes.
type Output struct {
	name    string
	log     *slog.Logger
	addr    string
	timeout time.Duration
	json    bool
	gzip    bool
	zstd    bool
	batch   int
	logBody bool
	opt     otlplog.Options
	labels  [][2]string
	headers [][2]string
	user    string
	pass    string
	logs    signal
	metrics signal
	traces  signal

	http *httpSender // nil with grpc on
	grpc *grpcSender // nil with grpc off

	rejected *telemetry.Dropper

	// progress holds, per chunk id, how many requests of a chunk that
	// needs several were accepted before one failed, so a retry resumes.
	mu       sync.Mutex
	progress map[string]int
}

// maxProgress bounds the chunks remembered in progress; beyond it the
// oldest guesses are simply dropped (a retry then resends from the start).
const maxProgress = 4096

// New builds an opentelemetry output from its configuration.
func New(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	return newOutput(ctx, set, p)
}

func newOutput(_ context.Context, set plugin.Settings, p *plugin.Props) (*Output, error) {
	o := &Output{name: set.DisplayName(), log: set.Logger, progress: map[string]int{}}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	ep, err := httpout.NewEndpoint(p, o.log)
	if err != nil {
		return nil, err
	}
	o.addr = ep.Addr
	o.timeout = time.Duration(p.Seconds("http.response_timeout") * float64(time.Second))
	o.json = p.String("format") == "json"
	switch strings.ToLower(strings.TrimSpace(p.String("compress"))) {
	case "gzip":
		o.gzip = true
	case "zstd":
		o.zstd = true
	}
	if o.batch = p.Int("batch_size"); o.batch <= 0 {
		o.batch = 1000 // Fluent Bit's fallback for a non-positive value
	}
	o.logBody = p.Bool("log_response_payload")
	if v := p.String("http_user"); v != "" {
		o.user, o.pass = v, p.String("http_passwd")
	}
	for _, h := range p.All("header") {
		name, value, ok := cutPair(h)
		if !ok {
			return nil, p.Errorf("header", "header %q needs a name and a value, e.g. 'X-Key value'", h)
		}
		o.headers = append(o.headers, [2]string{name, value})
	}
	for _, l := range p.All("add_label") {
		name, value, ok := cutPair(l)
		if !ok {
			return nil, p.Errorf("add_label", "add_label %q needs a name and a value, e.g. 'env prod'", l)
		}
		o.labels = append(o.labels, [2]string{name, value})
	}
	o.opt = otlplog.Options{
		MetadataKey:                  p.String("logs_metadata_key"),
		BodyKeys:                     p.All("logs_body_key"),
		BodyKeyAttributes:            p.Bool("logs_body_key_attributes"),
		SeverityTextKey:              p.String("logs_severity_text_message_key"),
		SeverityNumberKey:            p.String("logs_severity_number_message_key"),
		TraceIDKey:                   p.String("logs_trace_id_message_key"),
		SpanIDKey:                    p.String("logs_span_id_message_key"),
		TimestampMetadataKey:         p.String("logs_timestamp_metadata_key"),
		ObservedTimestampMetadataKey: p.String("logs_observed_timestamp_metadata_key"),
		SeverityTextMetadataKey:      p.String("logs_severity_text_metadata_key"),
		SeverityNumberMetadataKey:    p.String("logs_severity_number_metadata_key"),
		TraceIDMetadataKey:           p.String("logs_trace_id_metadata_key"),
		SpanIDMetadataKey:            p.String("logs_span_id_metadata_key"),
		TraceFlagsMetadataKey:        p.String("logs_trace_flags_metadata_key"),
		AttributesMetadataKey:        p.String("logs_attributes_metadata_key"),
	}
	o.rejected = set.Telemetry.Dropper(o.log, telemetry.DropSite{Stage: "output", Plugin: o.name,
		Reason: DropRejected, Msg: "the OTLP receiver rejected records (partial success)", Level: slog.LevelWarn})

	if p.Bool("grpc") {
		if o.zstd {
			return nil, p.Errorf("compress", "compress zstd is not available with grpc on (use gzip)")
		}
		if o.json {
			return nil, p.Errorf("format", "format json is OTLP/HTTP only; gRPC always carries protobuf")
		}
		for _, k := range []struct {
			key string
			dst *string
		}{{"grpc_logs_uri", &o.logs.path}, {"grpc_metrics_uri", &o.metrics.path}, {"grpc_traces_uri", &o.traces.path}} {
			v := strings.TrimSpace(p.String(k.key))
			if !strings.HasPrefix(v, "/") || !strings.Contains(v[1:], "/") {
				return nil, p.Errorf(k.key, "%s %q is not a gRPC method path like %s", k.key, v, grpcLogsPath)
			}
			*k.dst = v
		}
		if o.grpc, err = newGRPCSender(o, ep); err != nil {
			return nil, p.Errorf("host", "%v", err)
		}
		return o, nil
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{"logs_uri", &o.logs.url}, {"metrics_uri", &o.metrics.url}, {"traces_uri", &o.traces.url}} {
		v := strings.TrimSpace(p.String(k.key))
		if v == "" || v[0] != '/' {
			return nil, p.Errorf(k.key, "%s %q must start with /", k.key, v)
		}
		u, err := url.Parse(ep.Scheme + "://" + ep.Addr + v)
		if err != nil {
			return nil, p.Errorf(k.key, "invalid %s %q: %v", k.key, v, err)
		}
		*k.dst = u.String()
	}
	switch strings.ToLower(p.String("http2")) {
	case "on", "true":
		ep.Transport.ForceAttemptHTTP2 = true
	case "force":
		// Cleartext HTTP/2 (h2c) with prior knowledge, as Fluent Bit's force.
		ep.Transport.ForceAttemptHTTP2 = true
		if ep.Scheme == "http" {
			var protos http.Protocols
			protos.SetUnencryptedHTTP2(true)
			ep.Transport.Protocols = &protos
		}
	}
	o.http = &httpSender{client: ep.Client, transport: ep.Transport}
	return o, nil
}

// cutPair splits "name value" at the first run of spaces.
func cutPair(s string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(strings.TrimSpace(s), " ")
	value = strings.TrimSpace(value)
	return name, value, ok && name != "" && value != ""
}

// Close releases the connections.
func (o *Output) Close(context.Context) error {
	if o.grpc != nil {
		return o.grpc.close()
	}
	o.http.transport.CloseIdleConnections()
	return nil
}

// Flush exports one chunk.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	reqs, err := o.requests(c)
	if err != nil {
		return plugin.Permanent(fmt.Errorf("opentelemetry %s: chunk %s (tag %s): %w", o.name, c.ID, c.Tag, err))
	}
	start := 0
	if len(reqs) > 1 && c.ID != "" {
		o.mu.Lock()
		start = o.progress[c.ID]
		o.mu.Unlock()
	}
	for i := start; i < len(reqs); i++ {
		if err := o.export(ctx, reqs[i]); err != nil {
			if i > 0 && c.ID != "" && !plugin.IsPermanent(err) {
				o.remember(c.ID, i)
			}
			return err
		}
	}
	if start > 0 {
		o.remember(c.ID, 0)
	}
	return nil
}

// remember notes that the first n requests of chunk id went through (n = 0
// forgets the chunk).
func (o *Output) remember(id string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n == 0 {
		delete(o.progress, id)
		return
	}
	if len(o.progress) >= maxProgress {
		for k := range o.progress {
			delete(o.progress, k)
			break
		}
	}
	o.progress[id] = n
}

// request is one Export call: the protobuf (or JSON) body and its signal.
type request struct {
	sig     string // chunk.Logs, chunk.Metrics or chunk.Traces
	body    []byte
	records int
}

// requests encodes a chunk as the Export requests that carry it.
func (o *Output) requests(c *chunk.Chunk) ([]request, error) {
	switch sig := c.Signal(); sig {
	case chunk.Logs:
		ld, n, err := otlplog.ToLogs(c.Data, &o.opt)
		if err != nil {
			return nil, fmt.Errorf("cannot map the events to OTLP logs: %w", err)
		}
		if n == 0 {
			return nil, nil
		}
		var reqs []request
		for _, part := range splitLogs(ld, o.batch) {
			req := plogotlp.NewExportRequestFromLogs(part)
			var b []byte
			if o.json {
				b, err = req.MarshalJSON()
			} else {
				b, err = req.MarshalProto()
			}
			if err != nil {
				return nil, fmt.Errorf("encode OTLP logs: %w", err)
			}
			reqs = append(reqs, request{sig: sig, body: b, records: part.LogRecordCount()})
		}
		return reqs, nil
	case chunk.Metrics:
		if !o.json && len(o.labels) == 0 {
			return []request{{sig: sig, body: c.Data, records: c.Records}}, nil
		}
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(c.Data); err != nil {
			return nil, fmt.Errorf("metrics chunk is not an OTLP ExportMetricsServiceRequest: %w", err)
		}
		addLabels(req.Metrics(), o.labels)
		var b []byte
		var err error
		if o.json {
			b, err = req.MarshalJSON()
		} else {
			b, err = req.MarshalProto()
		}
		if err != nil {
			return nil, fmt.Errorf("encode OTLP metrics: %w", err)
		}
		return []request{{sig: sig, body: b, records: req.Metrics().DataPointCount()}}, nil
	case chunk.Traces:
		if !o.json {
			return []request{{sig: sig, body: c.Data, records: c.Records}}, nil
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(c.Data); err != nil {
			return nil, fmt.Errorf("traces chunk is not an OTLP ExportTraceServiceRequest: %w", err)
		}
		b, err := req.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode OTLP traces: %w", err)
		}
		return []request{{sig: sig, body: b, records: req.Traces().SpanCount()}}, nil
	default:
		return nil, fmt.Errorf("unknown signal %q", sig)
	}
}

func (o *Output) signal(sig string) signal {
	switch sig {
	case chunk.Metrics:
		return o.metrics
	case chunk.Traces:
		return o.traces
	}
	return o.logs
}

func (o *Output) export(ctx context.Context, r request) error {
	if o.grpc != nil {
		return o.grpc.export(ctx, r)
	}
	return o.http.export(ctx, o, r)
}

// partial handles the partial success of an accepted request.
func (o *Output) partial(sig string, rejected int64, msg string) {
	if rejected <= 0 {
		if msg != "" {
			// A message without rejections is a warning from the receiver.
			o.log.Warn("opentelemetry: the receiver accepted the request with a warning", "signal", sig, "message", msg)
		}
		return
	}
	o.rejected.Drop(int(rejected), "signal", sig, "message", msg)
}

// splitLogs cuts ld into pieces of at most n log records, each keeping the
// resource and scope of its records.
func splitLogs(ld plog.Logs, n int) []plog.Logs {
	if ld.LogRecordCount() <= n {
		return []plog.Logs{ld}
	}
	var out []plog.Logs
	cur := plog.NewLogs()
	count := 0
	rls := ld.ResourceLogs()
	for ri := 0; ri < rls.Len(); ri++ {
		rl := rls.At(ri)
		var orl plog.ResourceLogs
		haveRL := false
		sls := rl.ScopeLogs()
		for si := 0; si < sls.Len(); si++ {
			sl := sls.At(si)
			var osl plog.ScopeLogs
			haveSL := false
			lrs := sl.LogRecords()
			for li := 0; li < lrs.Len(); li++ {
				if count == n {
					out = append(out, cur)
					cur, count, haveRL, haveSL = plog.NewLogs(), 0, false, false
				}
				if !haveRL {
					orl = cur.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(orl.Resource())
					orl.SetSchemaUrl(rl.SchemaUrl())
					haveRL = true
				}
				if !haveSL {
					osl = orl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(osl.Scope())
					osl.SetSchemaUrl(sl.SchemaUrl())
					haveSL = true
				}
				lrs.At(li).CopyTo(osl.LogRecords().AppendEmpty())
				count++
			}
		}
	}
	if count > 0 {
		out = append(out, cur)
	}
	return out
}

// addLabels sets the add_label attributes on every data point of md.
func addLabels(md pmetric.Metrics, labels [][2]string) {
	if len(labels) == 0 {
		return
	}
	set := func(m pcommon.Map) {
		for _, l := range labels {
			m.PutStr(l[0], l[1])
		}
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for d := 0; d < m.Gauge().DataPoints().Len(); d++ {
						set(m.Gauge().DataPoints().At(d).Attributes())
					}
				case pmetric.MetricTypeSum:
					for d := 0; d < m.Sum().DataPoints().Len(); d++ {
						set(m.Sum().DataPoints().At(d).Attributes())
					}
				case pmetric.MetricTypeHistogram:
					for d := 0; d < m.Histogram().DataPoints().Len(); d++ {
						set(m.Histogram().DataPoints().At(d).Attributes())
					}
				case pmetric.MetricTypeExponentialHistogram:
					for d := 0; d < m.ExponentialHistogram().DataPoints().Len(); d++ {
						set(m.ExponentialHistogram().DataPoints().At(d).Attributes())
					}
				case pmetric.MetricTypeSummary:
					for d := 0; d < m.Summary().DataPoints().Len(); d++ {
						set(m.Summary().DataPoints().At(d).Attributes())
					}
				}
			}
		}
	}
}
