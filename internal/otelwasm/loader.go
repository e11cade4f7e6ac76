package otelwasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/wasmhost"
)

// Open is what every otelwasm plugin does first: read spec's keys from p,
// find the runtime (rt, else the process-wide one with its compilation
// cache), and load and check the module for role and signals — without the
// termination checks when wasm_timeout is 0 and trusted allows it (a
// receiver runs without a deadline anyway). Module errors name the path key.
func Open(ctx context.Context, set plugin.Settings, p *plugin.Props, spec *plugin.Spec, rt *wasmhost.Runtime, role Role, signals []Signal, trusted bool) (Settings, *Plugin, error) {
	s, err := ParseSettings(p, spec)
	if err != nil {
		return s, nil, err
	}
	if rt == nil {
		if rt, err = wasmhost.Shared(wasmhost.DefaultCacheDir(set.Service.StoragePath), set.Logger); err != nil {
			return s, nil, err
		}
	}
	loadFn := Load
	if trusted && s.Timeout < 0 {
		// No deadline: code without the termination checks runs faster.
		loadFn = LoadTrusted
	}
	pl, err := loadFn(ctx, rt, s.Path, role, signals, s.Config)
	if err != nil {
		return s, nil, p.Errorf("path", "%v", err)
	}
	return s, pl, nil
}

// Pool holds up to size instances of a plugin, made on demand; each is used
// by one caller at a time. An instance that NeedsRecycle after a call is
// closed and replaced by the next caller.
type Pool struct {
	pl    *Plugin
	cfg   wasmhost.InstanceConfig
	log   *slog.Logger
	slots chan *Instance // idle instances and free slots (nil)
}

// NewPool makes the pool and its first instance (running the guest's
// start), so a module that cannot start fails now.
func NewPool(ctx context.Context, pl *Plugin, cfg wasmhost.InstanceConfig, size int, log *slog.Logger) (*Pool, error) {
	if size <= 0 {
		size = 2
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{pl: pl, cfg: cfg, log: log, slots: make(chan *Instance, size)}
	first, err := pl.Instantiate(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p.slots <- first
	for range size - 1 {
		p.slots <- nil
	}
	return p, nil
}

// ErrNoInstance wraps the error of Do when no instance could be made (the
// chunk never reached the guest).
var ErrNoInstance = errors.New("no instance of the module")

// Do runs fn with an instance of the pool, waiting for one when all are
// busy. fn's error is returned as is; failing to make an instance is an
// error matching ErrNoInstance.
func (p *Pool) Do(ctx context.Context, fn func(*Instance) error) error {
	var inst *Instance
	select {
	case inst = <-p.slots:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.slots <- inst }()
	if inst == nil {
		var err error
		if inst, err = p.pl.Instantiate(ctx, p.cfg); err != nil {
			inst = nil
			return fmt.Errorf("%w: %w", ErrNoInstance, err)
		}
	}
	err := fn(inst)
	if recycle, why := inst.Wasm().NeedsRecycle(); recycle {
		p.log.Warn("otelwasm: replacing instance", "reason", why)
		_ = inst.Close(context.WithoutCancel(ctx))
		inst = nil
	}
	return err
}

// Close shuts the instances down (the guest's shutdown runs on each); it
// waits for the busy ones.
func (p *Pool) Close(ctx context.Context) error {
	var errs []error
	for range cap(p.slots) {
		select {
		case i := <-p.slots:
			if i != nil {
				errs = append(errs, i.Close(ctx))
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}
