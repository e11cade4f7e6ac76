package parser

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/event"
)

// This file ports Fluent Bit's time handling: flb_strptime (src/flb_strptime.c,
// OpenBSD's strptime with Fluent Bit's time zone additions), the %L
// fractional-seconds split and the year prefix of flb_parser_create, and
// flb_parser_time_lookup / flb_parser_tm2time (src/flb_parser.c).

// tm is C's struct tm plus tm_gmtoff, as flb_strptime fills it.
type tm struct {
	year   int // years since 1900
	mon    int // 0..11
	mday   int
	hour   int
	min    int
	sec    int
	yday   int
	wday   int
	isdst  int
	gmtoff int // seconds east of UTC
}

// Fields flb_strptime tracks to compute the missing ones.
const (
	fieldMon = 1 << iota
	fieldMday
	fieldWday
	fieldYday
	fieldYear
)

const tmYearBase = 1900

// ptState is the static state of _flb_strptime (century, relyear, fields),
// shared by its recursive calls, plus the local zone for %Z.
type ptState struct {
	century, relyear, fields int
	loc                      *time.Location
}

// C locale strings (nl_langinfo in the "C" locale).
var (
	cDays      = [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	cAbDays    = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	cMonths    = [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	cAbMonths  = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	monLengths = [2][12]int{
		{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
		{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
	}
	nast = [4]string{"EST", "CST", "MST", "PST"}
	nadt = [4]string{"EDT", "CDT", "MDT", "PDT"}
)

const (
	cDTFmt = "%a %b %e %H:%M:%S %Y" // D_T_FMT
	cDFmt  = "%m/%d/%y"             // D_FMT
	cTFmt  = "%H:%M:%S"             // T_FMT
)

// knownZones is flb_known_timezones, in its order (the first abbreviation
// that matches and is not followed by a letter or digit wins).
var knownZones = []struct {
	abbr   string
	offset int
	dst    int
}{
	{"GMT", 0, 0}, {"UTC", 0, 0}, {"Z", 0, 0}, {"UT", 0, 0},
	{"EST", -5 * 3600, 0}, {"EDT", -4 * 3600, 1}, {"CST", -6 * 3600, 0}, {"CDT", -5 * 3600, 1},
	{"MST", -7 * 3600, 0}, {"MDT", -6 * 3600, 1}, {"PST", -8 * 3600, 0}, {"PDT", -7 * 3600, 1},
	{"AKST", -9 * 3600, 0}, {"AKDT", -8 * 3600, 1}, {"HST", -10 * 3600, 0}, {"HADT", -9 * 3600, 1},
	{"AST", -4 * 3600, 0}, {"ADT", -3 * 3600, 1}, {"NST", -12600, 0}, {"NDT", -9000, 1},
	{"WET", 0, 0}, {"WEST", 3600, 1}, {"CET", 3600, 0}, {"CEST", 2 * 3600, 1},
	{"EET", 2 * 3600, 0}, {"EEST", 3 * 3600, 1}, {"MSK", 3 * 3600, 0},
	{"ART", -3 * 3600, 0}, {"BRT", -3 * 3600, 0}, {"BRST", -2 * 3600, 1}, {"CLT", -4 * 3600, 0}, {"CLST", -3 * 3600, 1},
	{"AEST", 10 * 3600, 0}, {"AEDT", 11 * 3600, 1}, {"ACST", 34200, 0}, {"ACDT", 37800, 1},
	{"AWST", 8 * 3600, 0}, {"NZST", 12 * 3600, 0}, {"NZDT", 13 * 3600, 1},
	{"JST", 9 * 3600, 0}, {"KST", 9 * 3600, 0}, {"SGT", 8 * 3600, 0}, {"IST", 19800, 0},
	{"GST", 4 * 3600, 0}, {"ICT", 7 * 3600, 0}, {"WIB", 7 * 3600, 0}, {"WITA", 8 * 3600, 0},
	{"WIT", 9 * 3600, 0}, {"MYT", 8 * 3600, 0}, {"BDT", 6 * 3600, 0}, {"NPT", 20700, 0},
	{"WAT", 3600, 0}, {"CAT", 2 * 3600, 0}, {"EAT", 3 * 3600, 0}, {"SAST", 2 * 3600, 0},
	{"A", 1 * 3600, 0}, {"B", 2 * 3600, 0}, {"C", 3 * 3600, 0}, {"D", 4 * 3600, 0},
	{"E", 5 * 3600, 0}, {"F", 6 * 3600, 0}, {"G", 7 * 3600, 0}, {"H", 8 * 3600, 0},
	{"I", 9 * 3600, 0}, {"K", 10 * 3600, 0}, {"L", 11 * 3600, 0}, {"M", 12 * 3600, 0},
	{"N", -1 * 3600, 0}, {"O", -2 * 3600, 0}, {"P", -3 * 3600, 0}, {"Q", -4 * 3600, 0},
	{"R", -5 * 3600, 0}, {"S", -6 * 3600, 0}, {"T", -7 * 3600, 0}, {"U", -8 * 3600, 0},
	{"V", -9 * 3600, 0}, {"W", -10 * 3600, 0}, {"X", -11 * 3600, 0}, {"Y", -12 * 3600, 0},
}

const (
	altE = 1
	altO = 2
)

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

// hasPrefixFold is strncasecmp(name, s, len(name)) == 0 (ASCII folding).
func hasPrefixFold(s, name string) bool {
	if len(s) < len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		a, b := s[i], name[i]
		if a >= 'A' && a <= 'Z' {
			a += 'a' - 'A'
		}
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// strptime is _flb_strptime: it parses buf with format into t and returns
// the offset of the first byte of buf not consumed, or -1. As in C, t keeps
// whatever was parsed before a failure (time_strict off uses it). buf and
// format end at their first NUL, as C strings do.
func strptime(buf, format string, t *tm, st *ptState, initialize bool) int {
	if i := strings.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	if i := strings.IndexByte(format, 0); i >= 0 {
		format = format[:i]
	}
	if initialize {
		st.century = tmYearBase
		st.relyear = -1
		st.fields = 0
		t.gmtoff = 0
		t.isdst = -1
	}
	at := func(i int) byte {
		if i < len(buf) {
			return buf[i]
		}
		return 0
	}
	bp := 0
	// sub runs a "complex" conversion through recursion.
	sub := func(f string) bool {
		n := strptime(buf[bp:], f, t, st, false)
		if n < 0 {
			return false
		}
		bp += n
		return true
	}
	num := func(dst *int, lo, hi int) bool {
		v, ok := convNum(buf, &bp, lo, hi)
		if ok {
			*dst = v
		}
		return ok
	}
	fi := 0
	for fi < len(format) {
		c := format[fi]
		alt := 0
		if isCSpace(c) {
			for isCSpace(at(bp)) {
				bp++
			}
			fi++
			continue
		}
		if at(bp) == 0 {
			return -1
		}
		fi++
		if c != '%' {
			if c != at(bp) {
				return -1
			}
			bp++
			continue
		}
	again:
		c = 0
		if fi < len(format) {
			c = format[fi]
			fi++
		}
		legal := func(allowed int) bool { return alt&^allowed == 0 }
		switch c {
		case '%':
			if c != at(bp) {
				return -1
			}
			bp++
		case 'E', 'O':
			if !legal(0) {
				return -1
			}
			if c == 'E' {
				alt |= altE
			} else {
				alt |= altO
			}
			goto again
		case 'c':
			if !legal(altE) || !sub(cDTFmt) {
				return -1
			}
		case 'D':
			if !legal(0) || !sub("%m/%d/%y") {
				return -1
			}
		case 'F':
			if !legal(0) || !sub("%Y-%m-%d") {
				return -1
			}
		case 'R':
			if !legal(0) || !sub("%H:%M") {
				return -1
			}
		case 'r':
			if !legal(0) || !sub("%I:%M:%S %p") {
				return -1
			}
		case 'T':
			if !legal(0) || !sub("%H:%M:%S") {
				return -1
			}
		case 'X':
			if !legal(altE) || !sub(cTFmt) {
				return -1
			}
		case 'x':
			if !legal(altE) || !sub(cDFmt) {
				return -1
			}
		case 'A', 'a':
			if !legal(0) {
				return -1
			}
			i, n := 0, 0
			for ; i < 7; i++ {
				if n = len(cDays[i]); hasPrefixFold(buf[bp:], cDays[i]) {
					break
				}
				if n = len(cAbDays[i]); hasPrefixFold(buf[bp:], cAbDays[i]) {
					break
				}
			}
			if i == 7 {
				return -1
			}
			t.wday = i
			bp += n
			st.fields |= fieldWday
		case 'B', 'b', 'h':
			if !legal(0) {
				return -1
			}
			i, n := 0, 0
			for ; i < 12; i++ {
				if n = len(cMonths[i]); hasPrefixFold(buf[bp:], cMonths[i]) {
					break
				}
				if n = len(cAbMonths[i]); hasPrefixFold(buf[bp:], cAbMonths[i]) {
					break
				}
			}
			if i == 12 {
				return -1
			}
			t.mon = i
			bp += n
			st.fields |= fieldMon
		case 'C':
			var i int
			if !legal(altE) || !num(&i, 0, 99) {
				return -1
			}
			st.century = i * 100
		case 'e', 'd':
			if c == 'e' && isCSpace(at(bp)) {
				bp++
			}
			if !legal(altO) || !num(&t.mday, 1, 31) {
				return -1
			}
			st.fields |= fieldMday
		case 'k', 'H':
			if (c == 'k' && !legal(0)) || !legal(altO) || !num(&t.hour, 0, 23) {
				return -1
			}
		case 'l', 'I':
			if (c == 'l' && !legal(0)) || !legal(altO) || !num(&t.hour, 1, 12) {
				return -1
			}
		case 'j':
			if !legal(0) || !num(&t.yday, 1, 366) {
				return -1
			}
			t.yday--
			st.fields |= fieldYday
		case 'M':
			if !legal(altO) || !num(&t.min, 0, 59) {
				return -1
			}
		case 'm':
			if !legal(altO) || !num(&t.mon, 1, 12) {
				return -1
			}
			t.mon--
			st.fields |= fieldMon
		case 'p':
			if !legal(0) {
				return -1
			}
			switch {
			case hasPrefixFold(buf[bp:], "AM"):
				if t.hour > 12 {
					return -1
				} else if t.hour == 12 {
					t.hour = 0
				}
				bp += 2
			case hasPrefixFold(buf[bp:], "PM"):
				if t.hour > 12 {
					return -1
				} else if t.hour < 12 {
					t.hour += 12
				}
				bp += 2
			default:
				return -1
			}
		case 'S':
			if !legal(altO) || !num(&t.sec, 0, 60) {
				return -1
			}
		case 's':
			secs, ok := convNum64(buf, &bp)
			if !ok {
				return -1
			}
			u := time.Unix(secs, 0).UTC()
			if int64(u.Year())-tmYearBase > 1<<31-1 {
				return -1 // gmtime_r: the year does not fit an int
			}
			*t = tm{year: u.Year() - tmYearBase, mon: int(u.Month()) - 1, mday: u.Day(),
				hour: u.Hour(), min: u.Minute(), sec: u.Second(),
				yday: u.YearDay() - 1, wday: int(u.Weekday())}
			st.fields = 0xffff
		case 'U', 'W':
			var i int
			if !legal(altO) || !num(&i, 0, 53) {
				return -1
			}
		case 'w':
			if !legal(altO) || !num(&t.wday, 0, 6) {
				return -1
			}
			st.fields |= fieldWday
		case 'u':
			var i int
			if !legal(altO) || !num(&i, 1, 7) {
				return -1
			}
			t.wday = i % 7
			st.fields |= fieldWday
		case 'g', 'V':
			var i int
			hi := 99
			if c == 'V' {
				hi = 53
			}
			if !num(&i, 0, hi) {
				return -1
			}
		case 'G':
			bp++
			for isDigit(at(bp)) {
				bp++
			}
		case 'Y':
			var i int
			if !legal(altE) || !num(&i, 0, 9999) {
				return -1
			}
			st.relyear = -1
			t.year = i - tmYearBase
			st.fields |= fieldYear
		case 'y':
			if !legal(altE|altO) || !num(&st.relyear, 0, 99) {
				return -1
			}
		case 'Z':
			n, ok := zoneName(buf[bp:], t, st.loc)
			if !ok {
				return -1
			}
			bp += n
		case 'z':
			n, ok := zoneOffset(buf[bp:], t)
			if !ok {
				return -1
			}
			bp += n
		case 'n', 't':
			if !legal(0) {
				return -1
			}
			for isCSpace(at(bp)) {
				bp++
			}
		default:
			return -1
		}
	}

	// The two-digit year is resolved last: %C may come at any time.
	if st.relyear != -1 {
		if st.century == tmYearBase {
			if st.relyear <= 68 {
				t.year = st.relyear + 2000 - tmYearBase
			} else {
				t.year = st.relyear + 1900 - tmYearBase
			}
		} else {
			t.year = st.relyear + st.century - tmYearBase
		}
		st.fields |= fieldYear
	}
	if st.fields&fieldYear != 0 {
		year := t.year + tmYearBase
		lens := &monLengths[0]
		if isLeap(year) {
			lens = &monLengths[1]
		}
		if st.fields&fieldYday == 0 && st.fields&fieldMon != 0 && st.fields&fieldMday != 0 {
			t.yday = t.mday - 1
			for i := 0; i < t.mon && i < 12; i++ {
				t.yday += lens[i]
			}
			st.fields |= fieldYday
		}
		if st.fields&fieldYday != 0 {
			days := t.yday
			if st.fields&fieldWday == 0 {
				t.wday = 4 + ((year-1970)%7)*(365%7) + leapsThruEndOf(year-1) - leapsThruEndOf(1969) + t.yday
				t.wday %= 7
				if t.wday < 0 {
					t.wday += 7
				}
			}
			if st.fields&fieldMon == 0 {
				t.mon = 0
				for t.mon < 12 && days >= lens[t.mon] {
					days -= lens[t.mon]
					t.mon++
				}
			}
			if st.fields&fieldMday == 0 {
				t.mday = days + 1
			}
		}
	}
	return bp
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func leapsThruEndOf(y int) int {
	if y >= 0 {
		return y/4 - y/100 + y/400
	}
	return -(leapsThruEndOf(-(y + 1)) + 1)
}

// convNum is _conv_num: at least one digit, and no more than the upper
// limit has digits, stopping as soon as another digit would exceed it.
func convNum(buf string, bp *int, lo, hi int) (int, bool) {
	if *bp >= len(buf) || !isDigit(buf[*bp]) {
		return 0, false
	}
	result, rulim := 0, hi
	for {
		result = result*10 + int(buf[*bp]-'0')
		*bp++
		rulim /= 10
		if !(result*10 <= hi && rulim != 0 && *bp < len(buf) && isDigit(buf[*bp])) {
			break
		}
	}
	if result < lo || result > hi {
		return 0, false
	}
	return result, true
}

// convNum64 is _conv_num64 for %s (0..INT64_MAX, refusing values that come
// close to overflowing).
func convNum64(buf string, bp *int) (int64, bool) {
	if *bp >= len(buf) || !isDigit(buf[*bp]) {
		return 0, false
	}
	var result int64
	for {
		if result > 922337203685477580 {
			return 0, false
		}
		result = result*10 + int64(buf[*bp]-'0')
		*bp++
		if result >= 922337203685477580 {
			return 0, false
		}
		if !(*bp < len(buf) && isDigit(buf[*bp])) {
			break
		}
	}
	return result, true
}

// zoneName is %Z: Fluent Bit's table of abbreviations, then GMT/UTC, then
// the local zone's names (C's tzname), whose offset is the standard one.
func zoneName(s string, t *tm, loc *time.Location) (int, bool) {
	for _, z := range knownZones {
		if hasPrefixFold(s, z.abbr) && (len(s) == len(z.abbr) || !isAlnum(s[len(z.abbr)])) {
			t.isdst = z.dst
			t.gmtoff = z.offset
			return len(z.abbr), true
		}
	}
	if strings.HasPrefix(s, "GMT") || strings.HasPrefix(s, "UTC") {
		t.isdst = 0
		t.gmtoff = 0
		return 3, true
	}
	names, std := localZoneNames(loc)
	for i, n := range names {
		if n != "" && hasPrefixFold(s, n) {
			t.isdst = i
			t.gmtoff = std
			return len(n), true
		}
	}
	return 0, false
}

// localZoneNames returns C's tzname[0..1] for loc (standard and daylight
// saving names; the same name twice where there is no DST) and the standard
// offset (-timezone).
func localZoneNames(loc *time.Location) ([2]string, int) {
	if loc == nil {
		loc = time.Local
	}
	y := time.Now().Year()
	n1, o1 := time.Date(y, 1, 1, 0, 0, 0, 0, loc).Zone()
	n2, o2 := time.Date(y, 7, 1, 0, 0, 0, 0, loc).Zone()
	if o2 < o1 {
		n1, o1, n2 = n2, o2, n1
	}
	return [2]string{n1, n2}, o1
}

// zoneOffset is %z: Z, [+-]hh, [+-]hhmm, [+-]hh:mm, GMT, UT, UTC and the
// RFC 822 North American zones, after optional white space.
func zoneOffset(s string, t *tm) (int, bool) {
	bp := 0
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	for isCSpace(at(bp)) {
		bp++
	}
	neg := false
	c := at(bp)
	bp++
	switch c {
	case 'G':
		if at(bp) != 'M' || at(bp+1) != 'T' {
			return 0, false
		}
		t.isdst, t.gmtoff = 0, 0
		return bp + 2, true
	case 'U':
		if at(bp) != 'T' {
			return 0, false
		}
		bp++
		if at(bp) == 'C' {
			bp++
		}
		t.isdst, t.gmtoff = 0, 0
		return bp, true
	case 'Z':
		t.isdst, t.gmtoff = 0, 0
		return bp, true
	case '+':
	case '-':
		neg = true
	default:
		bp--
		for i, n := range nast {
			if hasPrefixFold(s[bp:], n) {
				t.gmtoff = (-5 - i) * 3600
				t.isdst = 0
				return bp + 3, true
			}
		}
		for i, n := range nadt {
			if hasPrefixFold(s[bp:], n) {
				t.isdst = 1
				t.gmtoff = (-4 - i) * 3600
				return bp + 3, true
			}
		}
		return 0, false
	}
	if !isDigit(at(bp)) || !isDigit(at(bp+1)) {
		return 0, false
	}
	offs := (int(s[bp]-'0')*10 + int(s[bp+1]-'0')) * 3600
	bp += 2
	if at(bp) == ':' {
		bp++
	}
	if isDigit(at(bp)) {
		offs += int(s[bp]-'0') * 600
		bp++
		if !isDigit(at(bp)) {
			return 0, false
		}
		offs += int(s[bp]-'0') * 60
		bp++
	}
	if neg {
		offs = -offs
	}
	t.isdst = 0
	t.gmtoff = offs
	return bp, true
}

// ---- Time_Format as a parser uses it ----

// timeFormat is a compiled Time_Format with the parser's time options.
type timeFormat struct {
	full     string // as configured, for messages
	withYear bool   // has %Y, %y or %s: no year is prepended
	withTZ   bool   // has %z, %Z, %SZ or %S.%LZ: Time_Offset does not apply
	head     string // the format up to %L ("%Y " + format when withYear is false)
	frac     bool   // the format has %L
	tail     string // the format after %L
	offset   int    // Time_Offset, seconds east of UTC
	systemTZ bool   // Time_System_Timezone: the fields are local time
	strict   bool   // Time_Strict
	loc      *time.Location
	now      func() time.Time
}

func newTimeFormat(f string) *timeFormat {
	tf := &timeFormat{full: f, strict: true, loc: time.Local, now: time.Now}
	switch {
	case strings.Contains(f, "%Y") || strings.Contains(f, "%y"):
		tf.withYear = true
	case strings.Contains(f, "%s"):
		tf.withYear = true
	}
	tf.withTZ = strings.Contains(f, "%z") || strings.Contains(f, "%Z") ||
		strings.Contains(f, "%SZ") || strings.Contains(f, "%S.%LZ")
	tf.head = f
	if !tf.withYear {
		tf.head = "%Y " + f
	}
	if i := strings.Index(tf.head, "%L"); i >= 0 {
		tf.frac = true
		tf.tail = tf.head[i+2:]
		tf.head = tf.head[:i]
	}
	return tf
}

// maxTimeLen is the size of flb_parser_time_lookup's buffer, less its NUL.
const maxTimeLen = 63

// timeError is a time string the format does not accept.
type timeError struct{ msg string }

func (e *timeError) Error() string { return e.msg }

// lookup is flb_parser_time_lookup followed by flb_parser_tm2time: it
// returns the time the string holds. With Time_Strict off, a string that
// matches only partly gives the fields read so far (without Time_Offset), as
// Fluent Bit does. Floe also refuses times before 1970 or after 2106, which
// an event time cannot hold.
func (tf *timeFormat) lookup(s string) (event.Time, error) {
	if len(s) > maxTimeLen {
		return event.Time{}, &timeError{"time string length is too long"}
	}
	var t tm
	st := ptState{loc: tf.loc}
	buf := s
	if !tf.withYear {
		if len(s)+6 >= maxTimeLen+1 {
			return event.Time{}, &timeError{"time string length is too long"}
		}
		now := tf.now().UTC()
		t.mon = int(now.Month()) - 1
		t.mday = now.Day()
		buf = strconv.Itoa(now.Year()) + " " + s
	}
	if i := strings.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	var nsec uint32
	exact := true
	p := strptime(buf, tf.head, &t, &st, true)
	switch {
	case p < 0:
		if tf.strict {
			return event.Time{}, &timeError{fmt.Sprintf("cannot parse %q", s)}
		}
		exact = false
	case tf.frac:
		frac, n := subseconds(buf[p:])
		if n < 0 {
			if tf.strict {
				return event.Time{}, &timeError{fmt.Sprintf("cannot parse %%L for %q", s)}
			}
			exact = false
			break
		}
		nsec = uint32(frac * 1e9)
		if strptime(buf[p+n:], tf.tail, &t, &st, true) < 0 {
			if tf.strict {
				return event.Time{}, &timeError{fmt.Sprintf("cannot parse %q after %%L", s)}
			}
			exact = false
		}
	}
	if exact && !tf.withTZ {
		t.gmtoff = tf.offset
	}
	var sec int64
	if tf.systemTZ {
		sec = time.Date(t.year+tmYearBase, time.Month(t.mon+1), t.mday, t.hour, t.min, t.sec, 0, tf.loc).Unix()
	} else {
		sec = time.Date(t.year+tmYearBase, time.Month(t.mon+1), t.mday, t.hour, t.min, t.sec, 0, time.UTC).Unix() - int64(t.gmtoff)
	}
	if sec < 0 || sec > 1<<32-1 {
		return event.Time{}, &timeError{fmt.Sprintf("time %q is out of range (1970 to 2106)", s)}
	}
	return event.Time{Sec: sec, Nsec: nsec}, nil
}

// subseconds is parse_subseconds: the digits of the fraction, at most nine,
// read as strtod reads "0.<digits>". It returns the fraction and the number
// of bytes used, or -1 when there is no digit.
func subseconds(s string) (float64, int) {
	n := 0
	for n < len(s) && n < 9 && isDigit(s[n]) {
		n++
	}
	if n == 0 {
		return 0, -1
	}
	f, _ := strconv.ParseFloat("0."+s[:n], 64)
	return f, n
}

// checkFormat lists the conversions of a Time_Format that flb_strptime does
// not know (such a format never matches).
func checkFormat(f string) []string {
	var bad []string
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		for i < len(f) && (f[i] == 'E' || f[i] == 'O') {
			i++
		}
		if i >= len(f) {
			bad = append(bad, "a lone '%' at the end")
			break
		}
		if !strings.ContainsRune("%cDFRrTXxAaBbhCedkHlIjMmpSsUWwugGVYyZzntL", rune(f[i])) {
			bad = append(bad, "%"+string(f[i]))
		}
	}
	return bad
}
