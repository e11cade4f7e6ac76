// Package otelwasm is the [INPUT] Name otelwasm plugin: an OpenTelemetry
// Collector WASM receiver (OTelWasm ABI, see internal/otelwasm). The
// guest's start_logs_receiver export runs for the input's whole life in an
// instance of its own, without a deadline; every batch it passes to
// set_result_logs becomes events (in_opentelemetry's mapping: a group per
// scope, OTLP fields in the "otlp" metadata), written synchronously, so a
// paused pipeline holds the guest (backpressure). When Floe stops,
// get_shutdown_requested turns 1 and the guest has wasm_timeout (default
// 5s) to return before it is stopped. Logs only.
//
// Keys: path, plugin_config (as for the otelwasm filter), wasm_timeout,
// wasm_memory_limit, tag.
package otelwasm

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/collector/pdata/plog"

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
		Desc:     "OpenTelemetry Collector WASM receiver (OTelWasm ABI), logs",
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
	s, err := otelwasm.ParseSettings(p, Spec())
	if err != nil {
		return s, nil, err
	}
	if rt == nil {
		if rt, err = wasmhost.Shared(wasmhost.DefaultCacheDir(set.Service.StoragePath), set.Logger); err != nil {
			return s, nil, err
		}
	}
	pl, err := otelwasm.Load(ctx, rt, s.Path, otelwasm.Receiver, []otelwasm.Signal{otelwasm.Logs}, s.Config)
	if err != nil {
		return s, nil, p.Errorf("path", "%v", err)
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

// Run runs the receiver until ctx ends.
func (in *Input) Run(ctx context.Context, w plugin.Writer) error {
	inst, err := in.pl.Instantiate(ctx, wasmhost.InstanceConfig{
		Name: in.name, MemoryLimit: in.s.MemLimit, Timeout: -1, Logger: in.base,
	})
	if err != nil {
		return fmt.Errorf("otelwasm %s: %w", in.name, err)
	}
	defer func() { _ = inst.Close(context.WithoutCancel(ctx)) }()
	grace := in.s.Timeout
	opt := &otlplog.Options{}
	err = inst.Receive(ctx, otelwasm.Logs, grace, func(b []byte) error {
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
		if err != nil {
			return fmt.Errorf("batch from the guest: %w", err)
		}
		return otlplog.FromLogs(ld, opt, 0, func(data []byte, records int) error {
			_, err := w.Write(ctx, in.tag, data, records)
			return err
		})
	})
	plugin.FlushWriter(w)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("otelwasm %s: %w", in.name, err)
	}
	if err != nil {
		in.log.Debug("otelwasm receiver stopped", "error", err)
	}
	return nil
}
