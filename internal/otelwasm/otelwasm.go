// Package otelwasm runs OpenTelemetry Collector WASM components (the
// OTelWasm ABI, ../shared/spec/otelwasm.md) on Floe's wasmhost: the same
// wazero runtime, compilation cache, memory cap, call deadline and instance
// recycling as Fluent Bit's WASM filters.
//
// Three naming dialects are detected from the module's exports:
//
//   - V1: otelwasm_abi_version_0_1_0 marker, otelwasm_memory_allocate,
//     otelwasm_consume_*, otelwasm_start / otelwasm_shutdown (PR #85 final);
//   - Draft (the names of the OTelWasm ABI v1 README): abi_version_v1,
//     alloc, consume_logs|metrics|traces, start, shutdown;
//   - Legacy (otelwasm main): getSupportedTelemetry, processLogs… pulling
//     their input with currentLogs(buf, limit).
//
// A module with none of the markers is refused, naming abi_version_v1. The
// host module is instantiated under both "opentelemetry.io/wasm" (what the
// upstream code imports) and "otelwasm" (what the v1 document names), with
// the union of the three dialects' imports. Every host function finds its
// per-call state in the call's context, so one host module serves every
// instance.
//
// Unlike upstream's host: get_plugin_config and current* return the real
// size when it exceeds the guest's buffer (upstream returns 0, which the
// guest reads as empty); every set_result_* batch of a call is kept (their
// OTLP encodings are concatenated, which protobuf merges into one message
// whose resources are the union), not just the last; calls have deadlines;
// the guest gets no host environment.
package otelwasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"

	"github.com/floe-io/floe/internal/wasmhost"
)

// Dialect is the naming of a module's exports and imports.
type Dialect int

const (
	Legacy Dialect = iota + 1 // otelwasm main: camelCase, pull model
	Draft                     // abi_version_v1, alloc, consume_*
	V1                        // otelwasm_ prefixed
)

func (d Dialect) String() string {
	switch d {
	case Legacy:
		return "legacy"
	case Draft:
		return "v1"
	case V1:
		return "v1 (otelwasm_ prefix)"
	}
	return "unknown"
}

// Signal is a telemetry type, with the ABI's bit values.
type Signal uint32

const (
	Metrics Signal = 1
	Logs    Signal = 2
	Traces  Signal = 4
)

func (s Signal) String() string {
	switch s {
	case Metrics:
		return "metrics"
	case Logs:
		return "logs"
	case Traces:
		return "traces"
	}
	return fmt.Sprintf("signal(%d)", uint32(s))
}

func (s Signal) idx() int {
	switch s {
	case Metrics:
		return 1
	case Traces:
		return 2
	}
	return 0
}

// Role is what the component does.
type Role int

const (
	Processor Role = iota + 1
	Exporter
	Receiver
)

// names are a dialect's exports; per-signal arrays are indexed logs,
// metrics, traces (Signal.idx).
type names struct {
	marker, alloc, start, shutdown, supported string
	consume, receiver, process, push          [3]string
}

var dialectNames = map[Dialect]names{
	Draft: {
		marker: "abi_version_v1", alloc: "alloc", start: "start", shutdown: "shutdown",
		supported: "get_supported_telemetry",
		consume:   [3]string{"consume_logs", "consume_metrics", "consume_traces"},
		receiver:  [3]string{"start_logs_receiver", "start_metrics_receiver", "start_traces_receiver"},
	},
	V1: {
		marker: "otelwasm_abi_version_0_1_0", alloc: "otelwasm_memory_allocate",
		start: "otelwasm_start", shutdown: "otelwasm_shutdown",
		supported: "otelwasm_get_supported_telemetry",
		consume:   [3]string{"otelwasm_consume_logs", "otelwasm_consume_metrics", "otelwasm_consume_traces"},
		receiver:  [3]string{"otelwasm_start_logs_receiver", "otelwasm_start_metrics_receiver", "otelwasm_start_traces_receiver"},
	},
	Legacy: {
		supported: "getSupportedTelemetry",
		process:   [3]string{"processLogs", "processMetrics", "processTraces"},
		push:      [3]string{"pushLogs", "pushMetrics", "pushTraces"},
		receiver:  [3]string{"startLogsReceiver", "startMetricsReceiver", "startTracesReceiver"},
	},
}

// ErrNoMarker is wrapped by the error for a module with no ABI marker.
var ErrNoMarker = errors.New("OTelWasm ABI marker not exported")

var (
	i32     = []api.ValueType{api.ValueTypeI32}
	i32x2   = []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}
	i32x3   = []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}
	noTypes []api.ValueType
)

// Plugin is a compiled, checked OTelWasm module for one role and signal.
// It is safe for concurrent use; each Instance is not.
type Plugin struct {
	Module  *wasmhost.Module
	Dialect Dialect
	Role    Role
	Signals []Signal // the signals the role's exports are checked for
	Config  []byte   // plugin_config as JSON ("null" when unset)
	n       names
}

// Load compiles the module at path on rt (defining the host module there)
// and checks it for role and signals: the dialect's marker, memory, and
// each export the role needs with its signature. config is the JSON handed
// to get_plugin_config (nil: null).
func Load(ctx context.Context, rt *wasmhost.Runtime, path string, role Role, signals []Signal, config []byte) (*Plugin, error) {
	return load(ctx, rt, path, role, signals, config, false)
}

// LoadTrusted is Load for code compiled without the termination checks
// (wasmhost.CompileTrusted): faster, but calls have no deadline.
func LoadTrusted(ctx context.Context, rt *wasmhost.Runtime, path string, role Role, signals []Signal, config []byte) (*Plugin, error) {
	return load(ctx, rt, path, role, signals, config, true)
}

func load(ctx context.Context, rt *wasmhost.Runtime, path string, role Role, signals []Signal, config []byte, trusted bool) (*Plugin, error) {
	if err := DefineHost(ctx, rt); err != nil {
		return nil, err
	}
	compile := rt.Compile
	if trusted {
		compile = rt.CompileTrusted
	}
	mod, err := compile(ctx, path)
	if err != nil {
		return nil, err
	}
	return check(mod, role, signals, config)
}

// Detect reports the dialect of a compiled module.
func Detect(mod *wasmhost.Module) (Dialect, error) {
	switch {
	case mod.HasFunction("otelwasm_abi_version_0_1_0"):
		return V1, nil
	case mod.HasFunction("abi_version_v1"):
		return Draft, nil
	case mod.HasFunction("getSupportedTelemetry"):
		return Legacy, nil
	}
	return 0, fmt.Errorf("wasm module %s: %w: it exports no abi_version_v1 (nor otelwasm_abi_version_0_1_0, nor the legacy getSupportedTelemetry), so it is not an OTelWasm ABI v1 module", mod.Name(), ErrNoMarker)
}

func check(mod *wasmhost.Module, role Role, signals []Signal, config []byte) (*Plugin, error) {
	d, err := Detect(mod)
	if err != nil {
		return nil, err
	}
	if len(config) == 0 {
		config = []byte("null")
	}
	p := &Plugin{Module: mod, Dialect: d, Role: role, Signals: signals, Config: config, n: dialectNames[d]}
	if mod.MinMemory() == 0 && !mod.HasMemory() {
		return nil, fmt.Errorf("wasm module %s: does not export its memory (memory)", mod.Name())
	}
	req := func(name string, params, results []api.ValueType) error {
		if err := mod.CheckFunction(name, params, results); err != nil {
			return fmt.Errorf("OTelWasm %s %s module: %w", d, roleName(role), err)
		}
		return nil
	}
	if d != Legacy {
		for _, f := range []struct {
			name            string
			params, results []api.ValueType
		}{{p.n.alloc, i32, i32}, {p.n.start, noTypes, i32}, {p.n.shutdown, noTypes, i32}} {
			if err := req(f.name, f.params, f.results); err != nil {
				return nil, err
			}
		}
	} else if err := req(p.n.supported, noTypes, i32); err != nil {
		return nil, err
	}
	for _, s := range signals {
		var err error
		switch {
		case role == Receiver:
			err = req(p.n.receiver[s.idx()], noTypes, noTypes)
		case d != Legacy:
			err = req(p.n.consume[s.idx()], i32x2, i32)
		case role == Processor:
			err = req(p.n.process[s.idx()], noTypes, i32)
		default:
			err = req(p.n.push[s.idx()], noTypes, i32)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

func roleName(r Role) string {
	switch r {
	case Processor:
		return "processor"
	case Exporter:
		return "exporter"
	case Receiver:
		return "receiver"
	}
	return "component"
}

// Instance is one instantiation of a Plugin: Start has run. It must be used
// by one goroutine at a time (Receive excepted, see there).
type Instance struct {
	p     *Plugin
	inst  *wasmhost.Instance
	st    *callState
	stack [2]uint64
	fns   map[string]api.Function
}

// callState is what the host functions of one instance's calls see.
type callState struct {
	config   []byte
	input    []byte // legacy current*: the batch being processed
	inputSig Signal
	result   bytes.Buffer // concatenated set_result_* batches
	results  int
	resSig   Signal
	reason   string
	shutdown atomic.Bool
	// onResult, when set (receivers), gets each batch instead of result.
	onResult func(Signal, []byte) error
	log      func(level int, msg string)
}

type stateKey struct{}

// Instantiate makes an instance (running _initialize), checks the
// supported-telemetry bits when the module exports them and, in v1, calls
// start: a non-zero status fails with the guest's reason.
func (p *Plugin) Instantiate(ctx context.Context, cfg wasmhost.InstanceConfig) (*Instance, error) {
	inst, err := p.Module.Instantiate(ctx, cfg)
	if err != nil {
		return nil, err
	}
	i := &Instance{p: p, inst: inst, st: &callState{config: p.Config}, fns: map[string]api.Function{}}
	logger := cfg.Logger
	if logger != nil {
		mod := p.Module.BaseName()
		i.st.log = func(level int, msg string) {
			switch {
			case level >= 4:
				logger.Error(msg, "wasm", cfg.Name, "module", mod)
			case level == 3:
				logger.Warn(msg, "wasm", cfg.Name, "module", mod)
			case level == 2:
				logger.Info(msg, "wasm", cfg.Name, "module", mod)
			default:
				logger.Debug(msg, "wasm", cfg.Name, "module", mod)
			}
		}
	}
	fail := func(err error) (*Instance, error) {
		_ = inst.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if p.Module.HasFunction(p.n.supported) && p.Module.CheckFunction(p.n.supported, noTypes, i32) == nil {
		if err := i.call(ctx, p.n.supported, 0); err != nil {
			return fail(err)
		}
		bits := Signal(uint32(i.stack[0]))
		for _, s := range p.Signals {
			if bits&s == 0 {
				return fail(fmt.Errorf("wasm module %s: does not support %s (%s returned %d)", p.Module.Name(), s, p.n.supported, uint32(bits)))
			}
		}
	}
	if p.Dialect != Legacy {
		i.st.reason = ""
		if err := i.call(ctx, p.n.start, 0); err != nil {
			return fail(err)
		}
		if code := uint32(i.stack[0]); code != 0 {
			return fail(fmt.Errorf("wasm module %s: %s: %s", p.Module.Name(), p.n.start, statusText(code, i.st.reason)))
		}
	}
	return i, nil
}

// Wasm is the underlying wasmhost instance (NeedsRecycle, Broken, metrics).
func (i *Instance) Wasm() *wasmhost.Instance { return i.inst }

func (i *Instance) call(ctx context.Context, name string, nparams int) error {
	f := i.fns[name]
	if f == nil {
		if f = i.inst.Function(name); f == nil {
			return fmt.Errorf("wasm module %s: function %q is not exported", i.p.Module.Name(), name)
		}
		i.fns[name] = f
	}
	_ = nparams
	return i.inst.Call(context.WithValue(ctx, stateKey{}, i.st), name, f, i.stack[:])
}

func statusText(code uint32, reason string) string {
	name := "ERROR"
	switch code {
	case 2:
		name = "INVALID_ARGUMENT"
	case 1:
	default:
		name = fmt.Sprintf("status %d", code)
	}
	if reason == "" {
		return name
	}
	return name + ": " + reason
}

// StatusError is a non-zero status returned by the guest.
type StatusError struct {
	Module string
	Func   string
	Code   uint32
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("wasm module %s: %s: %s", e.Module, e.Func, statusText(e.Code, e.Reason))
}

// Consume hands one OTLP protobuf batch (LogsData, MetricsData or
// TracesData) of signal sig to a processor or exporter. It returns the
// concatenation of the batches the guest passed to set_result_* (one OTLP
// message, since protobuf merges concatenated messages) and whether it
// called it at all; a processor that did not, with status OK, passes its
// input through (the v1 rule). A non-zero status is a *StatusError; a
// trap, timeout or exit is a *wasmhost.CallError and leaves the instance
// broken. The result is valid until the next call.
func (i *Instance) Consume(ctx context.Context, sig Signal, data []byte) (out []byte, called bool, err error) {
	st := i.st
	st.result.Reset()
	st.results, st.resSig, st.reason = 0, sig, ""
	var fn string
	if i.p.Dialect == Legacy {
		st.input, st.inputSig = data, sig
		defer func() { st.input = nil }()
		if i.p.Role == Exporter {
			fn = i.p.n.push[sig.idx()]
		} else {
			fn = i.p.n.process[sig.idx()]
		}
	} else {
		fn = i.p.n.consume[sig.idx()]
		var ptr uint32
		if len(data) > 0 {
			i.stack[0] = uint64(len(data))
			if err := i.call(ctx, i.p.n.alloc, 1); err != nil {
				return nil, false, err
			}
			ptr = uint32(i.stack[0])
			if ptr == 0 {
				return nil, false, fmt.Errorf("wasm module %s: %s(%d) returned 0", i.p.Module.Name(), i.p.n.alloc, len(data))
			}
			if !i.inst.Write(ptr, data) {
				return nil, false, fmt.Errorf("wasm module %s: %s(%d) returned %#x, outside its memory", i.p.Module.Name(), i.p.n.alloc, len(data), ptr)
			}
		}
		i.stack[0], i.stack[1] = uint64(ptr), uint64(len(data))
	}
	if err := i.call(ctx, fn, 2); err != nil {
		return nil, false, err
	}
	if code := uint32(i.stack[0]); code != 0 {
		return nil, false, &StatusError{Module: i.p.Module.Name(), Func: fn, Code: code, Reason: st.reason}
	}
	return st.result.Bytes(), st.results > 0, nil
}

// Close calls shutdown (v1) and releases the instance. A broken instance
// is closed without calling into it.
func (i *Instance) Close(ctx context.Context) error {
	var err error
	if i.p.Dialect != Legacy && i.inst.Broken() == nil {
		if err = i.call(ctx, i.p.n.shutdown, 0); err == nil {
			if code := uint32(i.stack[0]); code != 0 {
				err = &StatusError{Module: i.p.Module.Name(), Func: i.p.n.shutdown, Code: code, Reason: i.st.reason}
			}
		}
	}
	return errors.Join(err, i.inst.Close(ctx))
}

// ConsumeExport is the export that consumes sig for the plugin's role and
// dialect (consume_logs, otelwasm_consume_logs, processLogs, pushLogs…).
func (p *Plugin) ConsumeExport(sig Signal) string {
	switch {
	case p.Dialect != Legacy:
		return p.n.consume[sig.idx()]
	case p.Role == Exporter:
		return p.n.push[sig.idx()]
	}
	return p.n.process[sig.idx()]
}
