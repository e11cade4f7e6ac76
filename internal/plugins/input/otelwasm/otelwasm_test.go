package otelwasm

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/wasmhost"
)

const guest = "../../../otelwasm/testdata/recvexp.wasm"

// A Go ABI v1 receiver guest produces records, written as events.
func TestReceiverProducesRecords(t *testing.T) {
	rt, err := wasmhost.New(context.Background(), wasmhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	in, err := NewWithOptions(context.Background(), plugin.Settings{Name: "otelwasm.0"},
		plugintest.Props(Spec(), "path "+guest, "plugin_config.count 40", "plugin_config.batch 7", "tag wasm.in"),
		Options{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	w := &plugintest.Writer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		w.Mu.Lock()
		n := 0
		for _, wr := range w.Writes {
			n += wr.Records
		}
		w.Mu.Unlock()
		if n >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records after 60s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Each write is a scope group: start, records, end; Records counts
	// the log records only, as the opentelemetry input does.
	seen := map[string]int{}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	for i, wr := range w.Writes {
		n := 0
		it := event.NewIter(wr.Data)
		for it.Next() {
			raw := it.Event()
			if raw.Kind() != event.KindRecord {
				continue
			}
			ev, err := raw.Decode()
			if err != nil {
				t.Fatal(err)
			}
			n++
			v, _ := ev.Body.Get("log")
			seen[fmt.Sprint(v)]++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != wr.Records {
			t.Errorf("write %d holds %d records, says %d", i, n, wr.Records)
		}
	}
	for i := range 40 {
		if k := fmt.Sprintf("record %d", i); seen[k] != 1 {
			t.Errorf("%s seen %d times", k, seen[k])
		}
	}
	if len(seen) != 40 {
		t.Errorf("%d distinct records, want 40", len(seen))
	}
	for _, wr := range w.Writes {
		if wr.Tag != "wasm.in" {
			t.Fatalf("tag %q", wr.Tag)
		}
	}
}

func TestRefusesNonReceiver(t *testing.T) {
	_, err := New(context.Background(), plugin.Settings{Name: "otelwasm.0"},
		plugintest.Props(Spec(), "path ../../../otelwasm/testdata/attrproc.wasm"))
	if err == nil {
		t.Fatal("a module without start_logs_receiver must be refused")
	}
}

// signalWriter takes metrics and traces chunks as the pipeline's writer does.
type signalWriter struct {
	plugintest.Writer
	mu      sync.Mutex
	signals []signalWrite
}

type signalWrite struct {
	signal, tag string
	data        []byte
	records     int
}

func (w *signalWriter) WriteSignal(ctx context.Context, signal, tag string, data []byte, records int) (plugin.Receipt, error) {
	w.mu.Lock()
	w.signals = append(w.signals, signalWrite{signal, tag, data, records})
	w.mu.Unlock()
	return w.Writer.Write(ctx, tag, nil, 0)
}

func (w *signalWriter) count(signal string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.signals {
		if s.signal == signal {
			n += s.records
		}
	}
	return n
}

// A guest with start_metrics_receiver and start_traces_receiver produces
// metrics and traces chunks (OTLP protobuf, records = data points / spans),
// both receivers running side by side; a pipeline without signal chunks is
// refused at Run.
func TestReceiverMetricsAndTraces(t *testing.T) {
	rt, err := wasmhost.New(context.Background(), wasmhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	in, err := NewWithOptions(context.Background(), plugin.Settings{Name: "otelwasm.0"},
		plugintest.Props(Spec(), "path ../../../otelwasm/testdata/recvsig.wasm", "plugin_config.count 12", "plugin_config.batch 5", "tag sig"),
		Options{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Run(context.Background(), &plugintest.Writer{}); err == nil || !strings.Contains(err.Error(), "cannot take metrics chunks") {
		t.Fatalf("logs-only writer: %v", err)
	}
	w := &signalWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	deadline := time.Now().Add(60 * time.Second)
	for w.count(chunk.Metrics) < 12 || w.count(chunk.Traces) < 12 {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d data points, %d spans", w.count(chunk.Metrics), w.count(chunk.Traces))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	points := map[int64]int{}
	spans := map[string]int{}
	for _, s := range w.signals {
		if s.tag != "sig" {
			t.Errorf("tag %q", s.tag)
		}
		switch s.signal {
		case chunk.Metrics:
			md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(s.data)
			if err != nil {
				t.Fatal(err)
			}
			if md.DataPointCount() != s.records {
				t.Errorf("metrics chunk of %d data points says %d", md.DataPointCount(), s.records)
			}
			dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
			for i := range dps.Len() {
				points[dps.At(i).IntValue()]++
			}
		case chunk.Traces:
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(s.data)
			if err != nil {
				t.Fatal(err)
			}
			if td.SpanCount() != s.records {
				t.Errorf("traces chunk of %d spans says %d", td.SpanCount(), s.records)
			}
			ss := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			for i := range ss.Len() {
				spans[ss.At(i).Name()]++
			}
		default:
			t.Errorf("signal %q", s.signal)
		}
	}
	for i := range 12 {
		if points[int64(i)] != 1 || spans[fmt.Sprintf("span %d", i)] != 1 {
			t.Errorf("data point %d seen %d times, span %d %d times", i, points[int64(i)], i, spans[fmt.Sprintf("span %d", i)])
		}
	}
	if len(points) != 12 || len(spans) != 12 {
		t.Errorf("%d data points, %d spans, want 12 each", len(points), len(spans))
	}
}
