package wasmhost

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// hostInstance is a -nostdlib module's instance: host heap, for tests of
// the env functions.
func hostInstance(t *testing.T) *Instance {
	t.Helper()
	r := newRuntime(t)
	ctx := context.Background()
	mod, err := r.Compile(ctx, wasmtest.Path(t, "c_filter_nostdlib"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := mod.Instantiate(ctx, InstanceConfig{HeapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Close(ctx) })
	return inst
}

// cstr puts a NUL-terminated string in guest memory.
func cstr(t *testing.T, in *Instance, s string) uint32 {
	t.Helper()
	p := in.heap.alloc(uint32(len(s) + 1))
	if p == 0 || !in.Write(p, append([]byte(s), 0)) {
		t.Fatal("no room")
	}
	return p
}

type ll int64 // a long long vararg

// va lays args out as clang's wasm32 varargs ABI does.
func va(t *testing.T, in *Instance, args ...any) uint32 {
	t.Helper()
	var b []byte
	align := func(n int) {
		for len(b)%n != 0 {
			b = append(b, 0)
		}
	}
	for _, a := range args {
		if r, ok := a.(rune); ok {
			a = int(r)
		}
		switch v := a.(type) {
		case int:
			align(4)
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
		case ll:
			align(8)
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case float64:
			align(8)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		case string:
			align(4)
			b = binary.LittleEndian.AppendUint32(b, cstr(t, in, v))
		default:
			t.Fatalf("vararg %T", a)
		}
	}
	p := in.heap.alloc(uint32(len(b) + 8))
	p = (p + 7) &^ 7
	in.Write(p, b)
	return p
}

func TestPrintf(t *testing.T) {
	in := hostInstance(t)
	cases := []struct {
		format string
		args   []any
		want   string
	}{
		{"%d", []any{42}, "42"},
		{"%i|%u", []any{-1, -1}, "-1|4294967295"},
		{"%5d", []any{42}, "   42"},
		{"%-5d|", []any{42}, "42   |"},
		{"%05d", []any{-42}, "-0042"},
		{"%+d % d", []any{5, 5}, "+5  5"},
		{"%.3d|%8.3d|%.0d|", []any{7, -7, 0}, "007|    -007||"},
		{"%x %#x %#X %X %o %#o %#x", []any{255, 255, 255, 255, 8, 8, 0}, "ff 0xff 0XFF FF 10 010 0"},
		{"%ld %lu %9ld|", []any{-3, 3, 5}, "-3 3         5|"},
		{"%lld %llu %llx", []any{ll(-1 << 40), ll(-1), ll(0xdeadbeef12)}, "-1099511627776 18446744073709551615 deadbeef12"},
		{"%s %lld.%9ld %s", []any{"tag", ll(1700000000), 5, "{}"}, "tag 1700000000.        5 {}"},
		{"%d %lld %d", []any{1, ll(2), 3}, "1 2 3"},
		{"%hhd %hd %hu", []any{0x1ff, 0x18000, -1}, "-1 -32768 65535"},
		{"%c%c|%3c|%-3c|", []any{'o', 'k', 'x', 'y'}, "ok|  x|y  |"},
		{"%s|%.1s|%5s|%-5s|%*s|%-*s|%.*s", []any{"hi", "hi", "ab", "ab", 4, "a", 3, "b", 2, "xyz"}, "hi|h|   ab|ab   |   a|b  |xy"},
		{"%*d|%-*d", []any{-4, 1, 3, 2}, "1   |2  "},
		{"%s", []any{0}, "(null)"},
		{"%p", []any{0x1234}, "0x1234"},
		{"%08.3f|%e|%E", []any{3.14159, 12345.678, 0.000123}, "0003.142|1.234568e+04|1.230000E-04"},
		{"%g %g %g %g", []any{0.0001, 123456789.0, 100000.0, 1e-5}, "0.0001 1.23457e+08 100000 1e-05"},
		{"%.3g %#.3g %.10g %G", []any{3.14159, 1.0, 1.0 / 3, 1e-10}, "3.14 1.00 0.3333333333 1E-10"},
		{"%10.4f|%-10.2e|%+.1f", []any{-2.5, 1234.5, 2.0}, "   -2.5000|1.23e+03  |+2.0"},
		{"%.0f %.0f %#.0f %.0e", []any{2.5, 3.5, 3.0, 12345.0}, "2 4 3. 1e+04"},
		{"%f", []any{1e20}, "100000000000000000000.000000"},
		{"%f %F %5.1f", []any{math.Inf(1), math.NaN(), math.Inf(-1)}, "inf NAN  -inf"},
		{"%a", []any{1.0}, "0x1p+0"},
		{"100%% %q", []any{}, "100% %q"},
		{"trailing %", []any{}, "trailing %"},
	}
	for _, c := range cases {
		got := string(in.format(cstr(t, in, c.format), va(t, in, c.args...)))
		if got != c.want {
			t.Errorf("printf(%q) = %q, want %q", c.format, got, c.want)
		}
	}
}

// call runs an env function as the guest would.
func call(t *testing.T, in *Instance, name string, args ...uint64) uint64 {
	t.Helper()
	spec, ok := envSpecs[name]
	if !ok {
		t.Fatalf("no env.%s", name)
	}
	stack := make([]uint64, max(len(args), 1))
	copy(stack, args)
	spec.impl(0)(context.Background(), in, stack)
	return stack[0]
}

func TestEnvStrings(t *testing.T) {
	in := hostInstance(t)
	s := func(v string) uint64 { return uint64(cstr(t, in, v)) }
	i32 := func(v uint64) int32 { return int32(uint32(v)) }

	if n := call(t, in, "strlen", s("hello")); n != 5 {
		t.Errorf("strlen %d", n)
	}
	if r := i32(call(t, in, "strcmp", s("abc"), s("abd"))); r >= 0 {
		t.Errorf("strcmp %d", r)
	}
	if r := i32(call(t, in, "strcmp", s("abc"), s("ab"))); r <= 0 {
		t.Errorf("strcmp %d", r)
	}
	if r := call(t, in, "strncmp", s("abcX"), s("abcY"), 3); r != 0 {
		t.Errorf("strncmp %d", r)
	}
	if r := call(t, in, "strncasecmp", s("HeLLo"), s("hello!"), 5); r != 0 {
		t.Errorf("strncasecmp %d", r)
	}
	if r := i32(call(t, in, "memcmp", s("\xff"), s("\x01"), 1)); r <= 0 {
		t.Errorf("memcmp is not unsigned: %d", r)
	}
	hay := s("find the needle here")
	if p := call(t, in, "strstr", hay, s("needle")); p != hay+9 {
		t.Errorf("strstr %d", p-hay)
	}
	if p := call(t, in, "strstr", hay, s("nope")); p != 0 {
		t.Errorf("strstr %d", p)
	}
	if p := call(t, in, "strchr", hay, 'h'); p != hay+6 {
		t.Errorf("strchr %d", p-hay)
	}
	if p := call(t, in, "strchr", hay, 0); p != hay+20 {
		t.Errorf("strchr NUL %d", p-hay)
	}
	if p := call(t, in, "memchr", hay, 'z', 20); p != 0 {
		t.Errorf("memchr %d", p)
	}
	if n := call(t, in, "strspn", s("aabbc"), s("ab")); n != 4 {
		t.Errorf("strspn %d", n)
	}
	if n := call(t, in, "strcspn", s("hello, world"), s(", ")); n != 5 {
		t.Errorf("strcspn %d", n)
	}
	dst := uint64(in.heap.alloc(16))
	call(t, in, "memset", dst, 'z', 16)
	call(t, in, "strncpy", dst, s("ab"), 4)
	if b, _ := in.mem.Read(uint32(dst), 6); string(b) != "ab\x00\x00zz" {
		t.Errorf("strncpy %q", b)
	}
	call(t, in, "strcpy", dst, s("xyz"))
	dup := call(t, in, "strdup", dst)
	if string(in.cstring(uint32(dup))) != "xyz" || dup == dst {
		t.Errorf("strdup")
	}
	call(t, in, "memmove", dst+1, dst, 3)
	if b, _ := in.mem.Read(uint32(dst), 4); string(b) != "xxyz" {
		t.Errorf("memmove %q", b)
	}
	for _, c := range []struct {
		name, in string
		base     uint64
		want     int64
		end      uint32
	}{
		{"strtol", "  -123abc", 10, -123, 6},
		{"strtol", "0x1F", 0, 31, 4},
		{"strtol", "017", 0, 15, 3},
		{"strtol", "99999999999", 10, math.MaxInt32, 11},
		{"strtol", "-99999999999", 10, math.MinInt32, 12},
		{"strtol", "zz", 36, 1295, 2},
		{"strtol", "abc", 10, 0, 0},
		{"strtoul", "-1", 10, math.MaxUint32, 2},
		{"strtoul", "4294967296", 10, math.MaxUint32, 10},
		{"atoi", " +42x", 10, 42, 0},
		{"atoi", "-7", 10, -7, 0},
	} {
		p := s(c.in)
		endp := uint64(in.heap.alloc(4))
		var got uint64
		if c.name == "atoi" {
			got = uint64(int64(i32(call(t, in, "atoi", p))))
		} else {
			got = call(t, in, c.name, p, endp, c.base)
		}
		want := uint64(uint32(c.want))
		if c.name == "atoi" {
			want = uint64(c.want)
		}
		if got != want {
			t.Errorf("%s(%q, %d) = %d, want %d", c.name, c.in, c.base, int64(got), c.want)
		}
		if c.name != "atoi" {
			e, _ := in.mem.ReadUint32Le(uint32(endp))
			if e != uint32(p)+c.end {
				t.Errorf("%s(%q) end at %d, want %d", c.name, c.in, e-uint32(p), c.end)
			}
		}
	}
	if call(t, in, "isdigit", '7') != 1 || call(t, in, "isalpha", '7') != 0 || call(t, in, "toupper", 'q') != 'Q' ||
		call(t, in, "isspace", '\t') != 1 || call(t, in, "isxdigit", 'F') != 1 || call(t, in, "tolower", 300) != 300 {
		t.Error("ctype")
	}
}

func TestEnvHeap(t *testing.T) {
	in := hostInstance(t)
	a := call(t, in, "malloc", 100)
	if a == 0 {
		t.Fatal("malloc")
	}
	in.Write(uint32(a), []byte("keep me"))
	b := call(t, in, "realloc", a, 5000)
	if b == 0 || string(in.cstringN(uint32(b), 7)) != "keep me" {
		t.Fatal("realloc lost the data")
	}
	z := call(t, in, "calloc", 10, 10)
	if buf, _ := in.mem.Read(uint32(z), 100); z == 0 || string(buf) != string(make([]byte, 100)) {
		t.Fatal("calloc")
	}
	if call(t, in, "calloc", 1<<20, 1<<20) != 0 {
		t.Fatal("calloc overflow")
	}
	used := in.heap.inUse
	call(t, in, "free", b)
	call(t, in, "free", z)
	call(t, in, "free", 0)
	if in.heap.inUse >= used {
		t.Fatal("free")
	}
	if call(t, in, "malloc", 2<<20) != 0 || !in.heapFailure {
		t.Fatal("a failed malloc is not recorded")
	}
	if recycle, why := in.NeedsRecycle(); !recycle {
		t.Fatal("an exhausted heap does not ask for a recycle")
	} else {
		t.Log(why)
	}
}

func TestEnvTrapsOutOfBounds(t *testing.T) {
	in := hostInstance(t)
	defer func() {
		if recover() == nil {
			t.Fatal("no trap")
		}
	}()
	call(t, in, "strlen", uint64(in.mem.Size()-1)+100)
}
