package wasmhost

import (
	"encoding/binary"
	"math"
	"strconv"
)

// vaList reads variadic arguments laid out by the clang wasm32 ABI: each
// argument at the next slot aligned to its size; int, long, pointers and
// size_t take 4 bytes, long long and double 8 (aligned to 8), long double
// 16 (aligned to 16).
type vaList struct {
	in  *Instance
	ptr uint32
}

func (v *vaList) next(size uint32) []byte {
	v.ptr = (v.ptr + size - 1) &^ (size - 1)
	b := v.in.bytes(v.ptr, size)
	v.ptr += size
	return b
}

func (v *vaList) u32() uint32 { return binary.LittleEndian.Uint32(v.next(4)) }
func (v *vaList) u64() uint64 { return binary.LittleEndian.Uint64(v.next(8)) }

// f128 reads a long double (IEEE binary128) and rounds it to float64.
func (v *vaList) f128() float64 {
	b := v.next(16)
	lo, hi := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	sign := hi >> 63
	exp := int((hi >> 48) & 0x7fff)
	mant := hi&(1<<48-1)<<4 | lo>>60 // top 52 bits of the 112-bit fraction
	var f float64
	switch {
	case exp == 0x7fff && (hi&(1<<48-1) != 0 || lo != 0):
		f = math.NaN()
	case exp == 0x7fff:
		f = math.Inf(1)
	case exp == 0 && mant == 0:
		f = 0
	default:
		e := exp - 16383
		if exp == 0 {
			e = -16382
			f = math.Ldexp(float64(mant)/(1<<52), e)
		} else {
			f = math.Ldexp(1+float64(mant)/(1<<52), e)
		}
	}
	if sign != 0 {
		f = -f
	}
	return f
}

// format is C printf: flags "-+ 0#", width and precision (numbers or *),
// length modifiers hh h l ll j z t L q, conversions d i u o x X c s p f F
// e E g G a A % (n is ignored).
func (in *Instance) format(fmtPtr, va uint32) []byte {
	f := in.cstring(fmtPtr)
	f = append([]byte(nil), f...) // host calls below may not move memory, but be safe
	args := &vaList{in: in, ptr: va}
	out := make([]byte, 0, len(f)+32)
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		start := i
		i++
		var sp spec
		sp.prec = -1
	flags:
		for ; i < len(f); i++ {
			switch f[i] {
			case '-':
				sp.minus = true
			case '+':
				sp.plus = true
			case ' ':
				sp.space = true
			case '0':
				sp.zero = true
			case '#':
				sp.alt = true
			default:
				break flags
			}
		}
		if i < len(f) && f[i] == '*' {
			w := int32(args.u32())
			if w < 0 {
				sp.minus, w = true, -w
			}
			sp.width = int(w)
			i++
		} else {
			for ; i < len(f) && isDigit(f[i]); i++ {
				sp.width = min(sp.width*10+int(f[i]-'0'), 1<<20)
			}
		}
		if i < len(f) && f[i] == '.' {
			i++
			sp.prec = 0
			if i < len(f) && f[i] == '*' {
				if pr := int32(args.u32()); pr >= 0 {
					sp.prec = int(pr)
				} else {
					sp.prec = -1
				}
				i++
			} else {
				for ; i < len(f) && isDigit(f[i]); i++ {
					sp.prec = min(sp.prec*10+int(f[i]-'0'), 1<<20)
				}
			}
		}
		size := 4 // argument size in bytes for integers
		long := false
	length:
		for ; i < len(f); i++ {
			switch f[i] {
			case 'h', 'z', 't':
			case 'l':
				if i+1 < len(f) && f[i+1] == 'l' {
					size, i = 8, i+1
				}
			case 'j', 'q':
				size = 8
			case 'L':
				long = true
				size = 8 // %Lld is a GNU synonym of %lld
			default:
				break length
			}
		}
		if i >= len(f) {
			out = append(out, f[start:]...)
			break
		}
		hmod := countH(f[start:i])
		switch verb := f[i]; verb {
		case '%':
			out = append(out, '%')
		case 'd', 'i':
			var v int64
			if size == 8 {
				v = int64(args.u64())
			} else {
				v = int64(int32(args.u32()))
			}
			switch hmod {
			case 1:
				v = int64(int16(v))
			case 2:
				v = int64(int8(v))
			}
			neg := v < 0
			u := uint64(v)
			if neg {
				u = -u
			}
			out = sp.integer(out, u, neg, 10, verb)
		case 'u', 'o', 'x', 'X':
			var u uint64
			if size == 8 {
				u = args.u64()
			} else {
				u = uint64(args.u32())
			}
			switch hmod {
			case 1:
				u = uint64(uint16(u))
			case 2:
				u = uint64(uint8(u))
			}
			base := 10
			switch verb {
			case 'o':
				base = 8
			case 'x', 'X':
				base = 16
			}
			out = sp.integer(out, u, false, base, verb)
		case 'p':
			u := uint64(args.u32())
			sp.alt = true
			out = sp.integer(out, u, false, 16, 'x')
		case 'c':
			out = sp.pad(out, []byte{byte(args.u32())})
		case 's':
			ptr := args.u32()
			var s []byte
			if ptr == 0 {
				s = []byte("(null)")
				if sp.prec >= 0 && sp.prec < 6 {
					s = nil // glibc prints nothing rather than a cut "(null)"
				}
			} else if sp.prec >= 0 {
				s = in.cstringN(ptr, uint32(sp.prec))
			} else {
				s = in.cstring(ptr)
			}
			out = sp.pad(out, s)
		case 'f', 'F', 'e', 'E', 'g', 'G', 'a', 'A':
			var v float64
			if long {
				v = args.f128()
			} else {
				v = math.Float64frombits(args.u64())
			}
			out = sp.float(out, v, verb)
		case 'n':
			args.u32() // pointer; writing through it is not supported
		default:
			out = append(out, f[start:i+1]...)
		}
	}
	return out
}

func countH(s []byte) int {
	n := 0
	for _, c := range s {
		if c == 'h' {
			n++
		}
	}
	return n
}

type spec struct {
	minus, plus, space, zero, alt bool
	width, prec                   int
}

// pad writes s within the field width.
func (sp *spec) pad(out, s []byte) []byte {
	n := sp.width - len(s)
	if !sp.minus {
		out = appendN(out, ' ', n)
	}
	out = append(out, s...)
	if sp.minus {
		out = appendN(out, ' ', n)
	}
	return out
}

func appendN(out []byte, c byte, n int) []byte {
	for ; n > 0; n-- {
		out = append(out, c)
	}
	return out
}

// integer formats u (with sign neg) in base, C rules: precision is the
// minimum number of digits (0 with value 0 prints none), '0' pads only
// without precision and without '-'.
func (sp *spec) integer(out []byte, u uint64, neg bool, base int, verb byte) []byte {
	var digits []byte
	if !(sp.prec == 0 && u == 0) {
		digits = strconv.AppendUint(nil, u, base)
		if verb == 'X' {
			for i, c := range digits {
				if c >= 'a' {
					digits[i] = c - 32
				}
			}
		}
	}
	for len(digits) < sp.prec {
		digits = append([]byte{'0'}, digits...)
	}
	var prefix []byte
	switch {
	case neg:
		prefix = []byte{'-'}
	case sp.plus && (verb == 'd' || verb == 'i'):
		prefix = []byte{'+'}
	case sp.space && (verb == 'd' || verb == 'i'):
		prefix = []byte{' '}
	}
	if sp.alt {
		switch {
		case base == 16 && u != 0 && verb == 'X':
			prefix = append(prefix, '0', 'X')
		case base == 16 && u != 0:
			prefix = append(prefix, '0', 'x')
		case base == 8 && (len(digits) == 0 || digits[0] != '0'):
			digits = append([]byte{'0'}, digits...)
		}
	}
	return sp.number(out, prefix, digits, sp.zero && sp.prec < 0)
}

// number writes prefix and digits in the field, zero padding between them if zero.
func (sp *spec) number(out, prefix, digits []byte, zero bool) []byte {
	n := sp.width - len(prefix) - len(digits)
	switch {
	case sp.minus:
		out = append(append(out, prefix...), digits...)
		return appendN(out, ' ', n)
	case zero:
		out = append(out, prefix...)
		out = appendN(out, '0', n)
		return append(out, digits...)
	}
	out = appendN(out, ' ', n)
	return append(append(out, prefix...), digits...)
}

func (sp *spec) float(out []byte, v float64, verb byte) []byte {
	upper := verb == 'F' || verb == 'E' || verb == 'G' || verb == 'A'
	var prefix []byte
	switch {
	case math.Signbit(v):
		prefix = []byte{'-'}
		v = -v
	case sp.plus:
		prefix = []byte{'+'}
	case sp.space:
		prefix = []byte{' '}
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		s := "inf"
		if math.IsNaN(v) {
			s = "nan"
		}
		if upper {
			s = map[string]string{"inf": "INF", "nan": "NAN"}[s]
		}
		return sp.number(out, prefix, []byte(s), false)
	}
	prec := sp.prec
	if prec < 0 {
		prec = 6
	}
	var digits []byte
	switch verb | 32 {
	case 'f':
		digits = strconv.AppendFloat(nil, v, 'f', prec, 64)
		if sp.alt && prec == 0 {
			digits = append(digits, '.')
		}
	case 'e':
		digits = strconv.AppendFloat(nil, v, 'e', prec, 64)
		if sp.alt && prec == 0 {
			digits = insertPoint(digits)
		}
	case 'g':
		if prec == 0 {
			prec = 1
		}
		digits = cfmtG(v, prec, sp.alt)
	case 'a':
		digits = hexFloat(v, sp.prec)
		prefix = append(prefix, '0', 'x')
	}
	if upper {
		for i, c := range digits {
			if c >= 'a' && c <= 'z' {
				digits[i] = c - 32
			}
		}
		if verb == 'A' {
			prefix[len(prefix)-1] = 'X'
		}
	}
	return sp.number(out, prefix, digits, sp.zero)
}

// insertPoint turns "1e+05" into "1.e+05".
func insertPoint(d []byte) []byte {
	for i, c := range d {
		if c == 'e' {
			return append(d[:i:i], append([]byte{'.'}, d[i:]...)...)
		}
	}
	return d
}

// cfmtG is %g: P significant digits, %e when the exponent X < -4 or X >= P,
// trailing zeros removed unless alt.
func cfmtG(v float64, prec int, alt bool) []byte {
	e := strconv.AppendFloat(nil, v, 'e', prec-1, 64)
	x := 0
	for i, c := range e {
		if c == 'e' {
			x, _ = strconv.Atoi(string(e[i+1:]))
			break
		}
	}
	var d []byte
	if x < -4 || x >= prec {
		d = e
	} else {
		d = strconv.AppendFloat(nil, v, 'f', prec-1-x, 64)
	}
	if alt {
		if !containsByte(d, '.') {
			if i := indexByte(d, 'e'); i >= 0 {
				d = insertPoint(d)
			} else {
				d = append(d, '.')
			}
		}
		return d
	}
	// Strip trailing zeros of the fraction (before any exponent).
	mant, exp := d, []byte(nil)
	if i := indexByte(d, 'e'); i >= 0 {
		mant, exp = d[:i], d[i:]
	}
	if containsByte(mant, '.') {
		for len(mant) > 0 && mant[len(mant)-1] == '0' {
			mant = mant[:len(mant)-1]
		}
		if len(mant) > 0 && mant[len(mant)-1] == '.' {
			mant = mant[:len(mant)-1]
		}
	}
	return append(append([]byte(nil), mant...), exp...)
}

// hexFloat is %a without the 0x prefix: "1.8p+1".
func hexFloat(v float64, prec int) []byte {
	s := strconv.FormatFloat(v, 'x', prec, 64) // "0x1.8p+01"
	b := []byte(s[2:])
	// C writes the exponent without leading zeros.
	if i := indexByte(b, 'p'); i >= 0 && i+2 < len(b) {
		exp := b[i+2:]
		for len(exp) > 1 && exp[0] == '0' {
			exp = exp[1:]
		}
		b = append(b[:i+2], exp...)
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func containsByte(b []byte, c byte) bool { return indexByte(b, c) >= 0 }
