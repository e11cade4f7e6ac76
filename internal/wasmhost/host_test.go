package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	r, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// logBuf collects log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// callFilter runs a Fluent Bit filter function with a JSON record, the way
// the filter plugin does, and returns the result string.
func callFilter(t *testing.T, inst *Instance, fn, tag, record string, sec, nsec uint32) (string, error) {
	t.Helper()
	ctx := context.Background()
	tp, err := inst.Alloc(ctx, uint32(len(tag)+1))
	if err != nil || tp == 0 {
		t.Fatalf("alloc tag: %d %v", tp, err)
	}
	rp, err := inst.Alloc(ctx, uint32(len(record)+1))
	if err != nil || rp == 0 {
		t.Fatalf("alloc record: %d %v", rp, err)
	}
	inst.Write(tp, append([]byte(tag), 0))
	inst.Write(rp, append([]byte(record), 0))
	stack := []uint64{uint64(tp), uint64(len(tag)), uint64(sec), uint64(nsec), uint64(rp), uint64(len(record))}
	if err := inst.Call(ctx, fn, inst.Function(fn), stack); err != nil {
		return "", err
	}
	ret := uint32(stack[0])
	var s string
	if ret != 0 {
		s = string(inst.cstring(ret))
	}
	_ = inst.Free(ctx, tp)
	_ = inst.Free(ctx, rp)
	return s, nil
}

func TestNostdlibCFilter(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	mod, err := r.Compile(ctx, wasmtest.Path(t, "c_filter_nostdlib"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mod.Imports(), ","); !strings.Contains(got, "env.sprintf") || !strings.Contains(got, "env.malloc") {
		t.Fatalf("imports %s", got)
	}
	var logs logBuf
	inst, err := mod.Instantiate(ctx, InstanceConfig{Name: "wasm.0", Logger: logs.logger(), HeapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	if inst.heap == nil {
		t.Fatal("a -nostdlib module should get the host heap")
	}
	got, err := callFilter(t, inst, "c_filter", "dummy.local", `{"message":"dummy"}`, 1700000000, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"tag":"dummy.local","time":"1700000000.        5", "message":"Hello, from C!", "original": {"message":"dummy"}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestCommands(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	run := func(name string, cfg InstanceConfig) (string, *Instance, error) {
		t.Helper()
		mod, err := r.Compile(ctx, wasmtest.Path(t, name))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cfg.Stdout, cfg.Start = &out, true
		inst, err := mod.Instantiate(ctx, cfg)
		if inst != nil {
			defer inst.Close(ctx)
		}
		return out.String(), inst, err
	}
	t.Run("hello", func(t *testing.T) {
		out, inst, err := run("wasi_hello", InstanceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		want := "line 1\nline 2\nline 3\n" + strings.Repeat("x", 10000) + "\nlast"
		if out != want {
			t.Errorf("stdout %q…", out[:min(len(out), 40)])
		}
		if code, exited := inst.ExitCode(); code != 0 || !exited {
			t.Errorf("exit %d %v", code, exited)
		}
	})
	t.Run("exit 3", func(t *testing.T) {
		out, inst, err := run("wasi_exit_nonzero", InstanceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if out != "partial\n" {
			t.Errorf("stdout %q", out)
		}
		if code, exited := inst.ExitCode(); code != 3 || !exited {
			t.Errorf("exit %d %v", code, exited)
		}
	})
	t.Run("trap", func(t *testing.T) {
		out, inst, err := run("wasi_trap", InstanceConfig{})
		if err == nil || inst != nil {
			t.Fatalf("no error: %v", inst)
		}
		if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "wasi_trap.wasm") {
			t.Errorf("error %v", err)
		}
		if out != "before trap\n" {
			t.Errorf("stdout %q", out)
		}
	})
	t.Run("go command writes into accessible path", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		out, _, err := run("wasi_json", InstanceConfig{AccessiblePaths: []string{"."}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, `{"age":43,"name":"John Doe"`) {
			t.Errorf("stdout %q", out)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "helloworld.txt")); err != nil || string(b) != "Hello, world!\n" {
			t.Errorf("helloworld.txt: %q %v", b, err)
		}
	})
	t.Run("no accessible path", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		if _, _, err := run("wasi_json", InstanceConfig{}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "helloworld.txt")); err == nil {
			t.Error("the guest wrote a file without accessible paths")
		}
	})
	t.Run("reactor has no entry point", func(t *testing.T) {
		_, _, err := run("c_wasi_filter", InstanceConfig{})
		if err == nil || !strings.Contains(err.Error(), "WASI main function is not found") {
			t.Errorf("error %v", err)
		}
	})
}

// _start is never run for a filter instance (Start false).
func TestStartNotRun(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	mod, err := r.Compile(ctx, wasmtest.Path(t, "wasi_hello"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	inst, err := mod.Instantiate(ctx, InstanceConfig{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	if out.Len() != 0 {
		t.Errorf("_start ran: %q", out.String())
	}
	if _, exited := inst.ExitCode(); exited {
		t.Error("exited")
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	mod, err := r.Compile(ctx, wasmtest.Path(t, "c_wasi_filter"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := mod.Instantiate(ctx, InstanceConfig{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	// Many quick calls: the reused timer never fires for a finished call.
	for range 1000 {
		if _, err := callFilter(t, inst, "c_loop", "t", `{"a":1}`, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err = callFilter(t, inst, "c_loop", "t", `{"a":"loop"}`, 0, 0)
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	if inst.Broken() == nil {
		t.Error("not broken after a timeout")
	}
	if _, err := inst.CallFunc(ctx, "c_echo", 0, 0, 0, 0, 0, 0); !errors.Is(err, ErrBroken) {
		t.Errorf("call on a broken instance: %v", err)
	}

	// Cancelling the caller's context stops the call too.
	inst2, err := mod.Instantiate(ctx, InstanceConfig{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer inst2.Close(ctx)
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	p, _ := inst2.Alloc(ctx, 16)
	inst2.Write(p, []byte("loop\x00"))
	start = time.Now()
	_, err = inst2.CallFunc(cctx, "c_loop", uint64(p), 0, 0, 0, uint64(p), 4)
	if !errors.Is(err, ErrCanceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

// Memory reused from an earlier instance is zero.
func TestMemoryReuseIsZeroed(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	mod, err := r.Compile(ctx, wasmtest.Path(t, "c_filter_nostdlib"))
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("secret!"), 1<<18) // 1.8 MB: beyond keepResident
	for round := range 3 {
		inst, err := mod.Instantiate(ctx, InstanceConfig{HeapSize: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		mem := inst.Memory()
		b, _ := mem.Read(0, mem.Size())
		if i := bytes.Index(b, []byte("secret!")); i >= 0 {
			t.Fatalf("round %d: memory of an earlier instance visible at %#x", round, i)
		}
		p, _ := inst.Alloc(ctx, uint32(len(secret)))
		if p == 0 || !inst.Write(p, secret) {
			t.Fatal("cannot write")
		}
		_ = inst.Close(ctx)
	}
}

func TestHeap(t *testing.T) {
	h := newHeap(65536, 8192)
	a := h.alloc(100)
	b := h.alloc(1)
	c := h.alloc(0)
	if a != 65536 || b != 65536+104 || c != 65536+112 {
		t.Fatalf("a %d b %d c %d", a, b, c)
	}
	if h.alloc(8192) != 0 {
		t.Fatal("allocated more than the heap")
	}
	h.release(b)
	if d := h.alloc(8); d != b {
		t.Fatalf("freed block not reused: %d", d)
	}
	h.release(a)
	h.release(b)
	h.release(c)
	h.release(12345) // unknown: ignored
	if h.inUse != 0 || len(h.free) != 1 || h.free[0] != (span{65536, 8192}) {
		t.Fatalf("not coalesced: %+v in use %d", h.free, h.inUse)
	}
	if p := h.alloc(8192); p != 65536 {
		t.Fatalf("whole heap: %d", p)
	}
}

func TestLineWriter(t *testing.T) {
	var logs logBuf
	w := NewLineWriter(logs.logger(), "wasm", "f.0")
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\r\n\nthree"))
	w.Flush()
	got := logs.String()
	for _, want := range []string{`msg=one wasm=f.0`, `msg=two wasm=f.0`, `msg="" wasm=f.0`, `msg=three wasm=f.0`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %s", want, got)
		}
	}
}

// Instances made, used and closed from many goroutines at once (-race).
func TestInstancesHammer(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	mods := map[string]*Module{}
	for _, n := range []string{"c_wasi_filter", "c_filter_nostdlib"} {
		m, err := r.Compile(ctx, wasmtest.Path(t, n))
		if err != nil {
			t.Fatal(err)
		}
		mods[n] = m
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name, fn := "c_wasi_filter", "c_echo"
				if (g+i)%2 == 1 {
					name, fn = "c_filter_nostdlib", "c_filter"
				}
				inst, err := mods[name].Instantiate(ctx, InstanceConfig{HeapSize: 1 << 16})
				if err != nil {
					t.Error(err)
					return
				}
				for j := range 5 {
					rec := fmt.Sprintf(`{"g":%d,"i":%d,"j":%d}`, g, i, j)
					got, err := callFilter(t, inst, fn, "tag", rec, 1, 2)
					if err != nil || !strings.Contains(got, rec) {
						t.Errorf("%s: %q %v", name, got, err)
					}
				}
				_ = inst.Close(ctx)
			}
		}()
	}
	wg.Wait()
}

func TestCompileOnce(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	p1 := wasmtest.Path(t, "c_wasi_filter")
	a, err := r.Compile(ctx, p1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Compile(ctx, p1)
	if err != nil || a != b {
		t.Fatalf("compiled twice: %p %p %v", a, b, err)
	}
	dir := t.TempDir()
	p2 := filepath.Join(dir, "copy.wasm")
	if err := os.WriteFile(p2, wasmtest.Guest("c_wasi_filter"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := r.Compile(ctx, p2)
	if err != nil || c.code != a.code || c.Name() != p2 {
		t.Fatalf("same bytes under another name not shared: %v", err)
	}
	if tr, err := r.CompileTrusted(ctx, p1); err != nil || tr.code == a.code || tr.Bounded() || !a.Bounded() {
		t.Fatalf("trusted: %v", err)
	}
}

// A module without linear memory must not panic the host.
func TestModuleWithoutMemory(t *testing.T) {
	ctx := context.Background()
	rt, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	bin := []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
		0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type: () -> i32
		0x03, 0x02, 0x01, 0x00, // func 0 of type 0
		0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, // export "f"
		0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b, // i32.const 0
	}
	mod, err := rt.CompileBytes(ctx, "nomem", bin)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := mod.Instantiate(ctx, InstanceConfig{Name: "nomem", HeapSize: 8192, MemoryLimit: 1 << 20})
	// Either a clear error or a working instance; never a panic.
	if err == nil {
		_ = inst.MemoryBytes()
		_ = inst.Close(ctx)
	}
}
