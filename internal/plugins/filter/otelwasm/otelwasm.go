// Package otelwasm is the [FILTER] Name otelwasm plugin: an OpenTelemetry
// Collector WASM processor (OTelWasm ABI, see internal/otelwasm) run on
// Floe's chunks.
//
// Logs chunks are mapped to OTLP logs (internal/otlplog, the mapping of
// Fluent Bit's out_opentelemetry), handed to the guest's consume_logs, and
// its result mapped back to events (in_opentelemetry's mapping: a group per
// scope, OTLP fields in the "otlp" metadata). Metrics and traces chunks,
// which hold OTLP protobuf already, are handed over as they are and the
// result replaces them. A processor that returns OK without calling
// set_result passes its input through (the ABI v1 rule).
//
// Keys:
//
//   - path (required): the module file.
//   - plugin_config: handed to the guest as JSON by get_plugin_config. In
//     classic configuration a JSON value (plugin_config {"actions": [...]}),
//     or dotted keys: plugin_config.actions.0.key env builds
//     {"actions": [{"key": "env"}]} — numeric path elements make arrays, a
//     value that is a JSON number, true, false or null keeps its type, a
//     repeated key makes an array, a JSON string literal ("7") is that
//     string. In YAML, maps and lists nested to any depth, as in a
//     collector config.
//   - wasm_timeout (default 5s), wasm_memory_limit (default 128M): deadline
//     of each call and cap on linear memory, as for the wasm filter.
//   - on_error (drop|keep, default keep): a chunk whose call failed (status
//     not 0, trap, timeout) is dropped or passed on unchanged.
//
// An instance that trapped, timed out or grew past 80% of its memory cap is
// closed (shutdown is called when it still can be) and replaced.
package otelwasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/otelwasm"
	"github.com/floe-io/floe/internal/otlplog"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/wasmhost"
)

// Spec describes the otelwasm filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "otelwasm",
		Desc: "OpenTelemetry Collector WASM processor (OTelWasm ABI)",
		Keys: append(otelwasm.Keys("5s"),
			plugin.Key{Name: "on_error", Default: "keep", Enum: []string{"drop", "keep"}, Desc: "chunk whose call failed: drop it or pass it on unchanged"},
		),
		// For the plugin_config.<path> keys; New refuses any other unknown key.
		AnyKey:    true,
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, _, err := load(ctx, set, p, nil)
			return err
		},
	}
}

// Options are constructor settings that are not configuration keys.
type Options struct {
	PoolSize int               // instances (chunks filtered at once); default 2
	Runtime  *wasmhost.Runtime // nil: the process-wide runtime
}

type settings = otelwasm.Settings

func pluginConfig(p *plugin.Props) ([]byte, error) { return otelwasm.ConfigJSON(p) }

func load(ctx context.Context, set plugin.Settings, p *plugin.Props, rt *wasmhost.Runtime) (settings, *otelwasm.Plugin, error) {
	// Logs always; metrics and traces are checked at run time, since a
	// processor need not handle them (their chunks then pass through).
	return otelwasm.Open(ctx, set, p, Spec(), rt, otelwasm.Processor, []otelwasm.Signal{otelwasm.Logs}, true)
}

// Filter is a configured otelwasm filter, safe for concurrent use.
type Filter struct {
	s    settings
	name string
	log  *slog.Logger
	base *slog.Logger
	pl   *otelwasm.Plugin
	pool *otelwasm.Pool
	opt  otlplog.Options
}

// New builds the filter with the default options.
func New(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	return NewWithOptions(ctx, set, p, Options{})
}

// NewWithOptions builds the filter: it loads and checks the module and
// makes the first instance (running start), so a bad module fails start-up.
func NewWithOptions(ctx context.Context, set plugin.Settings, p *plugin.Props, opts Options) (*Filter, error) {
	s, pl, err := load(ctx, set, p, opts.Runtime)
	if err != nil {
		return nil, err
	}
	base := set.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	name := set.DisplayName()
	if name == "" {
		name = "otelwasm"
	}
	f := &Filter{s: s, name: name, log: base.With("filter", name), base: base, pl: pl}
	f.pool, err = otelwasm.NewPool(ctx, pl, wasmhost.InstanceConfig{
		Name: name, MemoryLimit: s.MemLimit, Timeout: s.Timeout, Logger: base,
	}, opts.PoolSize, f.log)
	if err != nil {
		return nil, p.Errorf("path", "%v", err)
	}
	f.log.Debug("otelwasm filter ready", "module", s.Path, "dialect", pl.Dialect.String())
	return f, nil
}

// Close shuts the idle instances down; it waits for the busy ones.
func (f *Filter) Close(ctx context.Context) error { return f.pool.Close(ctx) }

// FilterChunk runs one chunk through the guest.
func (f *Filter) FilterChunk(ctx context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	var out []*chunk.Chunk
	err := f.pool.Do(ctx, func(inst *otelwasm.Instance) error {
		var err error
		out, err = f.run(ctx, inst, c)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, otelwasm.ErrNoInstance) {
			return nil, fmt.Errorf("otelwasm %s: %w", f.name, err)
		}
		f.log.Error("otelwasm: chunk not processed", "tag", c.Tag, "type", c.Signal(), "records", c.Records, "error", err,
			"on_error", map[bool]string{true: "keep", false: "drop"}[f.s.Keep])
		if f.s.Keep {
			return []*chunk.Chunk{c}, nil
		}
		return nil, nil
	}
	return out, nil
}

func (f *Filter) run(ctx context.Context, inst *otelwasm.Instance, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	switch c.Signal() {
	case chunk.Metrics, chunk.Traces:
		sig := otelwasm.Metrics
		if c.Signal() == chunk.Traces {
			sig = otelwasm.Traces
		}
		if !f.pl.Module.HasFunction(consumeName(f.pl, sig)) {
			return []*chunk.Chunk{c}, nil
		}
		out, called, err := inst.Consume(ctx, sig, c.Data)
		if err != nil {
			return nil, err
		}
		if !called {
			return []*chunk.Chunk{c}, nil
		}
		n, err := countOTLP(sig, out)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: append([]byte(nil), out...), Source: c.Source}}, nil
	}
	ld, _, err := otlplog.ToLogs(c.Data, &f.opt)
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", c.Tag, err)
	}
	in, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		return nil, err
	}
	out, called, err := inst.Consume(ctx, otelwasm.Logs, in)
	if err != nil {
		return nil, err
	}
	if !called {
		return []*chunk.Chunk{c}, nil
	}
	res, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(out)
	if err != nil {
		return nil, fmt.Errorf("result of the guest: %w", err)
	}
	var data []byte
	n := 0
	err = otlplog.FromLogs(res, &f.opt, 0, func(b []byte, records int) error {
		data = append(data, b...)
		n += records
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: data, Source: c.Source}}, nil
}
