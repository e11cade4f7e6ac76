package opentelemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	httpout "github.com/floe-io/floe/internal/plugins/output/http"
)

// httpSender speaks OTLP/HTTP.
type httpSender struct {
	client    *http.Client
	transport *http.Transport
}

var errResponseTimeout = errors.New("no complete response within http.response_timeout")

// zstdEncoder is shared: EncodeAll is safe for concurrent use.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

// maxResponse bounds what is read of an answer.
const maxResponse = 64 << 10

func (h *httpSender) export(parent context.Context, o *Output, r request) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if o.timeout > 0 {
		t := time.AfterFunc(o.timeout, func() { cancel(errResponseTimeout) })
		defer t.Stop()
	}
	body, encoding := r.body, ""
	switch {
	case o.gzip:
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("opentelemetry %s: gzip: %w", o.name, err)
		}
		body, encoding = zb.Bytes(), "gzip"
	case o.zstd:
		body, encoding = zstdEncoder.EncodeAll(body, nil), "zstd"
	}
	target := o.signal(r.sig).url
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return plugin.Permanent(fmt.Errorf("opentelemetry %s: %w", o.name, err))
	}
	if o.json {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/x-protobuf")
	}
	req.Header.Set("User-Agent", "Fluent-Bit")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if o.user != "" {
		req.SetBasicAuth(o.user, o.pass)
	}
	for _, hd := range o.headers {
		req.Header.Add(hd[0], hd[1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if perr := parent.Err(); perr != nil {
			return fmt.Errorf("opentelemetry %s: export to %s abandoned: %w", o.name, target, perr)
		}
		if errors.Is(context.Cause(ctx), errResponseTimeout) {
			err = fmt.Errorf("%w (%s)", errResponseTimeout, o.timeout)
		}
		return fmt.Errorf("opentelemetry %s: export to %s: %w", o.name, target, err)
	}
	rb, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	st := resp.StatusCode
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if st >= 200 && st < 300 {
		if rerr == nil {
			o.httpPartial(r.sig, ctype, rb)
		}
		return nil
	}
	msg := errorMessage(ctype, rb)
	serr := fmt.Errorf("opentelemetry %s: %s answered HTTP status=%d: %s", o.name, target, st, msg)
	switch {
	case st == http.StatusTooManyRequests || st == http.StatusBadGateway ||
		st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout:
		if d, ok := httpout.RetryAfter(resp.Header.Get("Retry-After")); ok {
			return plugin.Throttle(serr, d)
		}
		return serr
	case st >= 400 && st < 500 && st != http.StatusRequestTimeout:
		if o.logBody {
			o.log.Error("opentelemetry: export refused, the chunk will be dead-lettered", "signal", r.sig, "records", r.records, "status", st, "response", msg)
		}
		return plugin.Permanent(serr)
	}
	// 408 and the 5xx the OTLP specification does not name: retried, as
	// Fluent Bit does, since a receiver error is more often passing than not.
	return serr
}

// httpPartial reads the Export*ServiceResponse of a 2xx answer, in the
// encoding the receiver declared, for its partial success.
func (o *Output) httpPartial(sig, ctype string, body []byte) {
	if len(body) == 0 {
		return
	}
	isJSON := ctype == "application/json"
	unmarshal := func(proto func([]byte) error, json func([]byte) error) bool {
		if isJSON {
			return json(body) == nil
		}
		return proto(body) == nil
	}
	switch sig {
	case chunk.Logs:
		resp := plogotlp.NewExportResponse()
		if unmarshal(resp.UnmarshalProto, resp.UnmarshalJSON) {
			ps := resp.PartialSuccess()
			o.partial(sig, ps.RejectedLogRecords(), ps.ErrorMessage())
		}
	case chunk.Metrics:
		resp := pmetricotlp.NewExportResponse()
		if unmarshal(resp.UnmarshalProto, resp.UnmarshalJSON) {
			ps := resp.PartialSuccess()
			o.partial(sig, ps.RejectedDataPoints(), ps.ErrorMessage())
		}
	case chunk.Traces:
		resp := ptraceotlp.NewExportResponse()
		if unmarshal(resp.UnmarshalProto, resp.UnmarshalJSON) {
			ps := resp.PartialSuccess()
			o.partial(sig, ps.RejectedSpans(), ps.ErrorMessage())
		}
	}
}

// errorMessage is the message of an OTLP/HTTP error answer: the
// google.rpc.Status a receiver sends in protobuf, else the body as text.
func errorMessage(ctype string, body []byte) string {
	if ctype == "application/x-protobuf" {
		var st spb.Status
		if proto.Unmarshal(body, &st) == nil && st.GetMessage() != "" {
			return st.GetMessage()
		}
	}
	return strings.TrimSpace(string(body))
}
