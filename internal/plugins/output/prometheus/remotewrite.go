package prometheus

// prometheus_remote_write: Fluent Bit's out_prometheus_remote_write. Every
// metrics chunk becomes one Remote Write 1.0 request: a snappy-compressed
// protobuf WriteRequest POSTed with Content-Encoding snappy and
// X-Prometheus-Remote-Write-Version 0.1.0.
//
// Series, as Prometheus names what it scrapes: gauges and sums one series
// each (value as is); histograms name_bucket{le=...} (cumulative, with
// le="+Inf"), name_sum and name_count; summaries name{quantile=...},
// name_sum and name_count. Labels are __name__, the point's attributes and
// every add_label, sorted by name as the protocol requires; timestamps are
// the points' own, in milliseconds. Exponential histograms are skipped with
// a warning.
//
// Answers: 2xx is OK; 429 and 5xx are RETRY (Retry-After honoured); any
// other 4xx (out-of-order or duplicate samples, a bad label) is ERROR, as the
// remote write spec says a sender must not retry those.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	httpout "github.com/floe-io/floe/internal/plugins/output/http"
)

// RemoteWriteSpec describes the prometheus_remote_write output plugin.
func RemoteWriteSpec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput, Name: "prometheus_remote_write", Desc: "Prometheus remote write",
		Keys: []plugin.Key{
			{Name: "host", Default: "127.0.0.1", Desc: "remote write endpoint host"},
			{Name: "port", Type: plugin.Int, Default: "80", Desc: "remote write endpoint port"},
			{Name: "uri", Default: "/", Desc: "remote write path, e.g. /api/v1/write"},
			{Name: "http_user", Desc: "basic authentication user"},
			{Name: "http_passwd", Desc: "basic authentication password"},
			{Name: "header", Multi: true, Desc: "extra header 'Name value'; may repeat"},
			{Name: "add_label", Multi: true, Desc: "label added to every series, 'name value'; may repeat"},
			{Name: "log_response_payload", Type: plugin.Bool, Default: "true", Desc: "log the response body of a failed request"},
			{Name: "http.response_timeout", Type: plugin.Seconds, Default: "60s", Desc: "maximum time of one request"},
			{Name: "workers", Type: plugin.Int, Default: "2"},
		},
		NewOutput: NewRemoteWrite,
	}
}

// RemoteWrite sends metrics chunks to a remote write endpoint.
type RemoteWrite struct {
	log        *slog.Logger
	client     *http.Client
	transport  *http.Transport
	addr, url  string
	timeout    time.Duration
	user, pass string
	headers    [][2]string
	addLabels  [][2]string
	logBody    bool
}

// NewRemoteWrite builds a prometheus_remote_write output.
func NewRemoteWrite(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	o := &RemoteWrite{log: set.Logger, logBody: p.Bool("log_response_payload")}
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
		uri = "/" + uri
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
	for _, h := range p.All("header") {
		name, value, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || strings.TrimSpace(value) == "" {
			return nil, p.Errorf("header", "header %q needs a name and a value, e.g. 'X-Key value'", h)
		}
		o.headers = append(o.headers, [2]string{name, strings.TrimSpace(value)})
	}
	for _, v := range p.All("add_label") {
		name, value, ok := strings.Cut(strings.TrimSpace(v), " ")
		value = strings.TrimSpace(value)
		if !ok || name == "" || value == "" || sanitizeName(name, false) != name {
			return nil, p.Errorf("add_label", "add_label %q needs a valid label name and a value, e.g. 'app floe'", v)
		}
		o.addLabels = append(o.addLabels, [2]string{name, value})
	}
	return o, nil
}

// Close releases idle connections.
func (o *RemoteWrite) Close(context.Context) error {
	o.transport.CloseIdleConnections()
	return nil
}

// series is one time series with its samples.
type series struct {
	labels  [][2]string // sorted, __name__ included
	samples []sample
}

type sample struct {
	v  float64
	ms int64
}

// Flush converts a metrics chunk and writes it.
func (o *RemoteWrite) Flush(ctx context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Metrics {
		return plugin.Permanent(fmt.Errorf("prometheus_remote_write: %s chunks are not supported (metrics only)", c.Signal()))
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(c.Data); err != nil {
		return plugin.Permanent(fmt.Errorf("prometheus_remote_write: chunk %s is not an OTLP metrics request: %w", c.ID, err))
	}
	ss := o.flatten(req.Metrics())
	if len(ss) == 0 {
		return nil
	}
	return o.send(ctx, snappy.Encode(nil, appendWriteRequest(nil, ss)))
}

func (o *RemoteWrite) flatten(md pmetric.Metrics) []series {
	var out []series
	add := func(name string, attrs pcommon.Map, extra [2]string, v float64, ts pcommon.Timestamp) {
		set := map[string]string{}
		attrs.Range(func(k string, val pcommon.Value) bool {
			set[sanitizeName(k, false)] = val.AsString()
			return true
		})
		for _, l := range o.addLabels {
			set[l[0]] = l[1]
		}
		if extra[0] != "" {
			set[extra[0]] = extra[1]
		}
		set["__name__"] = name
		ls := make([][2]string, 0, len(set))
		for k, val := range set {
			ls = append(ls, [2]string{k, val})
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i][0] < ls[j][0] })
		out = append(out, series{labels: ls, samples: []sample{{v, int64(ts) / int64(time.Millisecond)}}})
	}
	none := [2]string{}
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				name := sanitizeName(m.Name(), true)
				if name == "" {
					continue
				}
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				case pmetric.MetricTypeHistogram:
					hs := m.Histogram().DataPoints()
					for h := range hs.Len() {
						dp := hs.At(h)
						var cum uint64
						for b := range dp.ExplicitBounds().Len() {
							if b < dp.BucketCounts().Len() {
								cum += dp.BucketCounts().At(b)
							}
							add(name+"_bucket", dp.Attributes(), [2]string{"le", formatFloat(dp.ExplicitBounds().At(b))}, float64(cum), dp.Timestamp())
						}
						add(name+"_bucket", dp.Attributes(), [2]string{"le", "+Inf"}, float64(dp.Count()), dp.Timestamp())
						add(name+"_sum", dp.Attributes(), none, dp.Sum(), dp.Timestamp())
						add(name+"_count", dp.Attributes(), none, float64(dp.Count()), dp.Timestamp())
					}
					continue
				case pmetric.MetricTypeSummary:
					qs := m.Summary().DataPoints()
					for q := range qs.Len() {
						dp := qs.At(q)
						for x := range dp.QuantileValues().Len() {
							qv := dp.QuantileValues().At(x)
							add(name, dp.Attributes(), [2]string{"quantile", formatFloat(qv.Quantile())}, qv.Value(), dp.Timestamp())
						}
						add(name+"_sum", dp.Attributes(), none, dp.Sum(), dp.Timestamp())
						add(name+"_count", dp.Attributes(), none, float64(dp.Count()), dp.Timestamp())
					}
					continue
				default:
					o.log.Warn("prometheus_remote_write: metric type not representable, skipped", "metric", m.Name(), "type", m.Type().String())
					continue
				}
				for d := range dps.Len() {
					dp := dps.At(d)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					add(name, dp.Attributes(), none, v, dp.Timestamp())
				}
			}
		}
	}
	return out
}

// formatFloat renders a bound as Prometheus does (le="0.1", le="+Inf").
func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// appendWriteRequest encodes prompb.WriteRequest by hand (the prompb
// package drags in all of Prometheus):
//
//	WriteRequest { repeated TimeSeries timeseries = 1; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }
func appendWriteRequest(b []byte, ss []series) []byte {
	for i := range ss {
		s := &ss[i]
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(seriesSize(s)))
		for _, l := range s.labels {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(labelSize(l)))
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, l[0])
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, l[1])
		}
		for _, sm := range s.samples {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(sampleSize(sm)))
			b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, math.Float64bits(sm.v))
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(sm.ms))
		}
	}
	return b
}

func labelSize(l [2]string) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(l[0])) + protowire.SizeTag(2) + protowire.SizeBytes(len(l[1]))
}

func sampleSize(s sample) int {
	return protowire.SizeTag(1) + protowire.SizeFixed64() + protowire.SizeTag(2) + protowire.SizeVarint(uint64(s.ms))
}

func seriesSize(s *series) int {
	n := 0
	for _, l := range s.labels {
		n += protowire.SizeTag(1) + protowire.SizeBytes(labelSize(l))
	}
	for _, sm := range s.samples {
		n += protowire.SizeTag(2) + protowire.SizeBytes(sampleSize(sm))
	}
	return n
}

var errResponseTimeout = errors.New("no complete response within http.response_timeout")

func (o *RemoteWrite) send(parent context.Context, body []byte) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if o.timeout > 0 {
		t := time.AfterFunc(o.timeout, func() { cancel(errResponseTimeout) })
		defer t.Stop()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return plugin.Permanent(fmt.Errorf("prometheus_remote_write: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "Fluent-Bit")
	if o.user != "" {
		req.SetBasicAuth(o.user, o.pass)
	}
	for _, h := range o.headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := o.client.Do(req)
	if err != nil {
		if perr := parent.Err(); perr != nil {
			return fmt.Errorf("prometheus_remote_write: request to %s abandoned: %w", o.addr, perr)
		}
		if errors.Is(context.Cause(ctx), errResponseTimeout) {
			err = fmt.Errorf("%w (%s)", errResponseTimeout, o.timeout)
		}
		return fmt.Errorf("prometheus_remote_write: request to %s: %w", o.addr, err)
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	st := resp.StatusCode
	if st >= 200 && st < 300 {
		return nil
	}
	msg := ""
	if o.logBody {
		msg = ": " + strings.TrimSpace(string(rb))
	}
	serr := fmt.Errorf("prometheus_remote_write: %s answered HTTP status=%d%s", o.addr, st, msg)
	return httpout.StatusAnswer(st, resp.Header, serr)
}
