package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// The env module: Fluent Bit's WAMR libc-builtin (libc_builtin_wrapper.c),
// the C library helpers modules built with -nostdlib import. Pointers are
// guest addresses; a pointer outside linear memory traps, as in WAMR.

type envImpl func(ctx context.Context, in *Instance, stack []uint64)

type envSig struct{ params, results []api.ValueType }

type envSpec struct {
	sigs  []envSig
	impls []envImpl // one per signature
}

func (s envSpec) match(params, results []api.ValueType) int {
	for i, sg := range s.sigs {
		if equalTypes(sg.params, params) && equalTypes(sg.results, results) {
			return i
		}
	}
	return -1
}

func (s envSpec) impl(i int) envImpl { return s.impls[i] }

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func sig(params []api.ValueType, results ...api.ValueType) envSig {
	return envSig{params: params, results: results}
}

func p(n int) []api.ValueType {
	out := make([]api.ValueType, n)
	for i := range out {
		out[i] = i32
	}
	return out
}

func one(s envSig, f envImpl) envSpec { return envSpec{sigs: []envSig{s}, impls: []envImpl{f}} }

var envSpecs = map[string]envSpec{}

func envNames() []string {
	var out []string
	for n := range envSpecs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func init() {
	// Memory management: the instance's allocator (host heap or the guest's malloc).
	envSpecs["malloc"] = one(sig(p(1), i32), func(ctx context.Context, in *Instance, s []uint64) {
		s[0] = uint64(in.envAlloc(ctx, uint32(s[0])))
	})
	envSpecs["free"] = one(sig(p(1)), func(ctx context.Context, in *Instance, s []uint64) {
		in.envFree(ctx, uint32(s[0]))
	})
	envSpecs["calloc"] = one(sig(p(2), i32), func(ctx context.Context, in *Instance, s []uint64) {
		n, sz := uint64(uint32(s[0])), uint64(uint32(s[1]))
		if n*sz > math.MaxUint32 {
			s[0] = 0
			return
		}
		ptr := in.envAlloc(ctx, uint32(n*sz))
		if ptr != 0 {
			clear(in.bytes(ptr, uint32(n*sz)))
		}
		s[0] = uint64(ptr)
	})
	envSpecs["realloc"] = one(sig(p(2), i32), func(ctx context.Context, in *Instance, s []uint64) {
		s[0] = uint64(in.envRealloc(ctx, uint32(s[0]), uint32(s[1])))
	})
	strdup := func(ctx context.Context, in *Instance, s []uint64) {
		src := uint32(s[0])
		if src == 0 {
			s[0] = 0
			return
		}
		n := uint32(len(in.cstring(src)))
		dst := in.envAlloc(ctx, n+1)
		if dst != 0 {
			copy(in.bytes(dst, n+1), in.bytes(src, n+1)) // re-read: malloc may have grown memory
		}
		s[0] = uint64(dst)
	}
	envSpecs["strdup"] = one(sig(p(1), i32), strdup)
	envSpecs["_strdup"] = one(sig(p(1), i32), strdup)

	// Memory and strings.
	memcpy := func(_ context.Context, in *Instance, s []uint64) {
		dst, src, n := uint32(s[0]), uint32(s[1]), uint32(s[2])
		if n > 0 {
			copy(in.bytes(dst, n), in.bytes(src, n))
		}
	}
	envSpecs["memcpy"] = one(sig(p(3), i32), memcpy)
	envSpecs["memmove"] = one(sig(p(3), i32), memcpy) // copy handles overlap
	envSpecs["emscripten_memcpy_big"] = one(sig(p(3), i32), memcpy)
	envSpecs["memset"] = one(sig(p(3), i32), func(_ context.Context, in *Instance, s []uint64) {
		dst, c, n := uint32(s[0]), byte(s[1]), uint32(s[2])
		b := in.bytes(dst, n)
		for i := range b {
			b[i] = c
		}
	})
	envSpecs["memcmp"] = one(sig(p(3), i32), func(_ context.Context, in *Instance, s []uint64) {
		n := uint32(s[2])
		s[0] = ret32(cmpBytes(in.bytes(uint32(s[0]), n), in.bytes(uint32(s[1]), n)))
	})
	envSpecs["memchr"] = one(sig(p(3), i32), func(_ context.Context, in *Instance, s []uint64) {
		ptr, c, n := uint32(s[0]), byte(s[1]), uint32(s[2])
		if i := bytes.IndexByte(in.bytes(ptr, n), c); i >= 0 {
			s[0] = uint64(ptr + uint32(i))
		} else {
			s[0] = 0
		}
	})
	envSpecs["strlen"] = one(sig(p(1), i32), func(_ context.Context, in *Instance, s []uint64) {
		s[0] = uint64(len(in.cstring(uint32(s[0]))))
	})
	envSpecs["strnlen"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		s[0] = uint64(len(in.cstringN(uint32(s[0]), uint32(s[1]))))
	})
	envSpecs["strcmp"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		s[0] = ret32(cmpBytes(in.cstring(uint32(s[0])), in.cstring(uint32(s[1]))))
	})
	envSpecs["strncmp"] = one(sig(p(3), i32), func(_ context.Context, in *Instance, s []uint64) {
		n := uint32(s[2])
		s[0] = ret32(cmpBytes(in.cstringN(uint32(s[0]), n), in.cstringN(uint32(s[1]), n)))
	})
	envSpecs["strcasecmp"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		s[0] = ret32(cmpFold(in.cstring(uint32(s[0])), in.cstring(uint32(s[1]))))
	})
	envSpecs["strncasecmp"] = one(sig(p(3), i32), func(_ context.Context, in *Instance, s []uint64) {
		n := uint32(s[2])
		s[0] = ret32(cmpFold(in.cstringN(uint32(s[0]), n), in.cstringN(uint32(s[1]), n)))
	})
	envSpecs["strcpy"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		dst, src := uint32(s[0]), uint32(s[1])
		n := uint32(len(in.cstring(src))) + 1
		copy(in.bytes(dst, n), in.bytes(src, n))
	})
	envSpecs["strncpy"] = one(sig(p(3), i32), func(_ context.Context, in *Instance, s []uint64) {
		dst, src, n := uint32(s[0]), uint32(s[1]), uint32(s[2])
		str := in.cstringN(src, n)
		d := in.bytes(dst, n)
		c := copy(d, str)
		clear(d[c:])
	})
	envSpecs["strchr"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		ptr, c := uint32(s[0]), byte(s[1])
		str := in.cstring(ptr)
		switch i := bytes.IndexByte(str, c); {
		case c == 0:
			s[0] = uint64(ptr + uint32(len(str)))
		case i >= 0:
			s[0] = uint64(ptr + uint32(i))
		default:
			s[0] = 0
		}
	})
	envSpecs["strrchr"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		ptr, c := uint32(s[0]), byte(s[1])
		str := in.cstring(ptr)
		switch i := bytes.LastIndexByte(str, c); {
		case c == 0:
			s[0] = uint64(ptr + uint32(len(str)))
		case i >= 0:
			s[0] = uint64(ptr + uint32(i))
		default:
			s[0] = 0
		}
	})
	envSpecs["strstr"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		ptr := uint32(s[0])
		if i := bytes.Index(in.cstring(ptr), in.cstring(uint32(s[1]))); i >= 0 {
			s[0] = uint64(ptr + uint32(i))
		} else {
			s[0] = 0
		}
	})
	envSpecs["strspn"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		str, set := in.cstring(uint32(s[0])), in.cstring(uint32(s[1]))
		n := 0
		for n < len(str) && bytes.IndexByte(set, str[n]) >= 0 {
			n++
		}
		s[0] = uint64(n)
	})
	envSpecs["strcspn"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		str, set := in.cstring(uint32(s[0])), in.cstring(uint32(s[1]))
		n := 0
		for n < len(str) && bytes.IndexByte(set, str[n]) < 0 {
			n++
		}
		s[0] = uint64(n)
	})

	// Numbers.
	envSpecs["atoi"] = one(sig(p(1), i32), func(_ context.Context, in *Instance, s []uint64) {
		v, _, neg := parseCInt(in.cstring(uint32(s[0])), 10)
		if neg {
			v.u = -v.u
		}
		s[0] = uint64(uint32(v.u))
	})
	envSpecs["atol"] = envSpecs["atoi"]
	strtol := func(bits int, unsigned bool) envImpl {
		return func(_ context.Context, in *Instance, s []uint64) {
			ptr, end, base := uint32(s[0]), uint32(s[1]), int32(s[2])
			str := in.cstring(ptr)
			v, n, neg := parseCInt(str, int(base))
			var r uint64
			switch {
			case unsigned:
				// Out of range saturates to the maximum; a minus sign negates.
				maxU := uint64(1)<<bits - 1
				if v.overflow || v.u > maxU {
					r = maxU
				} else if neg {
					r = -v.u & maxU
				} else {
					r = v.u
				}
			default:
				maxS := uint64(1)<<(bits-1) - 1
				switch {
				case !neg && (v.overflow || v.u > maxS):
					r = maxS
				case neg && (v.overflow || v.u > maxS+1):
					r = uint64(1) << (bits - 1) // the minimum, two's complement
				case neg:
					r = -v.u
				default:
					r = v.u
				}
				if bits == 32 {
					r = uint64(uint32(r))
				}
			}
			if end != 0 {
				in.putU32(end, ptr+uint32(n))
			}
			s[0] = r
		}
	}
	envSpecs["strtol"] = one(sig(p(3), i32), strtol(32, false))
	envSpecs["strtoul"] = one(sig(p(3), i32), strtol(32, true))
	envSpecs["strtoll"] = one(sig(p(3), i64), strtol(64, false))
	envSpecs["strtoull"] = one(sig(p(3), i64), strtol(64, true))

	// Character classes (C locale).
	ctype := func(f func(c byte) bool) envSpec {
		return one(sig(p(1), i32), func(_ context.Context, _ *Instance, s []uint64) {
			c := int32(s[0])
			if c >= 0 && c < 256 && f(byte(c)) {
				s[0] = 1
			} else {
				s[0] = 0
			}
		})
	}
	envSpecs["isalnum"] = ctype(func(c byte) bool { return isAlpha(c) || isDigit(c) })
	envSpecs["isalpha"] = ctype(isAlpha)
	envSpecs["isascii"] = ctype(func(c byte) bool { return c < 128 })
	envSpecs["isblank"] = ctype(func(c byte) bool { return c == ' ' || c == '\t' })
	envSpecs["iscntrl"] = ctype(func(c byte) bool { return c < 32 || c == 127 })
	envSpecs["isdigit"] = ctype(isDigit)
	envSpecs["isgraph"] = ctype(func(c byte) bool { return c > 32 && c < 127 })
	envSpecs["islower"] = ctype(func(c byte) bool { return c >= 'a' && c <= 'z' })
	envSpecs["isprint"] = ctype(func(c byte) bool { return c >= 32 && c < 127 })
	envSpecs["ispunct"] = ctype(func(c byte) bool { return c > 32 && c < 127 && !isAlpha(c) && !isDigit(c) })
	envSpecs["isspace"] = ctype(isSpace)
	envSpecs["isupper"] = ctype(func(c byte) bool { return c >= 'A' && c <= 'Z' })
	envSpecs["isxdigit"] = ctype(func(c byte) bool { return digitVal(c) < 16 })
	conv := func(f func(c byte) byte) envSpec {
		return one(sig(p(1), i32), func(_ context.Context, _ *Instance, s []uint64) {
			if c := int32(s[0]); c >= 0 && c < 256 {
				s[0] = uint64(f(byte(c)))
			}
		})
	}
	envSpecs["tolower"] = conv(lower)
	envSpecs["toupper"] = conv(func(c byte) byte {
		if c >= 'a' && c <= 'z' {
			return c - 32
		}
		return c
	})

	// Output: the instance's stdout (Floe's log unless redirected).
	envSpecs["printf"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		out := in.format(uint32(s[0]), uint32(s[1]))
		_, _ = in.stdout.Write(out)
		s[0] = uint64(len(out))
	})
	envSpecs["vprintf"] = envSpecs["printf"]
	envSpecs["sprintf"] = one(sig(p(3), i32), func(_ context.Context, in *Instance, s []uint64) {
		dst := uint32(s[0])
		out := in.format(uint32(s[1]), uint32(s[2]))
		n := uint32(len(out))
		b := in.bytes(dst, n+1)
		copy(b, out)
		b[n] = 0
		s[0] = uint64(n)
	})
	envSpecs["vsprintf"] = envSpecs["sprintf"]
	envSpecs["snprintf"] = one(sig(p(4), i32), func(_ context.Context, in *Instance, s []uint64) {
		dst, size := uint32(s[0]), uint32(s[1])
		out := in.format(uint32(s[2]), uint32(s[3]))
		if size > 0 {
			n := min(uint32(len(out)), size-1)
			b := in.bytes(dst, n+1)
			copy(b, out[:n])
			b[n] = 0
		}
		s[0] = uint64(len(out))
	})
	envSpecs["vsnprintf"] = envSpecs["snprintf"]
	envSpecs["puts"] = one(sig(p(1), i32), func(_ context.Context, in *Instance, s []uint64) {
		str := in.cstring(uint32(s[0]))
		line := make([]byte, 0, len(str)+1)
		line = append(append(line, str...), '\n')
		_, _ = in.stdout.Write(line)
		s[0] = 1
	})
	envSpecs["putchar"] = one(sig(p(1), i32), func(_ context.Context, in *Instance, s []uint64) {
		_, _ = in.stdout.Write([]byte{byte(s[0])})
		s[0] = uint64(uint32(s[0]) & 0xff)
	})

	// Time.
	envSpecs["clock_gettime"] = one(sig(p(2), i32), func(_ context.Context, in *Instance, s []uint64) {
		clk, ts := uint32(s[0]), uint32(s[1])
		var sec int64
		var nsec int32
		if clk == 1 || clk == 4 || clk == 7 { // CLOCK_MONOTONIC(_RAW) / BOOTTIME
			d := time.Since(processStart)
			sec, nsec = int64(d/time.Second), int32(d%time.Second)
		} else {
			now := time.Now()
			sec, nsec = now.Unix(), int32(now.Nanosecond())
		}
		// WAMR's struct timespec_app { int64 tv_sec; int32 tv_nsec; }
		b := in.bytes(ts, 12)
		putLE64(b, uint64(sec))
		putLE32(b[8:], uint32(nsec))
		s[0] = 0
	})
	clockUS := func() uint64 { return uint64(time.Since(processStart) / time.Microsecond) }
	envSpecs["clock"] = envSpec{
		sigs: []envSig{sig(nil, i64), sig(nil, i32)},
		impls: []envImpl{
			func(_ context.Context, _ *Instance, s []uint64) { s[0] = clockUS() },
			func(_ context.Context, _ *Instance, s []uint64) { s[0] = uint64(uint32(clockUS())) },
		},
	}

	// Ending the program.
	exit := func(ctx context.Context, in *Instance, s []uint64) {
		code := uint32(s[0])
		_ = in.mod.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	}
	envSpecs["exit"] = one(sig(p(1)), exit)
	abort := func(name string) envImpl {
		return func(context.Context, *Instance, []uint64) { panic(errors.New("env." + name + " called")) }
	}
	envSpecs["abort"] = envSpec{sigs: []envSig{sig(nil), sig(p(1))}, impls: []envImpl{abort("abort"), abort("abort")}}
	envSpecs["abortStackOverflow"] = one(sig(p(1)), abort("abortStackOverflow"))
	envSpecs["nullFunc_X"] = one(sig(p(1)), abort("nullFunc_X"))
	envSpecs["__assert_fail"] = one(sig(p(4)), func(_ context.Context, in *Instance, s []uint64) {
		panic(fmt.Errorf("assertion failed: %s (%s:%d %s)", in.cstring(uint32(s[0])), in.cstring(uint32(s[1])),
			int32(s[2]), in.cstring(uint32(s[3]))))
	})
}

var processStart = time.Now()

func ret32(v int) uint64 { return uint64(uint32(int32(v))) }

// cmpBytes compares as C does: by unsigned bytes, shorter first.
func cmpBytes(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	switch {
	case len(a) < len(b):
		return -int(b[len(a)])
	case len(a) > len(b):
		return int(a[len(b)])
	}
	return 0
}

func cmpFold(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if x, y := lower(a[i]), lower(b[i]); x != y {
			return int(x) - int(y)
		}
	}
	switch {
	case len(a) < len(b):
		return -int(lower(b[len(a)]))
	case len(a) > len(b):
		return int(lower(a[len(b)]))
	}
	return 0
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

func isAlpha(c byte) bool { return (c|32) >= 'a' && (c|32) <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func digitVal(c byte) int {
	switch {
	case isDigit(c):
		return int(c - '0')
	case isAlpha(c):
		return int(lower(c)-'a') + 10
	}
	return 99
}

type cuint struct {
	u        uint64
	overflow bool
}

// parseCInt parses like strtoul: leading space, sign, 0x/0 prefixes for base
// 0 or 16. It returns the magnitude, the bytes consumed (0 when no digits)
// and the sign.
func parseCInt(s []byte, base int) (cuint, int, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if base < 0 || base == 1 || base > 36 {
		return cuint{}, 0, false
	}
	hasHex := i+1 < len(s) && s[i] == '0' && (s[i+1]|32) == 'x' && i+2 < len(s) && digitVal(s[i+2]) < 16
	switch {
	case base == 0 && hasHex:
		base, i = 16, i+2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	case base == 16 && hasHex:
		i += 2
	}
	start := i
	var v cuint
	for i < len(s) {
		d := digitVal(s[i])
		if d >= base {
			break
		}
		hi, lo := mulAdd(v.u, uint64(base), uint64(d))
		if hi != 0 {
			v.overflow = true
		}
		v.u = lo
		i++
	}
	if i == start {
		return cuint{}, 0, false
	}
	return v, i, neg
}

func mulAdd(a, b, c uint64) (hi, lo uint64) {
	if a != 0 && b > math.MaxUint64/a {
		return 1, a * b
	}
	lo = a*b + c
	if lo < a*b {
		return 1, lo
	}
	return 0, lo
}

func putLE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func putLE64(b []byte, v uint64) {
	putLE32(b, uint32(v))
	putLE32(b[4:], uint32(v>>32))
}

// ---- guest memory access for host functions (out of bounds traps) ----

var errOutOfBounds = errors.New("out of bounds memory access")

func (in *Instance) bytes(ptr, n uint32) []byte {
	if in.mem == nil {
		panic(errOutOfBounds)
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		panic(fmt.Errorf("%w: %d bytes at %#x", errOutOfBounds, n, ptr))
	}
	return b
}

// cstring is the NUL-terminated string at ptr, without the NUL.
func (in *Instance) cstring(ptr uint32) []byte {
	if in.mem == nil || ptr >= in.mem.Size() {
		panic(fmt.Errorf("%w: string at %#x", errOutOfBounds, ptr))
	}
	b, _ := in.mem.Read(ptr, in.mem.Size()-ptr)
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		panic(fmt.Errorf("%w: string at %#x has no NUL", errOutOfBounds, ptr))
	}
	return b[:i:i]
}

// cstringN is at most n bytes of the string at ptr.
func (in *Instance) cstringN(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	if in.mem == nil || ptr >= in.mem.Size() {
		panic(fmt.Errorf("%w: string at %#x", errOutOfBounds, ptr))
	}
	b, _ := in.mem.Read(ptr, min(n, in.mem.Size()-ptr))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i:i]
	}
	if uint32(len(b)) < n {
		panic(fmt.Errorf("%w: string at %#x has no NUL", errOutOfBounds, ptr))
	}
	return b
}

func (in *Instance) putU32(ptr, v uint32) {
	if !in.mem.WriteUint32Le(ptr, v) {
		panic(fmt.Errorf("%w: 4 bytes at %#x", errOutOfBounds, ptr))
	}
}

// envAlloc is env.malloc: the host heap, or the guest's own malloc.
func (in *Instance) envAlloc(ctx context.Context, n uint32) uint32 {
	if in.heap != nil {
		p := in.heap.alloc(n)
		if p == 0 {
			in.heapFailure = true
		}
		return p
	}
	if in.malloc == nil {
		return 0
	}
	res, err := in.malloc.Call(ctx, uint64(n))
	if err != nil {
		panic(err)
	}
	return uint32(res[0])
}

func (in *Instance) envFree(ctx context.Context, ptr uint32) {
	if ptr == 0 {
		return
	}
	if in.heap != nil {
		in.heap.release(ptr)
		return
	}
	if in.free != nil {
		if _, err := in.free.Call(ctx, uint64(ptr)); err != nil {
			panic(err)
		}
	}
}

func (in *Instance) envRealloc(ctx context.Context, ptr, n uint32) uint32 {
	if ptr == 0 {
		return in.envAlloc(ctx, n)
	}
	if n == 0 {
		in.envFree(ctx, ptr)
		return 0
	}
	var old uint32
	if in.heap != nil {
		sz, ok := in.heap.blockSize(ptr)
		if !ok {
			return 0
		}
		if sz >= n {
			return ptr
		}
		old = sz
	} else if in.malloc != nil {
		if f := in.mod.ExportedFunction("realloc"); f != nil {
			res, err := f.Call(ctx, uint64(ptr), uint64(n))
			if err != nil {
				panic(err)
			}
			return uint32(res[0])
		}
		// Without the guest's realloc the old size is unknown: copy what fits in memory.
		old = min(n, in.mem.Size()-min(ptr, in.mem.Size()))
	}
	np := in.envAlloc(ctx, n)
	if np == 0 {
		return 0
	}
	c := min(old, n)
	copy(in.bytes(np, c), in.bytes(ptr, c))
	in.envFree(ctx, ptr)
	return np
}
