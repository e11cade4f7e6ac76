package outputtest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
)

// The metrics contract holds an output of metrics chunks (OTLP
// ExportMetricsServiceRequest) to the same promises as the logs contract:
// every data point arrives once, a transient failure is a retry, a permanent
// one is plugin.Permanent, and a restarted sink is reached again. Each data
// point of MetricsChunk is one gauge point of metric SeqMetric with the
// attribute (label) "seq" = N and the value N, so a sink reports what it
// holds as seqs whatever its protocol (OTLP, Remote Write, a scrape).

// SeqMetric is the name of the gauge MetricsChunk builds.
const SeqMetric = "contract_seq"

// MetricsSink is the far side of a metrics output in a test.
type MetricsSink interface {
	// Config gives the output's "key value" lines that point it at this sink.
	Config() []string
	// Seqs returns the "seq" attribute of every SeqMetric data point the
	// sink holds, duplicates included (a sink that keeps only the latest
	// value per series, as a scrape does, cannot show duplicates).
	Seqs(t testing.TB) []int64
	// Inject makes the sink fail the next request with f; false when the
	// protocol has no such answer, and the contract skips the case.
	Inject(f Fault) bool
	// Restart drops every connection and listens again on the same address;
	// false when there is nothing to restart (the output is the server).
	Restart(t testing.TB) bool
}

// Opener is implemented by sinks that need the opened output, such as a
// scraper that must learn the address an exporter listens on.
type Opener interface {
	Opened(t testing.TB, out plugin.Output)
}

// RunMetrics runs the metrics contract on spec's output against sinks made
// by newSink, one fresh sink per case.
func RunMetrics(t *testing.T, spec *plugin.Spec, newSink func(t *testing.T) MetricsSink, o Options) {
	if o.Settle == 0 {
		o.Settle = 10 * time.Second
	}
	if o.Attempts == 0 {
		o.Attempts = 10
	}
	openM := func(t *testing.T, s MetricsSink) plugin.Output {
		out := open(t, spec, s)
		if op, ok := s.(Opener); ok {
			op.Opened(t, out)
		}
		return out
	}
	o.run(t, "OpenClose", func(t *testing.T) {
		s := newSink(t)
		out := openM(t, s)
		if err := plugin.Close(context.Background(), out); err != nil {
			t.Fatalf("close without a flush: %v", err)
		}
	})
	o.run(t, "DeliverEveryPointOnce", func(t *testing.T) {
		s := newSink(t)
		out := openM(t, s)
		defer closeOut(t, out)
		var want []int64
		for i := range 20 {
			if err := out.Flush(context.Background(), MetricsChunk(t, int64(i*50), 50)); err != nil {
				t.Fatalf("flush metrics chunk %d: %v", i, err)
			}
			want = append(want, seqRange(int64(i*50), 50)...)
		}
		expectOnce(t, s, want, o.Settle)
	})
	for _, f := range []Fault{Transient, Permanent} {
		o.run(t, "Fault_"+f.String(), func(t *testing.T) {
			s := newSink(t)
			out := openM(t, s)
			defer closeOut(t, out)
			if err := out.Flush(context.Background(), MetricsChunk(t, 0, 10)); err != nil {
				t.Fatalf("flush before the fault: %v", err)
			}
			if !s.Inject(f) {
				t.Skipf("the sink has no %s failure", f)
			}
			c := MetricsChunk(t, 10, 10)
			err := out.Flush(context.Background(), c)
			if err == nil {
				t.Fatalf("flush answered OK although the sink failed it (%s)", f)
			}
			if got := plugin.IsPermanent(err); got != (f == Permanent) {
				t.Fatalf("%s failure answered with permanent=%v: %v", f, got, err)
			}
			want := seqRange(0, 10)
			if f == Transient {
				if h, ok := s.(Healer); ok {
					h.Heal(t)
				}
				flushUntilOK(t, out, c, o.Attempts)
				want = append(want, seqRange(10, 10)...)
			}
			expectOnce(t, s, want, o.Settle)
		})
	}
	o.run(t, "ReconnectAfterRestart", func(t *testing.T) {
		s := newSink(t)
		out := openM(t, s)
		defer closeOut(t, out)
		if err := out.Flush(context.Background(), MetricsChunk(t, 0, 25)); err != nil {
			t.Fatalf("flush before the restart: %v", err)
		}
		expectOnce(t, s, seqRange(0, 25), o.Settle)
		if !s.Restart(t) {
			t.Skip("the sink cannot be restarted")
		}
		for i := 1; i < 4; i++ {
			flushUntilOK(t, out, MetricsChunk(t, int64(i*25), 25), o.Attempts)
		}
		expectOnce(t, s, seqRange(0, 100), o.Settle)
	})
}

// MetricsChunk builds a metrics chunk of n gauge points of SeqMetric with
// seq first..first+n-1: attribute seq = "N", value N, time 1700000000+N s,
// and an id derived from first so a re-flush carries the same id.
func MetricsChunk(t testing.TB, first int64, n int) *chunk.Chunk {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "contract")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(SeqMetric)
	dps := m.SetEmptyGauge().DataPoints()
	for i := range int64(n) {
		seq := first + i
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("seq", strconv.FormatInt(seq, 10))
		dp.SetDoubleValue(float64(seq))
		dp.SetTimestamp(pcommon.Timestamp((1700000000 + seq) * 1e9))
	}
	data, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatalf("encode metrics chunk: %v", err)
	}
	return &chunk.Chunk{
		ID:      fmt.Sprintf("contract-metrics-%d-%d", first, n),
		Tag:     "metrics",
		Type:    chunk.Metrics,
		Records: n,
		Data:    data,
		Source:  "contract.0",
	}
}

// MetricSeqs returns the seq attribute of every SeqMetric data point of md,
// for sinks that receive OTLP.
func MetricSeqs(t testing.TB, md pmetric.Metrics) []int64 {
	var out []int64
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Name() != SeqMetric || m.Type() != pmetric.MetricTypeGauge {
					continue
				}
				dps := m.Gauge().DataPoints()
				for d := 0; d < dps.Len(); d++ {
					v, ok := dps.At(d).Attributes().Get("seq")
					n, err := strconv.ParseInt(v.AsString(), 10, 64)
					if !ok || err != nil {
						t.Errorf("%s data point without a numeric seq: %v", SeqMetric, dps.At(d).Attributes().AsRaw())
						continue
					}
					out = append(out, n)
				}
			}
		}
	}
	return out
}
