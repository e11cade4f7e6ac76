package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// spinModule exports "spin", a function looping forever with no call and
// no memory access (nothing but the loop's back-edge to check at), and
// "one" returning the value of a global it defines; withGlobal adds a
// global section of its own, so the stop globals are appended after it;
// withMemory a one-page memory (without, the inline checks have no
// memory.grow to leave to Go with, and wazero's checks are kept).
func spinModule(withGlobal, withMemory bool) []byte {
	bin := []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x08, 0x02, 0x60, 0x00, 0x00, 0x60, 0x00, 0x01, 0x7f, // types: ()->(), ()->i32
		0x03, 0x03, 0x02, 0x00, 0x01, // funcs: spin, one
	}
	if withMemory {
		bin = append(bin, 0x05, 0x03, 0x01, 0x00, 0x01) // memory: min 1 page
	}
	if withGlobal {
		bin = append(bin, 0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x07, 0x0b) // mut i32 = 7
	}
	bin = append(bin,
		0x07, 0x0e, 0x02, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00, 0x03, 'o', 'n', 'e', 0x00, 0x01, // exports
		0x0a, 0x0e, 0x02,
		0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // spin: loop br 0 end
	)
	if withGlobal {
		bin = append(bin, 0x04, 0x00, 0x23, 0x00, 0x0b) // one: global.get 0
	} else {
		bin = append(bin, 0x04, 0x00, 0x41, 0x07, 0x0b) // one: i32.const 7
	}
	return bin
}

// A guest spinning in a loop stops at its deadline and when its caller
// gives up, with Floe's inline checks and with wazero's.
func TestStopChecksStopSpinningGuest(t *testing.T) {
	ctx := context.Background()
	for _, ctxChecks := range []bool{false, true} {
		rt, err := New(ctx, Options{WazeroStopChecks: ctxChecks})
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close(ctx)
		for _, variant := range [][2]bool{{false, true}, {true, true}, {true, false}} {
			withGlobal, withMemory := variant[0], variant[1]
			mod, err := rt.CompileBytes(ctx, "spin", spinModule(withGlobal, withMemory))
			if err != nil {
				t.Fatalf("context checks %v, global %v: %v", ctxChecks, withGlobal, err)
			}
			if got := mod.code.stopChecks; got != (!ctxChecks && rt.Compiler() && withMemory) {
				t.Errorf("context checks %v, memory %v: stopChecks = %v", ctxChecks, withMemory, got)
			}
			if !mod.Bounded() {
				t.Errorf("context checks %v: module not bounded", ctxChecks)
			}
			inst, err := mod.Instantiate(ctx, InstanceConfig{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			// The module's own global is untouched by the added one.
			if res, err := inst.CallFunc(ctx, "one"); err != nil || res[0] != 7 {
				t.Fatalf("one() = %v, %v; want 7", res, err)
			}
			start := time.Now()
			_, err = inst.CallFunc(ctx, "spin")
			if !errors.Is(err, ErrTimeout) || time.Since(start) > 3*time.Second {
				t.Fatalf("context checks %v, global %v: spin: %v after %v, want a timeout after ~100ms", ctxChecks, withGlobal, err, time.Since(start))
			}
			if _, err := inst.CallFunc(ctx, "one"); !errors.Is(err, ErrBroken) {
				t.Errorf("call after timeout: %v, want ErrBroken", err)
			}
			_ = inst.Close(ctx)

			inst, err = mod.Instantiate(ctx, InstanceConfig{Timeout: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(50*time.Millisecond, cancel)
			start = time.Now()
			_, err = inst.CallFunc(cctx, "spin")
			if !errors.Is(err, ErrCanceled) || time.Since(start) > 3*time.Second {
				t.Fatalf("context checks %v: cancelled spin: %v after %v", ctxChecks, err, time.Since(start))
			}
			_ = inst.Close(ctx)
		}
	}
}

// Every committed guest and example module goes through the rewriter (so
// none falls back to wazero's slower checks); the C guests are compiled
// here, a Go one by TestGoModuleGetsInlineChecks and the rest (seconds
// each) by the wasm filter's tests.
func TestStopChecksOnCommittedModules(t *testing.T) {
	paths, _ := filepath.Glob("../../examples/wasm/*/*.wasm")
	if len(paths) == 0 {
		t.Fatal("no example modules found")
	}
	bins := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bins[p] = b
	}
	for _, n := range wasmtest.Names() {
		if n != "not_wasm" {
			bins[n] = wasmtest.Guest(n)
		}
	}
	r := compilerRuntime(t)
	for name, bin := range bins {
		out, err := addStopChecks(bin)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Contains(out, []byte(stopGlobalName)) {
			t.Errorf("%s: rewritten module does not export %s", name, stopGlobalName)
		}
		if !strings.HasPrefix(name, "c_") {
			continue
		}
		mod, err := r.CompileBytes(context.Background(), name, bin)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !mod.code.stopChecks {
			t.Errorf("%s: compiled without inline stop checks", name)
		}
	}
}

// Input the rewriter cannot decode is an error (never a panic), so the
// caller falls back to wazero's checks.
func TestStopChecksBadInput(t *testing.T) {
	good := spinModule(true, true)
	for i := 8; i < len(good); i++ {
		_, _ = addStopChecks(good[:i]) // must not panic
	}
	if _, err := addStopChecks([]byte("nope")); err == nil {
		t.Error("not wasm: no error")
	}
	// try (legacy exception handling) in a body: unsupported.
	eh := append([]byte(nil), good...)
	eh[len(eh)-11] = 0x06 // the loop opcode of spin
	if _, err := addStopChecks(eh); err == nil {
		t.Error("exception handling opcode: no error")
	}
}

// A guest spinning under Floe's inline checks leaves to Go every
// yieldEvery checks, so a garbage collection that starts meanwhile stops
// the world within microseconds instead of waiting for the guest (forever,
// and with the timer goroutine stopped too: the whole process hung before
// the checks counted down). The spin runs in a child process so that a
// regression fails this test at its deadline instead of hanging it.
func TestSpinningGuestDoesNotBlockGC(t *testing.T) {
	if os.Getenv("FLOE_SPIN_GC_CHILD") == "1" {
		spinWhileCollecting(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSpinningGuestDoesNotBlockGC$", "-test.v")
	cmd.Env = append(os.Environ(), "FLOE_SPIN_GC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the child hung with a guest spinning and a GC pending (killed after 60 s):\n%s", out)
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

func spinWhileCollecting(t *testing.T) {
	ctx := context.Background()
	rt := compilerRuntime(t)
	mod, err := rt.CompileBytes(ctx, "spin", spinModule(false, true))
	if err != nil {
		t.Fatal(err)
	}
	if !mod.code.stopChecks {
		t.Fatal("spin compiled without inline stop checks")
	}
	const timeout = 3 * time.Second
	inst, err := mod.Instantiate(ctx, InstanceConfig{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	gcs := make(chan time.Duration, 1)
	go func() {
		time.Sleep(200 * time.Millisecond) // the guest is spinning by now
		start := time.Now()
		for range 5 {
			runtime.GC()
		}
		gcs <- time.Since(start)
	}()
	start := time.Now()
	_, err = inst.CallFunc(ctx, "spin")
	spun := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("spin: %v, want a timeout", err)
	}
	took := <-gcs
	// Five collections take milliseconds; had they waited for the guest
	// they would have ended only after its timeout.
	if took > timeout/2 {
		t.Fatalf("5 GCs during the spin took %v (the spin ran %v): they waited for the guest", took, spun)
	}
	t.Logf("5 GCs took %v while the guest spun for %v", took, spun)
}

// A module built by the Go toolchain (every function one loop around a
// br_table) gets the inline checks too, and still has a deadline.
func TestGoModuleGetsInlineChecks(t *testing.T) {
	ctx := context.Background()
	r := compilerRuntime(t)
	mod, err := r.Compile(ctx, wasmtest.Path(t, "wasi_json"))
	if err != nil {
		t.Fatal(err)
	}
	if !mod.code.stopChecks || !mod.Bounded() {
		t.Errorf("wasi_json: inline checks %v, bounded %v", mod.code.stopChecks, mod.Bounded())
	}
}

// countModule exports count(n) -> n, counting in a loop left by a branch
// out of an enclosing block, and count2(n) -> n, a loop with a result left
// by falling through its end.
func countModule() []byte {
	code1 := []byte{0x01, 0x01, 0x7f, // one i32 local: i
		0x02, 0x40, 0x03, 0x40, // block loop
		0x20, 0x01, 0x20, 0x00, 0x4f, 0x0d, 0x01, // i >= n: br_if 1 (out of the block)
		0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, // i++
		0x0c, 0x00, 0x0b, 0x0b, 0x20, 0x01, 0x0b} // br 0 end end; i
	code2 := []byte{0x01, 0x01, 0x7f,
		0x03, 0x7f, // loop (result i32)
		0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, // i++
		0x20, 0x01, 0x20, 0x00, 0x49, 0x0d, 0x00, // i < n: br_if 0
		0x20, 0x01, 0x0b, 0x0b} // i end end
	bin := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type (i32) -> i32
		0x03, 0x03, 0x02, 0x00, 0x00,
		0x05, 0x03, 0x01, 0x00, 0x01,
		0x07, 0x12, 0x02, 0x05, 'c', 'o', 'u', 'n', 't', 0x00, 0x00, 0x06, 'c', 'o', 'u', 'n', 't', '2', 0x00, 0x01}
	body := appendU32(nil, 2)
	for _, c := range [][]byte{code1, code2} {
		body = append(appendU32(body, uint32(len(c))), c...)
	}
	return append(appendU32(append(bin, 0x0a), uint32(len(body))), body...)
}

// Loops wrapped by the rewriter keep their meaning across the exits to Go
// every yieldEvery checks (branches out of them, results through them),
// and the budget counts down from yieldEvery as it should.
func TestWrappedLoopsCountRight(t *testing.T) {
	ctx := context.Background()
	r := compilerRuntime(t)
	mod, err := r.CompileBytes(ctx, "count", countModule())
	if err != nil {
		t.Fatal(err)
	}
	if !mod.code.stopChecks {
		t.Fatal("count compiled without inline stop checks")
	}
	inst, err := mod.Instantiate(ctx, InstanceConfig{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	budget := inst.mod.ExportedGlobal(budgetGlobalName)
	for _, fn := range []string{"count", "count2"} {
		for _, n := range []uint64{1, 2, yieldEvery - 1, yieldEvery, yieldEvery + 1, 10*yieldEvery + 7} {
			stack := []uint64{n}
			if err := inst.Call(ctx, fn, inst.Function(fn), stack); err != nil {
				t.Fatalf("%s(%d): %v", fn, n, err)
			}
			if stack[0] != n {
				t.Errorf("%s(%d) = %d", fn, n, stack[0])
			}
			if b := int32(budget.Get()); b < 0 || b > yieldEvery {
				t.Fatalf("after %s(%d) the budget is %d, outside [0, %d]", fn, n, b, yieldEvery)
			}
		}
	}
}

func TestAppendS32(t *testing.T) {
	for _, v := range []int32{0, 1, 63, 64, -1, -64, -65, 8192, -8192, 1 << 20, math.MaxInt32, math.MinInt32} {
		b := appendS32(nil, v)
		var got int64
		shift := 0
		for i, c := range b {
			got |= int64(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				if i != len(b)-1 {
					t.Fatalf("%d: % x ends early", v, b)
				}
				if c&0x40 != 0 {
					got |= -1 << shift
				}
			}
		}
		if int32(got) != v {
			t.Errorf("appendS32(%d) = % x, reads back as %d", v, b, got)
		}
	}
}

// compilerRuntime is a runtime with default options, closed with the test;
// the test is skipped where wazero has no compiler (no inline checks).
func compilerRuntime(t *testing.T) *Runtime {
	t.Helper()
	r, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	if !r.Compiler() {
		t.Skip("no wazero compiler on this platform")
	}
	return r
}
