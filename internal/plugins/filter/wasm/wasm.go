// Package wasm is Fluent Bit's WASM filter (plugins/filter_wasm) on wazero:
// modules written for Fluent Bit run unchanged.
//
// # Fluent Bit's behaviour
//
// Keys: wasm_path (required), function_name (required), event_format
// (json|msgpack, default json), accessible_paths (comma list, default "."),
// wasm_heap_size and wasm_stack_size (sizes, at least and by default 8192).
//
// The guest function is called once per record as
//
//	char *fn(char *tag, int tag_len, uint32 sec, uint32 nsec, char *record, int record_len)
//
// (wasm type (i32,i32,i32,i32,i32,i32)->i32). The tag is NUL-terminated. In
// json mode the record is the body rendered as JSON by Fluent Bit's
// msgpack→JSON rules (json.escape_unicode and json.convert_nan_to_null
// apply), NUL-terminated, and the result is read as a NUL-terminated JSON
// object; in msgpack mode the record is the body's MessagePack map as is and
// the result must point at exactly one MessagePack map (binary safe: read by
// its encoding, not up to a NUL). The output event keeps the input's
// timestamp and metadata (v2 layout); group markers pass through untouched.
// A NULL or empty result drops the record; so does an invalid one (not JSON,
// not an object, no NUL before the end of memory, not a map) unless
// on_error says keep. The buffers the host allocates in guest memory (with
// the module's malloc/free when it exports them, else in the host heap of
// wasm_heap_size bytes added to its memory) are freed after every call; the
// result belongs to the guest. Guest stdout/stderr (WASI, env printf…) are
// logged line by line with the filter's name; accessible_paths are
// preopened with the host path as guest path; _initialize runs, _start
// never does.
//
// # Beyond Fluent Bit
//
//   - wasm_timeout (time, default 5s): deadline of each call. A call past it
//     is stopped, the instance discarded and replaced. Stopping needs
//     checks in the compiled code at every loop iteration, which wazero
//     makes costly (an exit to Go each, wazero issue #2466); wasm_timeout 0
//     runs code compiled without them — loop-heavy modules run several
//     times faster — but a call that never returns then blocks its worker
//     for good: for modules you trust.
//   - wasm_memory_limit (size, default 128M): cap on the instance's linear
//     memory; memory.grow past it fails in the guest.
//   - on_error (drop|keep, default drop, Fluent Bit's behaviour): what
//     happens to a record whose call trapped, timed out or returned an
//     invalid result — dropped, or passed on unchanged.
//   - An instance that trapped, timed out, exited, hit its memory cap, or
//     grew past 80% of it (or of its host heap) is closed and replaced by a
//     fresh one (a recycle): guest state does not survive it, but a leaking
//     module cannot take the pipeline down. Fluent Bit keeps one instance
//     forever; modules that keep state across records see it reset then.
//   - Instances are pooled, one per concurrent chunk (Options.PoolSize,
//     default 2, created on demand); each is used by one goroutine at a time.
//   - abi (auto|fluentbit|batch, default auto): a module exporting
//     floe_filter_batch is run on Floe's batch ABI (docs/wasm-abi.md,
//     batch.go): one call per chunk, 0..N events out per record, with
//     metadata and new tags; function_name and event_format then do not
//     apply. Guests in Go: pkg/wasmsdk.
//   - plugin_config (batch ABI): the guest's own settings, as the otelwasm
//     plugins take them (a JSON value; plugin_config.<a>.<b> keys; a YAML
//     map), handed to the module's floe_configure export as JSON when each
//     instance starts (pkg/wasmsdk: Config, OnConfig). A guest refusing it
//     fails start-up with its message.
//   - Metrics per filter: floe → wasm → <name> in /api/v1/metrics and
//     floe_wasm_*_total{name} in Prometheus (calls, records in/out, drops,
//     traps, timeouts, recycles, errors, call latency, memory pages).
//     Dropped records also count in floe_dropped_records_total{stage=
//     "filter",plugin=<name>}: reason "filtered" for a NULL or empty result,
//     "filter_error" for a failed call with on_error drop.
//
// Bad modules are refused at start-up, naming the module and the function
// or import: a file that is not WebAssembly, a missing function, a function
// with another signature, an import Floe does not provide. Check does the
// same checks without instantiating, for floe validate.
package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/otelwasm"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/wasmhost"
	"github.com/tetratelabs/wazero/api"
)

// Spec describes the wasm filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "wasm",
		Desc: "WASM program filter",
		Keys: []plugin.Key{
			{Name: "wasm_path", Desc: "path to the WebAssembly module (required)"},
			{Name: "function_name", Desc: "function of the module called for every record (required for the Fluent Bit ABI)"},
			{Name: "abi", Default: "auto", Enum: []string{"auto", "fluentbit", "batch"}, Desc: "Floe: guest ABI; auto picks Floe's batch ABI when the module exports floe_filter_batch, else Fluent Bit's"},
			{Name: "event_format", Default: "json", Enum: []string{"json", "msgpack"}, Desc: "how records are given to the function"},
			{Name: "accessible_paths", Default: ".", Desc: "comma-separated directories the module may access (WASI preopens)"},
			{Name: "wasm_heap_size", Type: plugin.Size, Default: "8192", Desc: "host heap for modules without malloc/free (at least 8192)"},
			{Name: "wasm_stack_size", Type: plugin.Size, Default: "8192", Desc: "accepted for compatibility (wazero sizes stacks itself)"},
			{Name: "wasm_timeout", Type: plugin.Seconds, Default: "5s", Desc: "Floe: deadline of each call; a call past it is stopped and the instance replaced (0: none, faster code that cannot be stopped)"},
			{Name: "wasm_memory_limit", Type: plugin.Size, Default: "128M", Desc: "Floe: cap on the module's linear memory"},
			{Name: "on_error", Default: "drop", Enum: []string{"drop", "keep"}, Desc: "Floe: record whose call trapped, timed out or returned garbage: drop it or pass it on unchanged"},
			{Name: "plugin_config", Desc: "Floe: batch-ABI guest configuration, handed to floe_configure as JSON: a JSON value, plugin_config.<a>.<b> keys, or a YAML map"},
		},
		// For the plugin_config.<path> keys; parseConfig refuses any other unknown key.
		AnyKey:    true,
		NewFilter: New,
		Check:     func(ctx context.Context, set plugin.Settings, p *plugin.Props) error { return Check(ctx, p, set) },
	}
}

// Options are constructor settings that are not configuration keys.
type Options struct {
	// PoolSize is the number of instances (chunks filtered at once); the
	// filter stage's concurrency. Default 2. Instances are made on demand.
	PoolSize int
	// Runtime overrides the process-wide runtime (tests, benchmarks).
	Runtime *wasmhost.Runtime
}

// DefaultPoolSize is the pool size when Options.PoolSize is 0.
const DefaultPoolSize = 2

type settingsCfg struct {
	path        string
	function    string
	msgpack     bool
	paths       []string
	heap, stack int64
	timeout     time.Duration
	memLimit    int64
	keep        bool
	abi         string // auto, fluentbit or batch
	config      []byte // plugin_config as JSON ("null": unset)
}

func parseConfig(p *plugin.Props) (settingsCfg, error) {
	var c settingsCfg
	strict := *Spec()
	strict.AnyKey = false // AnyKey is only there for plugin_config.<path>
	for _, prop := range p.Section.Props {
		k := strings.ToLower(prop.Key)
		if _, ok := strict.Key(k); !ok && !strings.HasPrefix(k, "plugin_config.") {
			return c, p.Errorf(prop.Key, "unknown key for filter plugin \"wasm\"")
		}
	}
	cfg, err := otelwasm.ConfigJSON(p)
	if err != nil {
		return c, err
	}
	c.config = cfg
	c.path = strings.TrimSpace(p.String("wasm_path"))
	if c.path == "" {
		return c, p.Errorf("wasm_path", "no WASM program path was given (wasm_path)")
	}
	c.function = strings.TrimSpace(p.String("function_name"))
	c.abi = strings.ToLower(strings.TrimSpace(p.String("abi")))
	switch c.abi {
	case "", "auto":
		c.abi = "auto"
	case "fluentbit", "batch":
	default:
		return c, p.Errorf("abi", "unknown ABI %q (auto, fluentbit or batch)", c.abi)
	}
	if c.function == "" && c.abi == "fluentbit" {
		return c, p.Errorf("function_name", "no WASM 'function name' was given")
	}
	switch f := strings.TrimSpace(p.String("event_format")); {
	case strings.EqualFold(f, "json"):
	case strings.EqualFold(f, "msgpack"):
		c.msgpack = true
	default:
		return c, p.Errorf("event_format", "unknown format: %s", f)
	}
	for _, s := range strings.Split(p.String("accessible_paths"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		// WAMR fails to instantiate when a preopen cannot be opened.
		if st, err := os.Stat(s); err != nil || !st.IsDir() {
			if err == nil {
				err = errors.New("not a directory")
			}
			return c, p.Errorf("accessible_paths", "error while pre-opening directory %s: %v", s, err)
		}
		c.paths = append(c.paths, s)
	}
	c.heap = max(p.Size("wasm_heap_size"), wasmhost.DefaultHeapSize)
	c.stack = max(p.Size("wasm_stack_size"), wasmhost.DefaultStackSize)
	c.timeout = time.Duration(p.Seconds("wasm_timeout") * float64(time.Second))
	if c.timeout <= 0 {
		c.timeout = -1 // no deadline
	}
	c.memLimit = p.Size("wasm_memory_limit")
	if c.memLimit <= 0 {
		c.memLimit = wasmhost.DefaultMemoryLimit
	}
	if c.memLimit < c.heap {
		return c, p.Errorf("wasm_memory_limit", "%d bytes is less than wasm_heap_size (%d)", c.memLimit, c.heap)
	}
	c.keep = strings.EqualFold(strings.TrimSpace(p.String("on_error")), "keep")
	return c, nil
}

// filterParams and filterResults are the Fluent Bit filter signature.
var (
	filterParams  = []api.ValueType{wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32, wasmhost.I32}
	filterResults = []api.ValueType{wasmhost.I32}
)

// Check validates a wasm filter's configuration and module without running
// it: the file is readable WebAssembly, imports only what Floe provides,
// exports function_name with the filter signature, and fits the memory
// limit. set is optional (its storage path locates the compilation cache).
func Check(ctx context.Context, p *plugin.Props, set ...plugin.Settings) error {
	var s plugin.Settings
	if len(set) > 0 {
		s = set[0]
	}
	cfg, err := parseConfig(p)
	if err != nil {
		return err
	}
	rt, err := wasmhost.Shared(wasmhost.DefaultCacheDir(s.Service.StoragePath), s.Logger)
	if err != nil {
		return err
	}
	_, err = compile(ctx, rt, cfg, p)
	return err
}

func compile(ctx context.Context, rt *wasmhost.Runtime, cfg settingsCfg, p *plugin.Props) (*wasmhost.Module, error) {
	if f, err := os.Open(cfg.path); err != nil {
		return nil, p.Errorf("wasm_path", "cannot access wasm program at %s: %v", cfg.path, err)
	} else {
		_ = f.Close()
	}
	compileFn := rt.Compile
	if cfg.timeout < 0 {
		// No deadline: code without the termination checks runs faster.
		compileFn = rt.CompileTrusted
	}
	mod, err := compileFn(ctx, cfg.path)
	if err != nil {
		return nil, p.Errorf("wasm_path", "%v", err)
	}
	if cfg.abi == "batch" || (cfg.abi == "auto" && hasBatch(mod)) {
		if _, err := checkBatch(mod); err != nil {
			return nil, p.Errorf("wasm_path", "batch ABI: %v", err)
		}
		if mod.HasFunction(batchConfigureName) {
			if err := mod.CheckFunction(batchConfigureName, batchConfigureParams, batchFilterResults); err != nil {
				return nil, p.Errorf("wasm_path", "batch ABI: %v", err)
			}
		} else if string(cfg.config) != "null" {
			return nil, p.Errorf("plugin_config", "wasm module %s does not export %s: it takes no plugin_config", cfg.path, batchConfigureName)
		}
	} else {
		if string(cfg.config) != "null" {
			return nil, p.Errorf("plugin_config", "plugin_config is for batch-ABI guests (floe_configure); Fluent Bit ABI modules take no configuration")
		}
		if cfg.function == "" {
			return nil, p.Errorf("function_name", "no WASM 'function name' was given (and the module does not export %s for Floe's batch ABI)", batchFilterName)
		}
		if err := mod.CheckFunction(cfg.function, filterParams, filterResults); err != nil {
			return nil, p.Errorf("function_name", "%v", err)
		}
	}
	if need := mod.MinMemory(); need+uint64(cfg.heap) > uint64(cfg.memLimit) {
		return nil, p.Errorf("wasm_memory_limit", "wasm module %s needs %d bytes of memory at start (plus a heap of up to %d), over the limit of %d bytes",
			cfg.path, need, cfg.heap, cfg.memLimit)
	}
	return mod, nil
}

// Filter is a configured wasm filter. It is safe for concurrent use: each
// FilterChunk takes an instance from the pool.
type Filter struct {
	cfg     settingsCfg
	name    string
	log     *slog.Logger // the filter's messages
	base    *slog.Logger // guest output (LineWriter adds wasm=<name>)
	json    event.JSONOptions
	mod     *wasmhost.Module
	metrics *telemetry.WasmMetrics
	pool    *pool
	errLog  rateLog
	batch   bool   // Floe's batch ABI, else Fluent Bit's
	batchV2 bool   // batch ABI v2: the guest gets the host's index of the chunk
	batchFn string // the batch entry point called
}

// New builds a wasm filter with the default options.
func New(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	return NewWithOptions(ctx, set, p, Options{})
}

// NewWithOptions builds a wasm filter: it compiles the module, checks the
// function and makes the first instance, so a bad module fails start-up.
func NewWithOptions(ctx context.Context, set plugin.Settings, p *plugin.Props, opts Options) (*Filter, error) {
	cfg, err := parseConfig(p)
	if err != nil {
		return nil, err
	}
	base := set.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	name := set.DisplayName()
	if name == "" {
		name = "wasm"
	}
	log := base.With("filter", name)
	rt := opts.Runtime
	if rt == nil {
		if rt, err = wasmhost.Shared(wasmhost.DefaultCacheDir(set.Service.StoragePath), set.Logger); err != nil {
			return nil, err
		}
	}
	mod, err := compile(ctx, rt, cfg, p)
	if err != nil {
		return nil, err
	}
	f := &Filter{cfg: cfg, name: name, log: log, base: base, json: set.Service.JSON, mod: mod}
	f.batch = cfg.abi == "batch" || (cfg.abi == "auto" && hasBatch(mod))
	if f.batch {
		f.batchV2, _ = checkBatch(mod) // compile checked it
		f.batchFn = batchFilterName
		if f.batchV2 {
			f.batchFn = batchFilterV2Name
		}
	}
	if set.Telemetry != nil {
		f.metrics = set.Telemetry.Wasm(name)
	} else {
		f.metrics = new(telemetry.WasmMetrics)
	}
	size := opts.PoolSize
	if size <= 0 {
		size = DefaultPoolSize
	}
	f.pool = newPool(size, f.newWorker, f.closeWorker)
	// Instantiate one now: Fluent Bit refuses to start when it cannot.
	w, err := f.newWorker(ctx)
	if err != nil {
		return nil, p.Errorf("wasm_path", "failed to instantiate wasm program: %v", err)
	}
	f.pool.add(w)
	log.Debug("wasm filter ready", "module", cfg.path, "function", cfg.function, "batch_abi", f.batch,
		"event_format", map[bool]string{false: "json", true: "msgpack"}[cfg.msgpack], "compiled", rt.Compiler())
	return f, nil
}

// Metrics are the filter's WASM metrics.
func (f *Filter) Metrics() *telemetry.WasmMetrics { return f.metrics }

// Close releases the instances; chunks being filtered finish first.
func (f *Filter) Close(ctx context.Context) error {
	return f.pool.close(ctx)
}

// worker is one instance with what a call needs.
type worker struct {
	inst  *wasmhost.Instance
	fn    api.Function
	alloc api.Function // batch ABI: floe_alloc
	stack [6]uint64
	index chunkIndex // batch ABI v2: the chunk's index (scratch)
	json  []byte     // scratch for the JSON record
	arg   []byte     // scratch for tag + record
	// argPtr is the guest block the arguments are written to, reused call
	// after call while they fit in its argCap bytes: a malloc and a free
	// per record are two guest calls, in a standard-Go module each dearer
	// than converting the record (Fluent Bit copies into its own WAMR heap
	// and frees after the call, so no guest can rely on a fresh block).
	argPtr, argCap uint32
	calls          int   // calls since instantiation
	pages          int64 // memory pages last reported to the gauge
}

func (f *Filter) newWorker(ctx context.Context) (*worker, error) {
	inst, err := f.mod.Instantiate(ctx, wasmhost.InstanceConfig{
		Name:            f.name,
		AccessiblePaths: f.cfg.paths,
		HeapSize:        f.cfg.heap,
		StackSize:       f.cfg.stack,
		MemoryLimit:     f.cfg.memLimit,
		Timeout:         f.cfg.timeout,
		Logger:          f.base,
	})
	if err != nil {
		return nil, err
	}
	fname := f.cfg.function
	var alloc api.Function
	if f.batch {
		fname = f.batchFn
		alloc = inst.Function(batchAllocName)
	}
	fn := inst.Function(fname)
	if fn == nil || (f.batch && alloc == nil) {
		_ = inst.Close(ctx)
		return nil, fmt.Errorf("the %s wasm function is not found", fname)
	}
	w := &worker{inst: inst, fn: fn, alloc: alloc}
	if f.batch && f.mod.HasFunction(batchConfigureName) {
		if err := f.configure(ctx, w); err != nil {
			_ = inst.Close(ctx)
			return nil, err
		}
	}
	w.pages = int64(inst.MemoryBytes() / 65536)
	f.metrics.MemoryPages.Add(w.pages)
	return w, nil
}

func (f *Filter) closeWorker(ctx context.Context, w *worker) {
	if w.inst == nil {
		return
	}
	f.metrics.MemoryPages.Add(-w.pages)
	w.pages = 0
	_ = w.inst.Close(ctx)
}

// recycle replaces w's instance with a fresh one.
func (f *Filter) recycle(ctx context.Context, w *worker, reason string) error {
	f.metrics.Recycles.Add(1)
	f.log.Debug("wasm instance recycled", "reason", reason)
	f.closeWorker(context.WithoutCancel(ctx), w)
	nw, err := f.newWorker(ctx)
	if err != nil {
		return fmt.Errorf("wasm filter %s: replacing the instance: %w", f.name, err)
	}
	*w = worker{inst: nw.inst, fn: nw.fn, alloc: nw.alloc, index: w.index, json: w.json, arg: w.arg, pages: nw.pages}
	return nil
}

// FilterChunk calls the guest for every record of c.
func (f *Filter) FilterChunk(ctx context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	w, err := f.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	if f.batch {
		out, err := f.batchChunk(ctx, w, c)
		f.pool.put(w)
		return out, err
	}
	out, n, notouch, err := f.filter(ctx, w, c)
	f.pool.put(w)
	if err != nil {
		return nil, err
	}
	if notouch {
		return []*chunk.Chunk{c}, nil
	}
	if n == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out}}, nil
}

// outcome of one record.
type outcome int

const (
	kept    outcome = iota // the guest's result was appended
	dropped                // NULL or empty result
	failed                 // trap, timeout, invalid result: on_error decides
)

func (f *Filter) filter(ctx context.Context, w *worker, c *chunk.Chunk) (out []byte, n int, notouch bool, err error) {
	if w.inst == nil {
		// The previous replacement failed: try again.
		nw, err := f.newWorker(ctx)
		if err != nil {
			return nil, 0, false, fmt.Errorf("wasm filter %s: %w", f.name, err)
		}
		*w = *nw
	}
	out = make([]byte, 0, len(c.Data)+len(c.Data)/4)
	tag := []byte(c.Tag)
	it := event.NewIter(c.Data)
	for it.Next() {
		ev := it.Event()
		if ev.Kind() != event.KindRecord {
			out = append(out, ev.Raw...)
			continue
		}
		f.metrics.RecordsIn.Add(1)
		var payload []byte
		if f.cfg.msgpack {
			payload = ev.Body
		} else {
			w.json, err = appendBodyJSON(w.json[:0], ev.Body, f.json)
			if err != nil {
				// Fluent Bit: "encode as JSON from msgpack is failed", chunk untouched.
				f.log.Error("encode as JSON from msgpack is failed", "error", err)
				return nil, 0, true, nil
			}
			w.json = append(w.json, 0)
			payload = w.json
		}
		mark := len(out)
		var res outcome
		out, res, err = f.record(ctx, w, tag, ev, payload, out)
		if err != nil {
			return nil, 0, false, err
		}
		switch res {
		case kept:
			n++
			f.metrics.RecordsOut.Add(1)
		case dropped:
			out = out[:mark]
			f.metrics.Drops.Add(1)
		case failed:
			out = out[:mark]
			f.metrics.Errors.Add(1)
			if f.cfg.keep {
				out = append(out, ev.Raw...)
				n++
				f.metrics.RecordsOut.Add(1)
			} else {
				f.metrics.Drops.Add(1)
				// Lost to a failure, not filtered on purpose: the stage counts
				// it under filter_error rather than filtered.
				telemetry.NoteDrop(ctx, telemetry.DropFilterError, 1)
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, 0, false, err
	}
	return out, n, false, nil
}

// record runs the guest on one record and appends the output event to out.
// An error is returned only when the chunk cannot go on (context cancelled,
// no instance could be made).
func (f *Filter) record(ctx context.Context, w *worker, tag []byte, ev *event.RawEvent, payload, out []byte) ([]byte, outcome, error) {
	recLen := len(payload)
	if !f.cfg.msgpack {
		recLen-- // the NUL is not counted
	}
	tagOff := 0
	recOff := (len(tag) + 1 + 7) &^ 7
	size := recOff + len(payload)

	// Arguments: one block [tag NUL pad record(NUL)] in guest memory.
	if w.argPtr != 0 && uint32(size) > w.argCap {
		ptr := w.argPtr
		w.argPtr, w.argCap = 0, 0
		if err := w.inst.Free(ctx, ptr); err != nil {
			if ctx.Err() != nil {
				return out, failed, ctx.Err()
			}
			f.callFailed(err)
			return out, failed, f.replace(ctx, w, err.Error())
		}
	}
	ptr := w.argPtr
	for attempt := 0; ptr == 0; attempt++ {
		want := uint32(max(size+size/4, 512)+63) &^ 63 // room for somewhat longer records
		p, err := w.inst.Alloc(ctx, want)
		if err != nil {
			if ctx.Err() != nil {
				return out, failed, ctx.Err()
			}
			f.callFailed(err)
			return out, failed, f.replace(ctx, w, err.Error())
		}
		if p != 0 {
			ptr = p
			w.argPtr, w.argCap = p, want
			break
		}
		if attempt > 0 || w.calls == 0 {
			f.errLog.log(f.log, "wasm: no room in guest memory for the record", "bytes", size, "hint", "raise wasm_heap_size")
			return out, failed, nil
		}
		// The heap is full of what the guest leaked: start afresh.
		if err := f.recycle(ctx, w, "no room in guest memory for the record"); err != nil {
			return out, failed, err
		}
	}
	w.arg = append(w.arg[:0], tag...)
	w.arg = append(w.arg, 0)
	for len(w.arg) < recOff {
		w.arg = append(w.arg, 0)
	}
	w.arg = append(w.arg, payload...)
	if !w.inst.Write(ptr, w.arg) {
		return out, failed, f.replace(ctx, w, "argument buffer outside memory")
	}

	w.stack = [6]uint64{uint64(ptr) + uint64(tagOff), uint64(len(tag)), uint64(uint32(ev.Time.Sec)), uint64(ev.Time.Nsec), uint64(ptr) + uint64(recOff), uint64(recLen)}
	start := time.Now()
	err := w.inst.Call(ctx, f.cfg.function, w.fn, w.stack[:])
	f.metrics.LatencyNanosTotal.Add(int64(time.Since(start)))
	f.metrics.Calls.Add(1)
	w.calls++
	if err != nil {
		if ctx.Err() != nil {
			return out, failed, ctx.Err()
		}
		f.callFailed(err)
		return out, failed, f.replace(ctx, w, err.Error())
	}

	var res outcome
	out, res = f.result(w, uint32(w.stack[0]), ev, out)
	if w.inst.Broken() != nil {
		// The call returned, but the instance hit its memory cap or its
		// deadline on the way: keep the result, replace the instance.
		return out, res, f.replace(ctx, w, w.inst.Broken().Error())
	}
	if pages := int64(w.inst.MemoryBytes() / 65536); pages != w.pages {
		f.metrics.MemoryPages.Add(pages - w.pages)
		w.pages = pages
	}
	if recycle, why := w.inst.NeedsRecycle(); recycle {
		return out, res, f.replace(ctx, w, why)
	}
	return out, res, nil
}

// replace recycles the worker's instance; a failure is only an error for
// the chunk if the context ended (else the next record retries).
func (f *Filter) replace(ctx context.Context, w *worker, reason string) error {
	err := f.recycle(ctx, w, reason)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.inst = nil
		return err
	}
	return nil
}

// callFailed counts and logs a failed call.
func (f *Filter) callFailed(err error) {
	switch {
	case errors.Is(err, wasmhost.ErrTimeout):
		f.metrics.Timeouts.Add(1)
		f.errLog.log(f.log, "wasm call timed out", "timeout", f.cfg.timeout, "error", err)
	case errors.Is(err, wasmhost.ErrMemoryLimit):
		f.metrics.Traps.Add(1)
		f.errLog.log(f.log, "wasm module reached its memory limit", "limit", f.cfg.memLimit, "error", err)
	default:
		f.metrics.Traps.Add(1)
		f.errLog.log(f.log, "Got exception running wasm code", "error", err)
	}
}

// result reads the guest's result at ret and appends the output event.
func (f *Filter) result(w *worker, ret uint32, ev *event.RawEvent, out []byte) ([]byte, outcome) {
	if ret == 0 {
		f.log.Debug("WASM function returned NULL. Skip.")
		return out, dropped
	}
	mem := w.inst.Memory()
	size := mem.Size()
	if ret >= size {
		f.errLog.log(f.log, "[wasm] returned value is invalid", "pointer", ret, "memory", size)
		return out, failed
	}
	view, _ := mem.Read(ret, size-ret)
	if view[0] == 0 {
		f.log.Debug("WASM function returned empty string. Skip.")
		return out, dropped
	}
	mark := len(out)
	out = append(out, 0x92, 0x92)
	out = ev.Time.AppendMsgpack(out)
	out = append(out, ev.Meta...)
	body := len(out)
	if f.cfg.msgpack {
		end, err := event.Skip(view, 0)
		if err != nil || !isMap(view[0]) {
			f.errLog.log(f.log, "invalid msgpack format: the result is not one MessagePack map", "error", err)
			return out[:mark], failed
		}
		return append(out, view[:end]...), kept
	}
	i := bytes.IndexByte(view, 0)
	if i < 0 {
		f.errLog.log(f.log, "[wasm] returned value is invalid", "reason", "no NUL before the end of memory")
		return out[:mark], failed
	}
	text := view[:i]
	out, err := event.AppendFromJSON(out, text)
	if err != nil || !isMap(out[body]) {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		f.errLog.log(f.log, "invalid JSON format", "error", err, "buf", truncate(text, 256))
		return out[:mark], failed
	}
	return out, kept
}

func isMap(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// rateLog logs errors at most once a second, counting the ones it skipped.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLog) log(l *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.last = now
	n := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.Error(msg, args...)
}

var errClosed = errors.New("wasm filter closed")
