package wasmhost

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// HostFunc is one function of a host module registered with
// DefineHostModule. Fn finds its per-call state in ctx: the context given
// to Instance.Call reaches host functions (its values, not its deadline).
type HostFunc struct {
	Name            string
	Params, Results []api.ValueType
	Fn              api.GoModuleFunc
}

// hostMods are the host modules beside WASI and env, per runtime.
type hostMods struct {
	mu   sync.Mutex
	defs map[string][]HostFunc
}

var hostModsByRuntime sync.Map // *Runtime → *hostMods

func (r *Runtime) hostMods() *hostMods {
	v, _ := hostModsByRuntime.LoadOrStore(r, &hostMods{defs: map[string][]HostFunc{}})
	return v.(*hostMods)
}

// DefineHostModule makes module name, with funcs, importable by modules
// compiled from now on (Compile or CompileTrusted), e.g. OTelWasm's
// "opentelemetry.io/wasm". Defining a name again is a no-op, so plugins may
// call it each time they start.
func (r *Runtime) DefineHostModule(ctx context.Context, name string, funcs []HostFunc) error {
	h := r.hostMods()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.defs[name]; ok {
		return nil
	}
	switch name {
	case "env", "wasi_snapshot_preview1":
		return fmt.Errorf("wasm: host module %s is Floe's own", name)
	}
	// Both engines: CompileTrusted modules may import it too.
	trusted, err := r.engine(ctx, true)
	if err != nil {
		return err
	}
	for _, e := range []*engine{r.bounded, trusted} {
		b := e.rt.NewHostModuleBuilder(name)
		for _, f := range funcs {
			b.NewFunctionBuilder().WithGoModuleFunction(f.Fn, f.Params, f.Results).Export(f.Name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("wasm: host module %s: %w", name, err)
		}
	}
	h.defs[name] = funcs
	return nil
}

// checkHostImport checks an import from a module defined with
// DefineHostModule; known is false when no such module is defined for the
// engine.
func checkHostImport(c *code, mod, fn string, params, results []api.ValueType) (known bool, err error) {
	h := c.rt.hostMods()
	h.mu.Lock()
	defs, ok := h.defs[mod]
	h.mu.Unlock()
	if !ok {
		return false, nil
	}
	for _, d := range defs {
		if d.Name != fn {
			continue
		}
		if !slices.Equal(d.Params, params) || !slices.Equal(d.Results, results) {
			return true, fmt.Errorf("imports %s.%s with signature %s, Floe provides %s",
				mod, fn, sigString(params, results), sigString(d.Params, d.Results))
		}
		return true, nil
	}
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	return true, fmt.Errorf("imports %s.%s, which Floe does not provide (%s provides: %v)", mod, fn, mod, names)
}

// HasMemory reports whether the module defines its own linear memory.
func (m *Module) HasMemory() bool { return m.code.hasMem }
