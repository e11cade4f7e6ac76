package otelwasm

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultShutdownGrace is how long Receive waits, once its context ends,
// for the receiver export to notice get_shutdown_requested and return
// before stopping it (the upstream SDK polls the flag once a second).
const DefaultShutdownGrace = 5 * time.Second

// Receive runs the receiver export for sig, which blocks for the
// component's life, calling emit with each OTLP batch the guest passes to
// set_result_*, synchronously (emit blocking holds the guest: backpressure).
// The bytes are valid during emit only. When ctx ends, get_shutdown_requested
// turns 1; a guest that has not returned within grace (0: the default) is
// stopped. An emit error traps the guest and ends Receive with it. The
// instance must have been made with no deadline (InstanceConfig.Timeout < 0)
// and is not to be used for anything else; Close it afterwards.
func (i *Instance) Receive(ctx context.Context, sig Signal, grace time.Duration, emit func([]byte) error) error {
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	fn := i.p.n.receiver[sig.idx()]
	var emitErr error
	i.st.onResult = func(s Signal, b []byte) error {
		if s != sig {
			return fmt.Errorf("a %s batch from a %s receiver", s, sig)
		}
		if err := emit(b); err != nil {
			emitErr = err
			return err
		}
		return nil
	}
	defer func() { i.st.onResult = nil }()
	// The call runs under its own context: ending ctx asks the guest to
	// stop; only after grace is the call itself cancelled.
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		i.st.shutdown.Store(true)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-callCtx.Done():
		}
	})
	defer stop()
	err := i.call(callCtx, fn, 0)
	if emitErr != nil {
		return emitErr
	}
	if err != nil {
		if ctx.Err() != nil && callCtx.Err() != nil {
			return fmt.Errorf("wasm module %s: %s did not return within %s of the shutdown request: stopped", i.p.Module.Name(), fn, grace)
		}
		return err
	}
	if ctx.Err() == nil {
		return errors.New("wasm module " + i.p.Module.Name() + ": " + fn + " returned before shutdown was requested")
	}
	return nil
}

// Receivers are the signals whose receiver export (start_logs_receiver,
// start_metrics_receiver, start_traces_receiver in the module's dialect)
// the module has with the right signature, in the order logs, metrics,
// traces.
func (p *Plugin) Receivers() []Signal {
	var out []Signal
	for _, s := range []Signal{Logs, Metrics, Traces} {
		if p.Module.CheckFunction(p.n.receiver[s.idx()], noTypes, noTypes) == nil {
			out = append(out, s)
		}
	}
	return out
}

// ReceiverExport is the name of sig's receiver export in the module's dialect.
func (p *Plugin) ReceiverExport(sig Signal) string { return p.n.receiver[sig.idx()] }
