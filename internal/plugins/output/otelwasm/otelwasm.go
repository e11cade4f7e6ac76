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
	"errors"
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
	s, err := otelwasm.ParseSettings(p, Spec())
	if err != nil {
		return s, nil, err
	}
	if rt == nil {
		if rt, err = wasmhost.Shared(wasmhost.DefaultCacheDir(set.Service.StoragePath), set.Logger); err != nil {
			return s, nil, err
		}
	}
	loadFn := otelwasm.Load
	if s.Timeout < 0 {
		loadFn = otelwasm.LoadTrusted
	}
	pl, err := loadFn(ctx, rt, s.Path, otelwasm.Exporter, []otelwasm.Signal{otelwasm.Logs}, s.Config)
	if err != nil {
		return s, nil, p.Errorf("path", "%v", err)
	}
	return s, pl, nil
}

// Output is a configured otelwasm output, safe for concurrent use.
type Output struct {
	s      otelwasm.Settings
	pl     *otelwasm.Plugin
	name   string
	log    *slog.Logger
	base   *slog.Logger
	stdout io.Writer
	pool   chan *otelwasm.Instance // idle instances and free slots (nil)
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
	size := opts.PoolSize
	if size <= 0 {
		size = 2
	}
	o.pool = make(chan *otelwasm.Instance, size)
	first, err := o.instantiate(ctx)
	if err != nil {
		return nil, p.Errorf("path", "%v", err)
	}
	o.pool <- first
	for range size - 1 {
		o.pool <- nil
	}
	return o, nil
}

func (o *Output) instantiate(ctx context.Context) (*otelwasm.Instance, error) {
	return o.pl.Instantiate(ctx, wasmhost.InstanceConfig{
		Name: o.name, MemoryLimit: o.s.MemLimit, Timeout: o.s.Timeout, Logger: o.base, Stdout: o.stdout,
	})
}

// Close shuts the instances down (shutdown is called on each).
func (o *Output) Close(ctx context.Context) error {
	var errs []error
	for range cap(o.pool) {
		select {
		case i := <-o.pool:
			if i != nil {
				errs = append(errs, i.Close(ctx))
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Flush exports one chunk.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	sig, data, err := o.payload(c)
	if err != nil {
		return plugin.Permanent(err)
	}
	var inst *otelwasm.Instance
	select {
	case inst = <-o.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { o.pool <- inst }()
	if inst == nil {
		if inst, err = o.instantiate(ctx); err != nil {
			inst = nil
			return fmt.Errorf("otelwasm %s: %w", o.name, err)
		}
	}
	_, _, err = inst.Consume(ctx, sig, data)
	if recycle, why := inst.Wasm().NeedsRecycle(); recycle {
		o.log.Warn("otelwasm: replacing instance", "reason", why)
		_ = inst.Close(context.WithoutCancel(ctx))
		inst = nil
	}
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
