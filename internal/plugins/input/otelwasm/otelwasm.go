// Package otelwasm is the [INPUT] Name otelwasm plugin: an OpenTelemetry
// Collector WASM receiver (OTelWasm ABI, see internal/otelwasm). Each
// receiver export the guest has — start_logs_receiver,
// start_metrics_receiver, start_traces_receiver — runs for the input's
// whole life in an instance of its own, without a deadline. Every batch
// passed to set_result_logs becomes events (in_opentelemetry's mapping: a
// group per scope, OTLP fields in the "otlp" metadata); every batch passed
// to set_result_metrics / set_result_traces becomes a metrics / traces
// chunk holding that OTLP message, as the opentelemetry input writes them
// (records: data points / spans). Writes are synchronous, so a paused
// pipeline holds the guest (backpressure). When Floe stops,
// get_shutdown_requested turns 1 and the guest has wasm_timeout (default
// 5s) to return before it is stopped.
//
// Keys: path, plugin_config (as for the otelwasm filter), wasm_timeout,
// wasm_memory_limit, tag.
package otelwasm

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/otelwasm"
	"github.com/floe-io/floe/internal/otlplog"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/wasmhost"
)

// Spec describes the otelwasm input.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind:     plugin.KindInput,
		Name:     "otelwasm",
		Desc:     "OpenTelemetry Collector WASM receiver (OTelWasm ABI): logs, metrics, traces",
		Keys:     otelwasm.Keys("5s"),
		AnyKey:   true, // plugin_config.<path>; ParseSettings refuses others
		NewInput: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, _, err := load(ctx, set, p, nil)
			return err
		},
	}
}

// Options are constructor settings that are not configuration keys.
type Options struct {
	Runtime *wasmhost.Runtime // nil: the process-wide runtime
}

func load(ctx context.Context, set plugin.Settings, p *plugin.Props, rt *wasmhost.Runtime) (otelwasm.Settings, *otelwasm.Plugin, error) {
	// Compiled with the termination checks although the receiver runs
	// without a deadline: they are what stops a guest ignoring shutdown.
	s, pl, err := otelwasm.Open(ctx, set, p, Spec(), rt, otelwasm.Receiver, nil, false)
	if err != nil {
		return s, nil, err
	}
	if len(pl.Receivers()) == 0 {
		return s, nil, p.Errorf("path", "wasm module %s exports no receiver (%s, %s nor %s): not an OTelWasm receiver", s.Path,
			pl.ReceiverExport(otelwasm.Logs), pl.ReceiverExport(otelwasm.Metrics), pl.ReceiverExport(otelwasm.Traces))
	}
	return s, pl, nil
}

// Input is a configured otelwasm input.
type Input struct {
	s    otelwasm.Settings
	pl   *otelwasm.Plugin
	name string
	tag  string
	log  *slog.Logger
	base *slog.Logger
}

// New builds the input with the default options.
func New(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	return NewWithOptions(ctx, set, p, Options{})
}

// NewWithOptions loads and checks the module; Run instantiates it.
func NewWithOptions(ctx context.Context, set plugin.Settings, p *plugin.Props, opts Options) (*Input, error) {
	s, pl, err := load(ctx, set, p, opts.Runtime)
	if err != nil {
		return nil, err
	}
	base := set.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	in := &Input{s: s, pl: pl, name: set.DisplayName(), tag: p.String("tag"), base: base}
	if in.tag == "" {
		in.tag = set.Name
	}
	in.log = base.With("input", in.name)
	return in, nil
}

// SignalWriter is the pipeline writer's method for metrics and traces
// chunks (OTLP protobuf), as the opentelemetry input uses it.
type SignalWriter interface {
	WriteSignal(ctx context.Context, signal, tag string, data []byte, records int) (plugin.Receipt, error)
}

// Run runs the guest's receivers until ctx ends; one that fails stops the
// others.
func (in *Input) Run(ctx context.Context, w plugin.Writer) error {
	sigs := in.pl.Receivers()
	sw, _ := w.(SignalWriter)
	for _, sig := range sigs {
		if sig != otelwasm.Logs && sw == nil {
			return fmt.Errorf("otelwasm %s: the module receives %s, and this pipeline cannot take %s chunks", in.name, sig, sig)
		}
	}
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make(chan error, len(sigs))
	for _, sig := range sigs {
		go func() {
			err := in.receive(ctx, sig, w, sw)
			if err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("%s receiver: %w", sig, err)) // the others stop too
			}
			errs <- err
		}()
	}
	var first error
	for range sigs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	plugin.FlushWriter(w)
	if parent.Err() == nil && ctx.Err() != nil {
		return fmt.Errorf("otelwasm %s: %w", in.name, context.Cause(ctx))
	}
	if first != nil {
		in.log.Debug("otelwasm receiver stopped", "error", first)
	}
	return nil
}

// receive runs sig's receiver in an instance of its own until ctx ends.
func (in *Input) receive(ctx context.Context, sig otelwasm.Signal, w plugin.Writer, sw SignalWriter) error {
	inst, err := in.pl.Instantiate(ctx, wasmhost.InstanceConfig{
		Name: in.name, MemoryLimit: in.s.MemLimit, Timeout: -1, Logger: in.base,
	})
	if err != nil {
		return err
	}
	defer func() { _ = inst.Close(context.WithoutCancel(ctx)) }()
	grace := in.s.Timeout
	var emit func(b []byte) error
	switch sig {
	case otelwasm.Logs:
		opt := &otlplog.Options{}
		emit = func(b []byte) error {
			ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
			if err != nil {
				return fmt.Errorf("logs batch from the guest: %w", err)
			}
			return otlplog.FromLogs(ld, opt, 0, func(data []byte, records int) error {
				_, err := w.Write(ctx, in.tag, data, records)
				return err
			})
		}
	case otelwasm.Metrics:
		emit = func(b []byte) error {
			md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
			if err != nil {
				return fmt.Errorf("metrics batch from the guest: %w", err)
			}
			return in.writeSignal(ctx, sw, chunk.Metrics, b, md.DataPointCount())
		}
	case otelwasm.Traces:
		emit = func(b []byte) error {
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
			if err != nil {
				return fmt.Errorf("traces batch from the guest: %w", err)
			}
			return in.writeSignal(ctx, sw, chunk.Traces, b, td.SpanCount())
		}
	}
	return inst.Receive(ctx, sig, grace, emit)
}

// writeSignal writes one OTLP message as a chunk of its own; b belongs to
// the guest, so it is copied. An empty batch writes nothing.
func (in *Input) writeSignal(ctx context.Context, sw SignalWriter, signal string, b []byte, records int) error {
	if records == 0 {
		return nil
	}
	_, err := sw.WriteSignal(ctx, signal, in.tag, append([]byte(nil), b...), records)
	return err
}
