package wasmhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

const pageSize = 65536

// Defaults of InstanceConfig, as Fluent Bit's (heap, stack) and Floe's own
// (memory limit, timeout).
const (
	DefaultHeapSize    = 8192
	DefaultStackSize   = 8192
	DefaultMemoryLimit = 128_000_000
	DefaultTimeout     = 5 * time.Second
)

// RecycleThreshold is the share of the memory cap (or of the host heap)
// past which an instance that has grown is replaced after a call.
const RecycleThreshold = 0.8

// InstanceConfig configures one instance.
type InstanceConfig struct {
	// Name identifies the instance in logs (the plugin instance name).
	Name string
	// AccessiblePaths are WASI preopened directories: each host path is
	// mounted as the same guest path, verbatim (Fluent Bit's accessible_paths).
	AccessiblePaths []string
	// HeapSize is the host heap added to linear memory when the module does
	// not export malloc and free (Fluent Bit's wasm_heap_size, at least 8192).
	HeapSize int64
	// StackSize is Fluent Bit's wasm_stack_size. wazero sizes its native
	// stack itself and the guest's shadow stack is set by its linker, so it
	// is accepted for compatibility and otherwise unused.
	StackSize int64
	// MemoryLimit caps the instance's linear memory in bytes (default
	// 128,000,000); memory.grow past it fails.
	MemoryLimit int64
	// Timeout is the deadline of each call, including _initialize and
	// _start (default 5s; negative: none).
	Timeout time.Duration
	// Stdin, Stdout and Stderr are the guest's WASI streams. Nil Stdout and
	// Stderr are logged line by line with the instance's name; nil Stdin is empty.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Args are the WASI arguments (argv, including argv[0] if wanted).
	Args []string
	// Env are WASI environment variables, "KEY=value".
	Env []string
	// Start runs the module as a WASI command during Instantiate: _start,
	// else main, __main_argc_argv or _main.
	Start bool
	// Logger receives guest output and messages; nil uses the runtime's.
	Logger *slog.Logger
}

// ErrorKind classifies a failed call.
type ErrorKind int

const (
	KindTrap        ErrorKind = iota + 1 // the guest trapped (or a host function refused)
	KindTimeout                          // the call exceeded its deadline
	KindExit                             // the guest exited (proc_exit, exit, abort)
	KindCanceled                         // the caller's context was cancelled
	KindMemoryLimit                      // memory could not grow past the cap
)

func (k ErrorKind) String() string {
	switch k {
	case KindTrap:
		return "trap"
	case KindTimeout:
		return "timeout"
	case KindExit:
		return "exit"
	case KindCanceled:
		return "canceled"
	case KindMemoryLimit:
		return "memory limit"
	}
	return "error"
}

// Sentinels for errors.Is on a *CallError.
var (
	ErrTrap        = errors.New("wasm trap")
	ErrTimeout     = errors.New("wasm call timed out")
	ErrExit        = errors.New("wasm module exited")
	ErrCanceled    = errors.New("wasm call canceled")
	ErrMemoryLimit = errors.New("wasm memory limit reached")
	// ErrBroken is returned by calls on an instance that must be replaced.
	ErrBroken = errors.New("wasm instance is broken")
)

// CallError is a failed guest call.
type CallError struct {
	Module   string // module name (path)
	Func     string
	Kind     ErrorKind
	ExitCode uint32 // KindExit
	Err      error
}

func (e *CallError) Error() string {
	switch e.Kind {
	case KindTimeout:
		return fmt.Sprintf("wasm module %s: %s: call exceeded its deadline", e.Module, e.Func)
	case KindExit:
		return fmt.Sprintf("wasm module %s: %s: module exited with code %d", e.Module, e.Func, e.ExitCode)
	}
	return fmt.Sprintf("wasm module %s: %s: %s: %v", e.Module, e.Func, e.Kind, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// Is matches the Err* sentinels by kind.
func (e *CallError) Is(target error) bool {
	switch target {
	case ErrTrap:
		return e.Kind == KindTrap
	case ErrTimeout:
		return e.Kind == KindTimeout
	case ErrExit:
		return e.Kind == KindExit
	case ErrCanceled:
		return e.Kind == KindCanceled
	case ErrMemoryLimit:
		return e.Kind == KindMemoryLimit
	}
	return false
}

// Instance is one instantiation of a module. It must be used by one
// goroutine at a time.
type Instance struct {
	module *Module
	cfg    InstanceConfig
	log    *slog.Logger
	mod    api.Module
	mem    api.Memory
	lin    *linearMemory
	cctx   *callCtx      // nil when calls cannot be stopped (trusted code, no timeout)
	out    []*LineWriter // writers to flush at Close
	stdout io.Writer     // guest stdout, also for env printf/puts/putchar

	heap        *heap        // host heap, nil when the guest allocates
	malloc      api.Function // guest allocator, nil with the host heap
	free        api.Function
	stack       [2]uint64
	startPages  uint32
	startHeap   uint32
	broken      error
	closed      bool
	exited      bool
	exitCode    uint32
	heapFailure bool // an env malloc failed since the last call started
}

// Instantiate makes an instance. Reactors have _initialize run; with
// cfg.Start the module's entry point runs to completion before it returns
// (see ExitCode). The error names the module.
func (m *Module) Instantiate(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	c := m.code
	if cfg.HeapSize < DefaultHeapSize {
		cfg.HeapSize = DefaultHeapSize
	}
	if cfg.StackSize < DefaultStackSize {
		cfg.StackSize = DefaultStackSize
	}
	if cfg.MemoryLimit <= 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = c.rt.log
	}
	limit := uint64(cfg.MemoryLimit) / pageSize * pageSize
	if limit > 65536*pageSize {
		limit = 65536 * pageSize
	}
	if need := uint64(c.memMin) * pageSize; need > limit {
		return nil, fmt.Errorf("wasm module %s: needs %d bytes of memory at start, over the memory limit of %d bytes (wasm_memory_limit)", m.name, need, cfg.MemoryLimit)
	}
	env, err := c.envModule(ctx)
	if err != nil {
		return nil, fmt.Errorf("wasm module %s: %w", m.name, err)
	}

	inst := &Instance{module: m, cfg: cfg, log: log}
	if m.Bounded() {
		inst.cctx = newCallCtx(max(cfg.Timeout, 0))
	}
	stdout, stderr := cfg.Stdout, cfg.Stderr
	if stdout == nil {
		w := NewLineWriter(log, "wasm", cfg.Name, "module", m.BaseName(), "stream", "stdout")
		inst.out = append(inst.out, w)
		stdout = w
	}
	if stderr == nil {
		w := NewLineWriter(log, "wasm", cfg.Name, "module", m.BaseName(), "stream", "stderr")
		inst.out = append(inst.out, w)
		stderr = w
	}
	inst.stdout = stdout
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdout(stdout).
		WithStderr(stderr).
		WithArgs(cfg.Args...)
	if cfg.Stdin != nil {
		mc = mc.WithStdin(cfg.Stdin)
	}
	for _, kv := range cfg.Env {
		k, v, _ := cut(kv, '=')
		mc = mc.WithEnv(k, v)
	}
	if len(cfg.AccessiblePaths) > 0 {
		fsc := wazero.NewFSConfig()
		for _, p := range cfg.AccessiblePaths {
			fsc = fsc.WithDirMount(p, p)
		}
		mc = mc.WithFSConfig(fsc)
	}

	inst.lin = &linearMemory{pool: &c.rt.mems, limit: limit}
	ictx := experimental.WithMemoryAllocator(ctx, inst.lin)
	if env != nil {
		ictx = experimental.WithImportResolver(ictx, func(name string) api.Module {
			if name == "env" {
				return env
			}
			return nil
		})
	}
	mod, err := c.eng.rt.InstantiateModule(ictx, c.compiled, mc)
	if err != nil {
		inst.flush()
		inst.lin.release()
		return nil, fmt.Errorf("wasm module %s: failed to instantiate: %w", m.name, err)
	}
	inst.mod = mod
	// A module without linear memory gives a nil *memory inside a non-nil
	// interface; keep the field nil so the nil checks below hold.
	if m := mod.Memory(); m != nil && !isNilMemory(m) {
		inst.mem = m
	}
	c.instances.Store(mod, inst)
	if c.stopChecks {
		stop, ok1 := mod.ExportedGlobal(stopGlobalName).(api.MutableGlobal)
		budget, ok2 := mod.ExportedGlobal(budgetGlobalName).(api.MutableGlobal)
		if !ok1 || !ok2 {
			_ = mod.Close(ctx)
			inst.flush()
			inst.lin.release()
			return nil, fmt.Errorf("wasm module %s: stop globals %s, %s missing after instrumentation", m.name, stopGlobalName, budgetGlobalName)
		}
		// Runs on the timer (or cancelling) goroutine while the guest
		// runs: plain stores the guest's next check loads. Zeroing the
		// budget sends it down the slow path, which looks at stop.
		inst.cctx.onFire = func() { stop.Set(1); budget.Set(0) }
	}
	fail := func(err error) (*Instance, error) {
		_ = inst.Close(context.WithoutCancel(ctx))
		return nil, err
	}

	// Guest memory management, as WAMR: the module's malloc/free when it
	// exports both with the exact signatures, else a host heap.
	mal, fre := mod.ExportedFunction("malloc"), mod.ExportedFunction("free")
	if mal != nil && fre != nil && m.exportedSig("malloc", []api.ValueType{I32}, []api.ValueType{I32}) &&
		m.exportedSig("free", []api.ValueType{I32}, nil) {
		inst.malloc, inst.free = mal, fre
	} else if inst.mem != nil {
		pages := uint32((cfg.HeapSize + pageSize - 1) / pageSize)
		old, ok := inst.mem.Grow(pages)
		if !ok {
			return fail(fmt.Errorf("wasm module %s: cannot add a %d-byte heap to its memory: over the memory limit of %d bytes", m.name, cfg.HeapSize, cfg.MemoryLimit))
		}
		base := old * pageSize
		size := uint32(cfg.HeapSize)
		if base == 0 { // keep NULL out of the heap
			base, size = 8, size-8
		}
		inst.heap = newHeap(base, size)
	}

	if mod.ExportedFunction("_initialize") != nil {
		if _, err := inst.CallFunc(ctx, "_initialize"); err != nil {
			return fail(fmt.Errorf("wasm module %s: _initialize failed: %w", m.name, err))
		}
	}
	if inst.mem != nil {
		inst.startPages = inst.mem.Size() / pageSize
	}
	if inst.heap != nil {
		inst.startHeap = inst.heap.inUse
	}
	if cfg.Start {
		if err := inst.runCommand(ctx); err != nil {
			return fail(err)
		}
	}
	return inst, nil
}

func (m *Module) exportedSig(name string, params, results []api.ValueType) bool {
	def, ok := m.code.exports[name]
	if !ok {
		return false
	}
	if _, _, imported := def.Import(); imported {
		return false
	}
	return equalTypes(def.ParamTypes(), params) && equalTypes(def.ResultTypes(), results)
}

func equalTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// runCommand runs the WASI entry point. proc_exit ends it normally.
func (i *Instance) runCommand(ctx context.Context) error {
	for _, name := range []string{"_start", "main", "__main_argc_argv", "_main"} {
		f := i.mod.ExportedFunction(name)
		if f == nil {
			continue
		}
		params := make([]uint64, len(f.Definition().ParamTypes())) // argc 0, argv NULL
		_, err := i.call(ctx, name, f, params)
		var ce *CallError
		if errors.As(err, &ce) && ce.Kind == KindExit {
			return nil
		}
		if err == nil && name == "_start" {
			i.exited = true // returned from _start: exit code 0
		}
		return err
	}
	return fmt.Errorf("wasm module %s: WASI main function is not found (no _start, main, __main_argc_argv or _main export)", i.module.name)
}

// ExitCode is the guest's exit code and whether it exited (proc_exit,
// exit, or a command's _start returning, which is code 0).
func (i *Instance) ExitCode() (code uint32, exited bool) { return i.exitCode, i.exited }

// Module is the module the instance was made from.
func (i *Instance) Module() *Module { return i.module }

// Memory is the instance's linear memory (nil for a module without one).
// Slices read from it are valid until the next call or Grow.
func (i *Instance) Memory() api.Memory { return i.mem }

// Function returns an exported function, or nil.
func (i *Instance) Function(name string) api.Function {
	if i.closed {
		return nil
	}
	return i.mod.ExportedFunction(name)
}

// Broken is the error that made the instance unusable (a trap, a timeout,
// an exit, the memory cap), or nil. A broken instance must be closed and
// replaced.
func (i *Instance) Broken() error { return i.broken }

// CallFunc calls an exported function by name with the instance's deadline.
func (i *Instance) CallFunc(ctx context.Context, name string, params ...uint64) ([]uint64, error) {
	if err := i.usable(); err != nil {
		return nil, err
	}
	f := i.mod.ExportedFunction(name)
	if f == nil {
		return nil, fmt.Errorf("wasm module %s: function %q is not exported", i.module.name, name)
	}
	n := max(len(params), len(f.Definition().ResultTypes()))
	stack := make([]uint64, n)
	copy(stack, params)
	res, err := i.call(ctx, name, f, stack)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Call calls f (an export of this instance) with its parameters in stack,
// which must be large enough for the results too; the results replace the
// parameters. The call has the instance's deadline; a failure is a
// *CallError, and a trap, timeout, exit or memory cap leaves the instance
// Broken.
func (i *Instance) Call(ctx context.Context, name string, f api.Function, stack []uint64) error {
	if err := i.usable(); err != nil {
		return err
	}
	_, err := i.call(ctx, name, f, stack)
	return err
}

func (i *Instance) usable() error {
	if i.closed {
		return fmt.Errorf("wasm module %s: %w: closed", i.module.name, ErrBroken)
	}
	if i.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, i.broken)
	}
	return nil
}

func (i *Instance) call(ctx context.Context, name string, f api.Function, stack []uint64) ([]uint64, error) {
	cctx := ctx
	if i.cctx != nil {
		if err := i.cctx.begin(ctx); err != nil {
			if ctx.Err() != nil {
				// The caller gave up before the call: the instance is still usable.
				return nil, &CallError{Module: i.module.name, Func: name, Kind: KindCanceled, Err: ctx.Err()}
			}
			i.broken = &CallError{Module: i.module.name, Func: name, Kind: KindTimeout, Err: err}
			return nil, i.broken
		}
		cctx = i.cctx
	}
	err := f.CallWithStack(cctx, stack)
	fired := i.cctx != nil && i.cctx.end()
	if fired && err == nil {
		// The deadline passed as the call returned: its result stands, but
		// the context is spent, so the instance must be replaced.
		i.broken = &CallError{Module: i.module.name, Func: name, Kind: KindTimeout, Err: context.DeadlineExceeded}
	}
	if err == nil {
		if i.lin.hit {
			// The call survived a failed memory.grow; do not trust the instance further.
			i.broken = &CallError{Module: i.module.name, Func: name, Kind: KindMemoryLimit, Err: ErrMemoryLimit}
		}
		return stack, nil
	}
	ce := &CallError{Module: i.module.name, Func: name, Kind: KindTrap, Err: err}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch code := exit.ExitCode(); code {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			if ctx.Err() != nil {
				ce.Kind, ce.Err = KindCanceled, ctx.Err()
			} else {
				ce.Kind = KindTimeout
			}
		default:
			ce.Kind, ce.ExitCode = KindExit, code
			i.exited, i.exitCode = true, code
		}
	} else if fired && i.module.code.stopChecks {
		// The stop global made the guest trap (unreachable).
		if ctx.Err() != nil {
			ce.Kind, ce.Err = KindCanceled, ctx.Err()
		} else {
			ce.Kind, ce.Err = KindTimeout, context.DeadlineExceeded
		}
	} else if i.lin.hit {
		ce.Kind = KindMemoryLimit
	}
	i.broken = ce
	return nil, ce
}

// Alloc allocates n bytes of guest memory (host heap or guest malloc). It
// returns 0 when there is no room.
func (i *Instance) Alloc(ctx context.Context, n uint32) (uint32, error) {
	if err := i.usable(); err != nil {
		return 0, err
	}
	if i.heap != nil {
		return i.heap.alloc(n), nil
	}
	if i.malloc == nil {
		return 0, fmt.Errorf("wasm module %s: has no memory", i.module.name)
	}
	i.stack[0] = uint64(n)
	if _, err := i.call(ctx, "malloc", i.malloc, i.stack[:1]); err != nil {
		return 0, err
	}
	return uint32(i.stack[0]), nil
}

// Free releases memory from Alloc.
func (i *Instance) Free(ctx context.Context, ptr uint32) error {
	if ptr == 0 {
		return nil
	}
	if err := i.usable(); err != nil {
		return err
	}
	if i.heap != nil {
		i.heap.release(ptr)
		return nil
	}
	i.stack[0] = uint64(ptr)
	_, err := i.call(ctx, "free", i.free, i.stack[:1])
	return err
}

// Write copies b into guest memory at ptr.
func (i *Instance) Write(ptr uint32, b []byte) bool {
	return i.mem != nil && i.mem.Write(ptr, b)
}

// MemoryBytes is the current size of the instance's linear memory.
func (i *Instance) MemoryBytes() uint64 {
	if i.mem == nil || i.closed {
		return 0
	}
	return uint64(i.mem.Size())
}

// HostHeap reports the host heap's use and size (0, 0 when the guest allocates).
func (i *Instance) HostHeap() (used, size uint32) {
	if i.heap == nil {
		return 0, 0
	}
	return i.heap.inUse, i.heap.size
}

// NeedsRecycle reports whether the instance should be replaced: it is
// broken, or it has grown past RecycleThreshold of its memory cap or of its
// host heap, or an env malloc failed. The reason is for logs.
func (i *Instance) NeedsRecycle() (bool, string) {
	if i.closed {
		return true, "closed"
	}
	if i.broken != nil {
		return true, i.broken.Error()
	}
	if i.mem != nil {
		pages := i.mem.Size() / pageSize
		if pages > i.startPages && float64(pages)*pageSize > RecycleThreshold*float64(i.lin.limit) {
			return true, fmt.Sprintf("memory grew to %d bytes, over %.0f%% of the %d-byte limit", uint64(pages)*pageSize, RecycleThreshold*100, i.lin.limit)
		}
	}
	if h := i.heap; h != nil {
		if i.heapFailure {
			return true, "host heap exhausted (raise wasm_heap_size)"
		}
		if h.inUse > i.startHeap && float64(h.inUse) > RecycleThreshold*float64(h.size) {
			return true, fmt.Sprintf("host heap %d of %d bytes in use (raise wasm_heap_size if the module keeps that much)", h.inUse, h.size)
		}
	}
	return false, ""
}

// Close releases the instance; it flushes guest output still buffered.
func (i *Instance) Close(ctx context.Context) error {
	if i.closed {
		return nil
	}
	i.closed = true
	var err error
	if i.mod != nil {
		i.module.code.instances.Delete(i.mod)
		err = i.mod.Close(ctx)
	}
	i.lin.release()
	if i.cctx != nil {
		i.cctx.release()
	}
	i.flush()
	return err
}

func (i *Instance) flush() {
	for _, w := range i.out {
		w.Flush()
	}
}

// isNilMemory reports whether m is an interface holding a nil pointer.
func isNilMemory(m api.Memory) bool {
	v := reflect.ValueOf(m)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
