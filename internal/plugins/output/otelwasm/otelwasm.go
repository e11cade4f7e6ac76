// Package otelwasm is the [OUTPUT] Name otelwasm plugin: an OpenTelemetry
// Collector WASM exporter (OTelWasm ABI, see internal/otelwasm). Each logs
// chunk is mapped to OTLP logs (out_opentelemetry's mapping, as the
// otelwasm filter does) and handed to consume_logs; metrics and traces
// chunks are handed over as the OTLP they hold. Status 0 is OK; a non-zero
// status, a trap or a timeout is RETRY (the instance is replaced when it is
// broken); a chunk that cannot be mapped, or a signal the module does not
// consume, is ERROR.
//
// Keys: path, plugin_config (as for the otelwasm filter), wasm_timeout,
// wasm_memory_limit, and out_opentelemetry's logs_body_key (repeatable)
// and logs_body_key_attributes. Instances are pooled, one per output worker.
package otelwasm

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/otelwasm"
	"github.com/floe-io/floe/internal/otlplog"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/wasmhost"
)

// Spec describes the otelwasm output.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput,
		Name: "otelwasm",
		Desc: "OpenTelemetry Collector WASM exporter (OTelWasm ABI)",
		Keys: append(otelwasm.Keys("5s"),
			plugin.Key{Name: "logs_body_key", Multi: true, Desc: "record key whose value becomes the OTLP body (repeatable, first present wins); else the whole record"},
			plugin.Key{Name: "logs_body_key_attributes", Type: plugin.Bool, Default: "false", Desc: "with a body key, the other record keys become attributes"},
		),
		AnyKey:    true, // plugin_config.<path>; ParseSettings refuses others
		NewOutput: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, _, err := load(ctx, set, p, nil)
			return err
		},
	}
}

// Options are constructor settings that are not configuration keys.
type Options struct {
	Runtime  *wasmhost.Runtime // nil: the process-wide runtime
	PoolSize int               // default 2
	Stdout   io.Writer         // guest stdout; nil: logged
}

func load(ctx context.Context, set plugin.Settings, p *plugin.Props, rt *wasmhost.Runtime) (otelwasm.Settings, *otelwasm.Plugin, error) {
	return otelwasm.Open(ctx, set, p, Spec(), rt, otelwasm.Exporter, []otelwasm.Signal{otelwasm.Logs}, true)
}

// Output is a configured otelwasm output, safe for concurrent use.
type Output struct {
	s      otelwasm.Settings
	pl     *otelwasm.Plugin
	name   string
	log    *slog.Logger
	base   *slog.Logger
	stdout io.Writer
	pool   *otelwasm.Pool
	opt    otlplog.Options
}

// New builds the output with the default options.
func New(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	return NewWithOptions(ctx, set, p, Options{})
}

// NewWithOptions loads the module and makes the first instance (running
// start), so a bad module fails start-up.
func NewWithOptions(ctx context.Context, set plugin.Settings, p *plugin.Props, opts Options) (*Output, error) {
	s, pl, err := load(ctx, set, p, opts.Runtime)
	if err != nil {
		return nil, err
	}
	base := set.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	o := &Output{s: s, pl: pl, name: set.DisplayName(), base: base, stdout: opts.Stdout}
	o.log = base.With("output", o.name)
	o.opt.BodyKeys = p.All("logs_body_key")
	o.opt.BodyKeyAttributes = p.Bool("logs_body_key_attributes")
	o.pool, err = otelwasm.NewPool(ctx, pl, wasmhost.InstanceConfig{
		Name: o.name, MemoryLimit: s.MemLimit, Timeout: s.Timeout, Logger: base, Stdout: opts.Stdout,
	}, opts.PoolSize, o.log)
	if err != nil {
		return nil, p.Errorf("path", "%v", err)
	}
	return o, nil
}

// Close shuts the instances down (shutdown is called on each).
func (o *Output) Close(ctx context.Context) error { return o.pool.Close(ctx) }

// Flush exports one chunk.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	sig, data, err := o.payload(c)
	if err != nil {
		return plugin.Permanent(err)
	}
	err = o.pool.Do(ctx, func(inst *otelwasm.Instance) error {
		_, _, err := inst.Consume(ctx, sig, data)
		return err
	})
	if err != nil {
		return fmt.Errorf("otelwasm %s: %w", o.name, err)
	}
	return nil
}

func (o *Output) payload(c *chunk.Chunk) (otelwasm.Signal, []byte, error) {
	switch c.Signal() {
	case chunk.Metrics, chunk.Traces:
		sig := otelwasm.Metrics
		if c.Signal() == chunk.Traces {
			sig = otelwasm.Traces
		}
		if !o.pl.Module.HasFunction(o.pl.ConsumeExport(sig)) {
			return 0, nil, fmt.Errorf("otelwasm %s: module %s does not export %s", o.name, o.pl.Module.Name(), o.pl.ConsumeExport(sig))
		}
		return sig, c.Data, nil
	}
	ld, _, err := otlplog.ToLogs(c.Data, &o.opt)
	if err != nil {
		return 0, nil, fmt.Errorf("chunk %s: %w", c.Tag, err)
	}
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	return otelwasm.Logs, b, err
}
