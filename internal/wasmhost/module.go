package wasmhost

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Module is a compiled WebAssembly module. It is safe for concurrent use.
type Module struct {
	name string // as given to Compile (a path, usually)
	code *code
}

// code is what modules compiled from the same bytes share.
type code struct {
	rt       *Runtime
	eng      *engine
	compiled wazero.CompiledModule
	exports  map[string]api.FunctionDefinition
	envNames []string // env functions the module imports
	memMin   uint32   // pages
	hasMem   bool
	// stopChecks: compiled from addStopChecks' rewrite, on the engine
	// without wazero's checks; calls stop through the stop global.
	stopChecks bool

	envOnce sync.Once
	env     api.Module // host module with the env imports, shared by the instances
	envErr  error

	// instances maps the api.Module of each live instance to its
	// *Instance, so env host functions act on the calling instance.
	instances sync.Map
}

func (m *Module) withName(name string) *Module { return &Module{name: name, code: m.code} }

// Name is the name the module was compiled under (its path).
func (m *Module) Name() string { return m.name }

// BaseName is the file name of the module, for logs.
func (m *Module) BaseName() string { return filepath.Base(m.name) }

// HasFunction reports whether the module exports a function called name.
func (m *Module) HasFunction(name string) bool {
	_, ok := m.code.exports[name]
	return ok
}

// IsCommand reports whether the module exports _start (a WASI command).
func (m *Module) IsCommand() bool { return m.HasFunction("_start") }

// IsReactor reports whether the module exports _initialize (a WASI reactor).
func (m *Module) IsReactor() bool { return m.HasFunction("_initialize") }

// Imports lists the functions the module imports, as "module.name".
func (m *Module) Imports() []string {
	var out []string
	for _, f := range m.code.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		out = append(out, mod+"."+name)
	}
	return out
}

// I32 is the WebAssembly i32 value type, for CheckFunction.
const I32 = api.ValueTypeI32

// CheckFunction checks that the module exports function name with exactly
// the given parameter and result types; the error names the module, the
// function and both signatures.
func (m *Module) CheckFunction(name string, params, results []api.ValueType) error {
	def, ok := m.code.exports[name]
	if !ok {
		return fmt.Errorf("wasm module %s: function %q is not exported (exported functions: %s)", m.name, name, m.exportList())
	}
	if !slices.Equal(def.ParamTypes(), params) || !slices.Equal(def.ResultTypes(), results) {
		return fmt.Errorf("wasm module %s: function %q has signature %s, expected %s",
			m.name, name, sigString(def.ParamTypes(), def.ResultTypes()), sigString(params, results))
	}
	return nil
}

func (m *Module) exportList() string {
	var names []string
	for n := range m.code.exports {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 20 {
		names = append(names[:20], "…")
	}
	return strings.Join(names, ", ")
}

// Bounded reports whether calls on the module's instances can be stopped
// at their deadline (Compile), or not (CompileTrusted).
func (m *Module) Bounded() bool { return m.code.eng.bounded || m.code.stopChecks }

// MinMemory is the linear memory the module needs at start, in bytes.
func (m *Module) MinMemory() uint64 { return uint64(m.code.memMin) * pageSize }

func (r *Runtime) compile(ctx context.Context, e *engine, name string, bin []byte) (*Module, error) {
	compiled, err := e.rt.CompileModule(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("wasm module %s: %w", name, err)
	}
	c := &code{rt: r, eng: e, compiled: compiled, exports: map[string]api.FunctionDefinition{}}
	for n, def := range compiled.ExportedFunctions() {
		c.exports[n] = def
	}
	for _, mem := range compiled.ExportedMemories() {
		c.memMin, c.hasMem = mem.Min(), true
	}
	if mems := compiled.ImportedMemories(); len(mems) > 0 {
		mod, n, _ := mems[0].Import()
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("wasm module %s: imports memory %s.%s, which Floe does not provide (build the module with its own memory)", name, mod, n)
	}
	if err := checkImports(name, c); err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	return &Module{name: name, code: c}, nil
}

// checkImports refuses imports Floe does not provide and records the env ones.
func checkImports(name string, c *code) error {
	wasiDefs := c.eng.wasi.ExportedFunctionDefinitions()
	for _, f := range c.compiled.ImportedFunctions() {
		mod, fn, _ := f.Import()
		params, results := f.ParamTypes(), f.ResultTypes()
		switch mod {
		case "wasi_snapshot_preview1":
			def, ok := wasiDefs[fn]
			if !ok {
				return fmt.Errorf("wasm module %s: imports %s.%s, which WASI preview 1 does not define", name, mod, fn)
			}
			if !slices.Equal(def.ParamTypes(), params) || !slices.Equal(def.ResultTypes(), results) {
				return fmt.Errorf("wasm module %s: imports %s.%s with signature %s, WASI preview 1 defines %s",
					name, mod, fn, sigString(params, results), sigString(def.ParamTypes(), def.ResultTypes()))
			}
		case "env":
			spec, ok := envSpecs[fn]
			if !ok {
				return fmt.Errorf("wasm module %s: imports env.%s, which Floe does not provide (env provides Fluent Bit's libc-builtin functions: %s)",
					name, fn, strings.Join(envNames(), ", "))
			}
			if spec.match(params, results) < 0 {
				var want []string
				for _, s := range spec.sigs {
					want = append(want, sigString(s.params, s.results))
				}
				return fmt.Errorf("wasm module %s: imports env.%s with signature %s, Floe provides %s",
					name, fn, sigString(params, results), strings.Join(want, " or "))
			}
			c.envNames = append(c.envNames, fn)
		default:
			if known, err := checkHostImport(c, mod, fn, params, results); known {
				if err != nil {
					return fmt.Errorf("wasm module %s: %w", name, err)
				}
				continue
			}
			return fmt.Errorf("wasm module %s: imports %s.%s, which Floe does not provide (only wasi_snapshot_preview1 and Fluent Bit's env functions)", name, mod, fn)
		}
	}
	return nil
}

// envModule instantiates, once per compiled module, the host module that
// provides its env imports with the signatures it declares.
func (c *code) envModule(ctx context.Context) (api.Module, error) {
	c.envOnce.Do(func() {
		if len(c.envNames) == 0 {
			return
		}
		b := c.eng.rt.NewHostModuleBuilder("env")
		for _, f := range c.compiled.ImportedFunctions() {
			mod, fn, _ := f.Import()
			if mod != "env" {
				continue
			}
			spec := envSpecs[fn]
			i := spec.match(f.ParamTypes(), f.ResultTypes())
			b.NewFunctionBuilder().
				WithGoModuleFunction(c.hostFunc(fn, spec.impl(i)), f.ParamTypes(), f.ResultTypes()).
				Export(fn)
		}
		compiled, err := b.Compile(ctx)
		if err != nil {
			c.envErr = fmt.Errorf("env imports: %w", err)
			return
		}
		c.env, c.envErr = c.eng.rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
		if c.envErr != nil {
			c.envErr = fmt.Errorf("env imports: %w", c.envErr)
		}
	})
	return c.env, c.envErr
}

// hostFunc adapts an env implementation: it finds the calling instance.
func (c *code) hostFunc(name string, f envImpl) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		v, ok := c.instances.Load(mod)
		if !ok {
			panic(fmt.Errorf("env.%s: called from an unknown module instance", name))
		}
		f(ctx, v.(*Instance), stack)
	}
}

func sigString(params, results []api.ValueType) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, p := range params {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(api.ValueTypeName(p))
	}
	b.WriteString(")->(")
	for i, r := range results {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(api.ValueTypeName(r))
	}
	b.WriteByte(')')
	return b.String()
}
