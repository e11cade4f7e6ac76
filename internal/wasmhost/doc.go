// Package wasmhost runs WebAssembly modules for Floe on wazero, with the
// environment Fluent Bit's WAMR build gives them, so modules written for
// Fluent Bit run unchanged.
//
// # Runtime, modules, instances
//
//	rt, err := wasmhost.Shared(wasmhost.DefaultCacheDir(storagePath), logger) // process-wide
//	mod, err := rt.Compile(ctx, "/path/filter.wasm") // compiled once per file content
//	inst, err := mod.Instantiate(ctx, wasmhost.InstanceConfig{
//		Name:            "wasm.0",        // shown in logs next to guest output
//		AccessiblePaths: []string{"."},   // WASI preopens, host path = guest path
//		HeapSize:        8192,            // host heap when the module exports no malloc/free
//		MemoryLimit:     128_000_000,     // cap on linear memory (bytes)
//		Timeout:         5 * time.Second, // deadline of each call (and of _initialize/_start)
//		Stdout:          w,               // nil: guest stdout goes to the log, line by line
//		Start:           false,           // true: run the WASI command (_start) in Instantiate
//	})
//	defer inst.Close(ctx)
//	err = inst.Call(ctx, "fn", inst.Function("fn"), stack) // errors.Is(err, wasmhost.ErrTimeout) …
//
// A Runtime is wazero (its optimizing compiler where supported, else the
// interpreter; Options.Interpreter forces it) with WASI preview 1 and a
// compilation cache, on disk when a directory is given: Shared keeps one per
// process, New makes others (tests, benchmarks). DefaultCacheDir is
// <storage.path>/wasm-cache, or <user cache dir>/floe/wasm-cache when
// storage.path is empty.
//
// A Module is compiled code: safe for concurrent use, it instantiates any
// number of Instances. Compile checks the module's imports: WASI preview 1
// functions, and from module "env" the libc helpers of Fluent Bit's WAMR
// libc-builtin (malloc, free, calloc, realloc, strdup, memcpy, memmove,
// memset, memcmp, memchr, strlen, strcmp, strncmp, strcasecmp, strncasecmp,
// strcpy, strncpy, strchr, strrchr, strstr, strspn, strcspn, printf,
// sprintf, snprintf and their v* forms, puts, putchar, atoi, strtol,
// strtoul, strtoll, strtoull, the is*/to* ctype functions, clock_gettime,
// clock, abort, exit, __assert_fail …). Only the env functions a module
// imports are defined, with the signature it declares; an import Floe does
// not provide, or a known one with another signature, is an error naming
// the module and the import. The printf family takes (format, va_list) with
// the arguments laid out by clang's wasm32 varargs ABI and formats as C does.
//
// Compile produces code that can be stopped at its deadline. wazero can
// check at every loop back-edge and function entry whether the call must
// end (WithCloseOnContextDone), at the price of an exit to Go each time
// (wazero issue #2466: loop-heavy code runs several times slower); by
// default Floe adds its own check to the module instead (a load, a branch
// and a countdown that leaves to Go every few thousand checks so the
// goroutine stays preemptible; stopcheck.go), and keeps wazero's only for
// modules the rewriter cannot take, the interpreter, and
// Options.WazeroStopChecks. CompileTrusted compiles without checks, in a second wazero
// runtime sharing the cache: faster, but a call that never returns blocks
// its goroutine for good.
//
// An Instance is NOT safe for concurrent use: one goroutine at a time.
// Guest memory is allocated as WAMR does: with the module's malloc/free when
// it exports both with the exact signatures (i32)->i32 and (i32)->(); else
// from a host heap of HeapSize bytes (at least 8192) appended to linear
// memory — memory grows by ceil(HeapSize/64KiB) pages before _initialize
// runs — that the env malloc family shares. Reactors (exporting
// _initialize) have it run at instantiation; _start only runs with
// InstanceConfig.Start.
//
// Linear memory cannot grow past MemoryLimit: memory.grow fails in the
// guest, as with wazero's WithMemoryLimitPages but per instance (through
// wazero's experimental MemoryAllocator). On Linux and the BSDs it is an
// anonymous mapping reserved once (growing never copies; it is outside the
// Go heap), reused zeroed by later instances.
//
// A call that trapped, timed out, exited (proc_exit, exit, abort) or ran
// into the memory cap leaves the instance Broken; NeedsRecycle also says
// when an instance grew past RecycleThreshold (80%) of its memory cap or of
// its host heap, or an env malloc failed. Such an instance is to be closed
// and replaced: nothing a guest does at run time panics the host.
//
// # Commands (exec_wasi)
//
// With Start set, Instantiate runs the WASI entry point (_start, else main,
// __main_argc_argv or _main) with Args, Env, Stdin and Stdout; proc_exit
// with any code ends it normally and ExitCode reports the code. A trap, a
// timeout or a missing entry point is an error.
//
// Guest stdout and stderr (WASI fd 1 and 2, and env printf, puts, putchar)
// go, when no writer is given, to the logger line by line (LineWriter), with
// the attributes wasm=<Name>, module=<file name>, stream=stdout|stderr.
package wasmhost
