package wasmhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Options configure a Runtime made with New.
type Options struct {
	// CacheDir is the compilation cache directory; empty keeps compiled
	// code in memory only.
	CacheDir string
	// Interpreter forces wazero's interpreter even where its compiler works.
	Interpreter bool
	// Logger receives the runtime's own messages (and guest output of
	// instances that have no logger of their own); nil discards them.
	Logger *slog.Logger
	// WazeroStopChecks makes Compile keep wazero's WithCloseOnContextDone
	// (an exit to Go at every loop iteration and call: several times
	// slower on loop-heavy guests) instead of Floe's inline stop checks
	// (stopcheck.go), which are the default where the compiler runs. For
	// comparison, and a way back should a module trip the rewriter.
	WazeroStopChecks bool
}

// Runtime is Floe's WebAssembly runtime: wazero with WASI preview 1, the
// env module, a compilation cache and the modules compiled so far. It is
// safe for concurrent use.
//
// It holds up to two wazero runtimes sharing the cache: one whose compiled
// code checks at every loop back-edge and function entry whether the call
// must stop (wazero's WithCloseOnContextDone, an exit to Go at every check:
// wazero issue #2466), used by Compile; and, made on first use, one without
// those checks, which runs CompileTrusted code and the code Compile gives
// Floe's own inline stop checks (stopcheck.go; unless
// Options.WazeroStopChecks).
type Runtime struct {
	cache        wazero.CompilationCache
	cacheDir     string
	log          *slog.Logger
	interpreter  bool
	compiler     bool
	inlineChecks bool

	bounded *engine
	mems    memPool
	mu      sync.Mutex
	trusted *engine
	modules map[moduleKey]*moduleEntry
}

// engine is one wazero runtime.
type engine struct {
	rt      wazero.Runtime
	wasi    api.Module
	bounded bool
}

type moduleKey struct {
	sum     [32]byte
	trusted bool
}

// moduleEntry compiles a module once even when several callers ask at once.
type moduleEntry struct {
	once sync.Once
	mod  *Module
	err  error
}

var (
	sharedMu sync.Mutex
	shared   *Runtime
)

// Shared returns the process-wide runtime, creating it on first use with
// its compilation cache in cacheDir (see DefaultCacheDir). Later calls
// return the same runtime whatever their arguments. A cache directory that
// cannot be created is logged and the cache kept in memory.
func Shared(cacheDir string, log *slog.Logger) (*Runtime, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		return shared, nil
	}
	r, err := New(context.Background(), Options{CacheDir: cacheDir, Logger: log})
	if err != nil && cacheDir != "" {
		if log != nil {
			log.Warn("wasm: compilation cache unavailable, compiling in memory", "dir", cacheDir, "error", err)
		}
		r, err = New(context.Background(), Options{Logger: log})
	}
	if err != nil {
		return nil, err
	}
	shared = r
	return r, nil
}

// DefaultCacheDir is where the compilation cache lives: <storagePath>/wasm-cache,
// or <user cache dir>/floe/wasm-cache when storagePath is empty (an empty
// result, when neither is known, means no disk cache).
func DefaultCacheDir(storagePath string) string {
	if storagePath != "" {
		return filepath.Join(storagePath, "wasm-cache")
	}
	dir, err := os.UserCacheDir()
	if err != nil || dir == "" {
		return ""
	}
	return filepath.Join(dir, "floe", "wasm-cache")
}

// New makes a runtime: wazero's compiler where supported (unless
// opts.Interpreter), WASI preview 1, the env module.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{
		cacheDir:     opts.CacheDir,
		log:          log,
		interpreter:  opts.Interpreter,
		compiler:     !opts.Interpreter && compilerSupported(),
		inlineChecks: !opts.WazeroStopChecks,
		modules:      map[moduleKey]*moduleEntry{},
	}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm compilation cache %s: %w", opts.CacheDir, err)
		}
		r.cache = c
	} else {
		// Shared by the two engines, so a module compiled for one is
		// not compiled again for the other (when the code is the same).
		r.cache = wazero.NewCompilationCache()
	}
	e, err := r.newEngine(ctx, true)
	if err != nil {
		_ = r.cache.Close(ctx)
		return nil, err
	}
	r.bounded = e
	return r, nil
}

func (r *Runtime) newEngine(ctx context.Context, bounded bool) (*engine, error) {
	var cfg wazero.RuntimeConfig
	if r.interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	} else {
		cfg = wazero.NewRuntimeConfig() // compiler where supported, else interpreter
	}
	cfg = cfg.WithCloseOnContextDone(bounded).WithCompilationCache(r.cache)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: WASI: %w", err)
	}
	return &engine{rt: rt, wasi: rt.Module(wasi_snapshot_preview1.ModuleName), bounded: bounded}, nil
}

// engine returns the bounded engine, or the trusted one (made on first use).
func (r *Runtime) engine(ctx context.Context, trusted bool) (*engine, error) {
	if !trusted {
		return r.bounded, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.trusted == nil {
		e, err := r.newEngine(ctx, false)
		if err != nil {
			return nil, err
		}
		r.trusted = e
	}
	return r.trusted, nil
}

// Compiler reports whether the runtime compiles to machine code (else it interprets).
func (r *Runtime) Compiler() bool { return r.compiler }

// CacheDir is the compilation cache directory ("" when in memory only).
func (r *Runtime) CacheDir() string { return r.cacheDir }

// Close releases the runtime and every module compiled by it. The shared
// runtime should not be closed.
func (r *Runtime) Close(ctx context.Context) error {
	err := r.bounded.rt.Close(ctx)
	r.mu.Lock()
	if r.trusted != nil {
		err = errors.Join(err, r.trusted.rt.Close(ctx))
	}
	r.mu.Unlock()
	r.mems.drain()
	return errors.Join(err, r.cache.Close(ctx))
}

// Compile reads and compiles the module at path for calls with deadlines.
// A file already compiled (same content) is returned from memory; compiled
// code also persists in the cache directory across restarts.
func (r *Runtime) Compile(ctx context.Context, path string) (*Module, error) {
	return r.compileFile(ctx, path, false)
}

// CompileTrusted is Compile for code without the termination checks:
// calls run faster, but Timeout is not enforced (a call that never returns
// blocks its goroutine forever). For modules the operator trusts.
func (r *Runtime) CompileTrusted(ctx context.Context, path string) (*Module, error) {
	return r.compileFile(ctx, path, true)
}

func (r *Runtime) compileFile(ctx context.Context, path string, trusted bool) (*Module, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot access wasm program at %s: %w", path, err)
	}
	return r.compileBytes(ctx, path, bin, trusted)
}

// CompileBytes compiles a module held in memory (for calls with deadlines);
// name identifies it in messages and logs (a path, usually).
func (r *Runtime) CompileBytes(ctx context.Context, name string, bin []byte) (*Module, error) {
	return r.compileBytes(ctx, name, bin, false)
}

func (r *Runtime) compileBytes(ctx context.Context, name string, bin []byte, trusted bool) (*Module, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, fmt.Errorf("wasm module %s: not a WebAssembly binary module (WASM bytecode expected; AOT objects and text format are not supported)", name)
	}
	key := moduleKey{sha256.Sum256(bin), trusted}
	// Code with deadlines gets Floe's inline stop checks and runs on the
	// engine without wazero's (see stopcheck.go); the interpreter, a module
	// the rewriter cannot decode or one without memory, and
	// Options.WazeroStopChecks keep wazero's checks.
	var checked []byte
	if !trusted && r.compiler && r.inlineChecks {
		var ierr error
		if checked, ierr = addStopChecks(bin); ierr != nil {
			r.log.Debug("wasm: module compiled with wazero's deadline checks (slower)", "module", name, "reason", ierr)
			checked = nil
		}
	}
	e, err := r.engine(ctx, trusted || checked != nil)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	me := r.modules[key]
	if me == nil {
		me = &moduleEntry{}
		r.modules[key] = me
	}
	r.mu.Unlock()
	me.once.Do(func() {
		if checked != nil {
			me.mod, me.err = r.compile(ctx, e, name, checked)
			if me.err == nil {
				me.mod.code.stopChecks = true
			}
		} else {
			me.mod, me.err = r.compile(ctx, e, name, bin)
		}
		if me.err != nil {
			// Do not remember failures (a cancelled context, say).
			r.mu.Lock()
			delete(r.modules, key)
			r.mu.Unlock()
		}
	})
	if me.err != nil {
		return nil, me.err
	}
	if me.mod.name == name {
		return me.mod, nil
	}
	// Same code under another name: share the compiled code, keep the name.
	return me.mod.withName(name), nil
}

// compilerSupported mirrors wazero's choice for NewRuntimeConfig (it also
// requires SSE4.1 on amd64, which every amd64 CPU wazero meets in practice).
func compilerSupported() bool {
	switch goruntime.GOOS {
	case "linux", "darwin", "freebsd", "netbsd", "windows":
		return goruntime.GOARCH == "amd64" || goruntime.GOARCH == "arm64"
	case "dragonfly", "solaris", "illumos":
		return goruntime.GOARCH == "amd64"
	}
	return false
}
