package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize parses a size value exactly as Fluent Bit's flb_utils_size_to_bytes:
// a number (float allowed, read like C atof) with an optional suffix of one or
// two letters, case-insensitive: K/KB, M/MB, G/GB. Multipliers are DECIMAL
// (1K = 1000, 1M = 1000², 1G = 1000³); the result is truncated toward zero.
// "false" (any case) is 0. A two-letter suffix must end in B; a longer or
// unknown suffix is an error. Without a suffix the number is truncated to an
// integer. Like atof, a string with no leading number reads as 0 ("K" is 0).
func ParseSize(s string) (int64, error) {
	if asciiEqualFold(s, "false") {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("invalid size %q: empty value", s)
	}
	val := atof(s)
	plen := 0
	for i := len(s) - 1; i > 0; i-- {
		if isDigit(s[i]) {
			break
		}
		plen++
	}
	if plen == 0 {
		if math.IsNaN(val) || val >= 9223372036854775807.0 || val < -9223372036854775808.0 {
			return 0, fmt.Errorf("invalid size %q: out of range", s)
		}
		return int64(val), nil
	}
	if plen > 2 {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, s[len(s)-plen:])
	}
	unit := []byte(strings.ToUpper(s[len(s)-plen:]))
	if plen == 2 && unit[1] != 'B' {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, s[len(s)-plen:])
	}
	var mult int64
	var hi, lo float64
	switch unit[0] {
	case 'K':
		mult, hi, lo = 1000, 9223372036854775.0, -9223372036854774.0
	case 'M':
		mult, hi, lo = 1000*1000, 9223372036854.0, -9223372036853.0
	case 'G':
		mult, hi, lo = 1000*1000*1000, 9223372036.0, -9223372035.0
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, s[len(s)-plen:])
	}
	if math.IsNaN(val) || val >= hi || val <= lo {
		return 0, fmt.Errorf("invalid size %q: out of range", s)
	}
	return int64(val * float64(mult)), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func hexVal(c byte) int {
	switch {
	case isDigit(c):
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}

func isHexDigit(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// atof mimics C atof/strtod: leading white space is skipped and the longest
// prefix that forms a number is converted (decimal, hexadecimal, inf, nan);
// no number gives 0.
func atof(s string) float64 {
	i := 0
	for i < len(s) && strings.IndexByte(cSpace, s[i]) >= 0 {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	rest := strings.ToLower(s[i:])
	switch {
	case strings.HasPrefix(rest, "infinity"), strings.HasPrefix(rest, "inf"):
		if s[start] == '-' {
			return math.Inf(-1)
		}
		return math.Inf(1)
	case strings.HasPrefix(rest, "nan"):
		return math.NaN()
	}
	// hexadecimal: 0x followed by at least one hex digit (or .hexdigit)
	if strings.HasPrefix(rest, "0x") {
		j := i + 2
		mant, exp, digits := 0.0, 0, 0
		for j < len(s) && isHexDigit(s[j]) {
			mant = mant*16 + float64(hexVal(s[j]))
			j++
			digits++
		}
		if j < len(s) && s[j] == '.' {
			j++
			for j < len(s) && isHexDigit(s[j]) {
				mant = mant*16 + float64(hexVal(s[j]))
				exp -= 4
				j++
				digits++
			}
		}
		if digits > 0 {
			if j < len(s) && (s[j] == 'p' || s[j] == 'P') {
				k := j + 1
				neg := false
				if k < len(s) && (s[k] == '+' || s[k] == '-') {
					neg = s[k] == '-'
					k++
				}
				e := 0
				for k < len(s) && isDigit(s[k]) {
					if e < 1<<20 {
						e = e*10 + int(s[k]-'0')
					}
					k++
				}
				if neg {
					e = -e
				}
				exp += e
			}
			f := math.Ldexp(mant, exp)
			if s[start] == '-' {
				f = -f
			}
			return f
		}
		// "0x" with no hex digit: strtod reads the "0"
	}
	j := i
	digits := 0
	for j < len(s) && isDigit(s[j]) {
		j++
		digits++
	}
	if j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && isDigit(s[j]) {
			j++
			digits++
		}
	}
	if digits == 0 {
		return 0
	}
	end := j
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			end = k
		}
	}
	f, _ := strconv.ParseFloat(s[start:end], 64) // overflow gives ±Inf, as strtod
	return f
}

// ParseBool parses a Fluent Bit boolean: true|on|yes and false|off|no,
// case-insensitive; anything else is an error.
func ParseBool(s string) (bool, error) {
	switch {
	case asciiEqualFold(s, "true"), asciiEqualFold(s, "on"), asciiEqualFold(s, "yes"):
		return true, nil
	case asciiEqualFold(s, "false"), asciiEqualFold(s, "off"), asciiEqualFold(s, "no"):
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q: expected true/on/yes or false/off/no", s)
}

// ParseSeconds parses a time string: a decimal number (fractions allowed,
// "0.5") with an optional unit suffix s, m, h or d (case-insensitive;
// seconds when absent). Unlike Fluent Bit's atoi-based parser, trailing
// garbage is an error instead of being ignored.
func ParseSeconds(s string) (float64, error) {
	t := trimC(s)
	if t == "" {
		return 0, fmt.Errorf("invalid time %q: empty value", s)
	}
	mult := 1.0
	switch t[len(t)-1] {
	case 's', 'S':
		t = t[:len(t)-1]
	case 'm', 'M':
		mult, t = 60, t[:len(t)-1]
	case 'h', 'H':
		mult, t = 3600, t[:len(t)-1]
	case 'd', 'D':
		mult, t = 86400, t[:len(t)-1]
	}
	if !isDecimal(t) {
		return 0, fmt.Errorf("invalid time %q: expected a number with an optional s, m, h or d suffix", s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsInf(f*mult, 0) {
		return 0, fmt.Errorf("invalid time %q: out of range", s)
	}
	return f * mult, nil
}

// isDecimal reports whether s is [+-]digits[.digits] / [+-].digits with an
// optional e exponent (no hex, inf, nan or underscores).
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// Expand replaces ${VAR} and ${VAR:-default} in value. A variable is looked
// up in vars (the configuration's @SET / YAML env values) first, then in env
// (the process environment, where an empty value counts as unset). An unset
// variable becomes the empty string; the default is used when the variable is
// unset or empty. Substituted text is not expanded again. "${}" and an
// unterminated "${" are kept literally.
func Expand(value string, vars map[string]string, env Lookup) string {
	if !strings.Contains(value, "${") {
		return value
	}
	var b strings.Builder
	for {
		i := strings.Index(value, "${")
		if i < 0 {
			b.WriteString(value)
			break
		}
		j := strings.IndexByte(value[i+2:], '}')
		if j < 0 {
			b.WriteString(value)
			break
		}
		name := value[i+2 : i+2+j]
		if name == "" {
			b.WriteString(value[:i+3])
			value = value[i+3:]
			continue
		}
		b.WriteString(value[:i])
		def, hasDef := "", false
		if k := strings.Index(name, ":-"); k >= 0 {
			name, def, hasDef = name[:k], name[k+2:], true
		}
		v := lookupVar(name, vars, env)
		if v == "" && hasDef {
			v = def
		}
		b.WriteString(v)
		value = value[i+2+j+1:]
	}
	return b.String()
}

func lookupVar(name string, vars map[string]string, env Lookup) string {
	if v, ok := vars[name]; ok {
		return v
	}
	if env != nil {
		if v, ok := env(name); ok {
			return v
		}
	}
	return ""
}
