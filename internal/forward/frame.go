package forward

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/floe-io/floe/internal/event"
)

// Mode is the event mode of a frame, told by its second element.
type Mode uint8

const (
	ModeMessage                 Mode = iota + 1 // [tag, time, record, option?]
	ModeForward                                 // [tag, [[time, record], ...], option?]
	ModePackedForward                           // [tag, bin|str stream of entries, option?]
	ModeCompressedPackedForward                 // [tag, bin gzip of the stream, {compressed: gzip}]
)

func (m Mode) String() string {
	switch m {
	case ModeMessage:
		return "Message"
	case ModeForward:
		return "Forward"
	case ModePackedForward:
		return "PackedForward"
	case ModeCompressedPackedForward:
		return "CompressedPackedForward"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Signals of the fluent_signal option (Fluent Bit's extension).
const (
	SignalLogs    = 0
	SignalMetrics = 1
	SignalTraces  = 2
)

// Options is a frame's option map. Unknown keys are ignored, as the
// protocol asks.
type Options struct {
	Chunk      string // ack requested when not empty
	Size       int    // number of entries; -1 when absent
	Compressed string // "gzip" for CompressedPackedForward
	Signal     int    // fluent_signal; SignalLogs when absent
	Metadata   []byte // raw MessagePack map of Fluent Bit's metadata option, if any
}

// Frame is one decoded event message. Byte fields alias the frame's bytes.
type Frame struct {
	Mode Mode
	Tag  string
	// Message mode: the raw time and record.
	Time, Record []byte
	// Forward mode: the concatenated entries and their count.
	// PackedForward: the entry stream; CompressedPackedForward: its gzip.
	Entries []byte
	Count   int
	Options Options
}

// IsHeartbeat reports whether a value is a heartbeat (MessagePack nil),
// which clients may send on the connection at any time.
func IsHeartbeat(v []byte) bool { return len(v) == 1 && v[0] == 0xc0 }

// ---- small MessagePack readers (offsets are relative to b) ----

func arrayHeader(b []byte, off int) (int, int, error) {
	if off >= len(b) {
		return 0, 0, errAt(off, "expected array, found end of data")
	}
	c := b[off]
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), off + 1, nil
	case c == 0xdc && off+3 <= len(b):
		return int(binary.BigEndian.Uint16(b[off+1:])), off + 3, nil
	case c == 0xdd && off+5 <= len(b):
		return int(binary.BigEndian.Uint32(b[off+1:])), off + 5, nil
	}
	return 0, 0, errAt(off, "expected array, found %s", event.TypeName(c))
}

func mapHeader(b []byte, off int) (int, int, error) {
	if off >= len(b) {
		return 0, 0, errAt(off, "expected map, found end of data")
	}
	c := b[off]
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), off + 1, nil
	case c == 0xde && off+3 <= len(b):
		return int(binary.BigEndian.Uint16(b[off+1:])), off + 3, nil
	case c == 0xdf && off+5 <= len(b):
		return int(binary.BigEndian.Uint32(b[off+1:])), off + 5, nil
	}
	return 0, 0, errAt(off, "expected map, found %s", event.TypeName(c))
}

// rawBytes reads a str or bin at off and returns its payload and the next offset.
func rawBytes(b []byte, off int) (data []byte, isStr bool, next int, err error) {
	if off >= len(b) {
		return nil, false, 0, errAt(off, "expected string or binary, found end of data")
	}
	c := b[off]
	var n, p int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, p, isStr = int(c&0x1f), off+1, true
	case (c == 0xd9 || c == 0xc4) && off+2 <= len(b):
		n, p, isStr = int(b[off+1]), off+2, c == 0xd9
	case (c == 0xda || c == 0xc5) && off+3 <= len(b):
		n, p, isStr = int(binary.BigEndian.Uint16(b[off+1:])), off+3, c == 0xda
	case (c == 0xdb || c == 0xc6) && off+5 <= len(b):
		n, p, isStr = int(binary.BigEndian.Uint32(b[off+1:])), off+5, c == 0xdb
	default:
		return nil, false, 0, errAt(off, "expected string or binary, found %s", event.TypeName(c))
	}
	if n < 0 || p+n > len(b) {
		return nil, false, 0, &Error{Offset: int64(off), Msg: "string runs past the end of the message", Err: ErrTruncated}
	}
	return b[p : p+n : p+n], isStr, p + n, nil
}

func str(b []byte, off int, what string) (string, int, error) {
	data, _, next, err := rawBytes(b, off)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", what, err)
	}
	return string(data), next, nil
}

func skipValue(b []byte, off int) (int, error) {
	n, err := ValueEnd(b[off:])
	if err != nil {
		return 0, Shift(err, int64(off))
	}
	return off + n, nil
}

// ParseFrame decodes one event message (not a heartbeat, not a handshake
// message). Error offsets are relative to the start of b.
func ParseFrame(b []byte) (Frame, error) {
	var f Frame
	f.Options.Size = -1
	n, p, err := arrayHeader(b, 0)
	if err != nil {
		return f, err
	}
	if n < 2 || n > 4 {
		return f, errAt(0, "forward message must be an array of 2 to 4 elements, has %d", n)
	}
	if f.Tag, p, err = str(b, p, "tag"); err != nil {
		return f, err
	}
	if p >= len(b) {
		return f, &Error{Offset: int64(p), Msg: "message ends after the tag", Err: ErrTruncated}
	}
	second := p
	c := b[p]
	switch {
	case c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd: // Forward
		f.Mode = ModeForward
		if n > 3 {
			return f, errAt(0, "Forward mode message has %d elements, want 2 or 3", n)
		}
		cnt, q, err := arrayHeader(b, p)
		if err != nil {
			return f, err
		}
		end := q
		for i := 0; i < cnt; i++ {
			if end, err = skipValue(b, end); err != nil {
				return f, fmt.Errorf("entry %d: %w", i, err)
			}
		}
		f.Entries, f.Count, p = b[q:end:end], cnt, end
	case c >= 0xa0 && c <= 0xbf || c >= 0xd9 && c <= 0xdb || c >= 0xc4 && c <= 0xc6: // PackedForward
		f.Mode = ModePackedForward
		if n > 3 {
			return f, errAt(0, "PackedForward mode message has %d elements, want 2 or 3", n)
		}
		if f.Entries, _, p, err = rawBytes(b, p); err != nil {
			return f, err
		}
	default: // Message: time, record
		f.Mode = ModeMessage
		if n < 3 {
			return f, errAt(0, "Message mode message has %d elements, want 3 or 4", n)
		}
		tend, err := skipValue(b, p)
		if err != nil {
			return f, fmt.Errorf("time: %w", err)
		}
		if tend >= len(b) || !isMap(b[tend]) {
			what := "end of data"
			if tend < len(b) {
				what = event.TypeName(b[tend])
			}
			return f, errAt(tend, "record must be a map, found %s", what)
		}
		rend, err := skipValue(b, tend)
		if err != nil {
			return f, fmt.Errorf("record: %w", err)
		}
		f.Time, f.Record, p = b[p:tend:tend], b[tend:rend:rend], rend
		n-- // the option is then element 4
	}
	if n == 3 {
		if p >= len(b) {
			return f, &Error{Offset: int64(p), Msg: "message ends before its option", Err: ErrTruncated}
		}
		if b[p] == 0xc0 {
			p++ // a nil option is what some clients send for "no options"
		} else if f.Options, p, err = parseOptions(b, p); err != nil {
			return f, err
		}
	}
	if p != len(b) {
		return f, errAt(p, "%d bytes after the end of the message", len(b)-p)
	}
	if f.Mode == ModePackedForward && f.Options.Compressed != "" {
		if f.Options.Compressed != "gzip" {
			return f, errAt(second, "unsupported compression %q (only gzip)", f.Options.Compressed)
		}
		f.Mode = ModeCompressedPackedForward
	}
	return f, nil
}

func isMap(c byte) bool { return c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf }

func parseOptions(b []byte, off int) (Options, int, error) {
	o := Options{Size: -1}
	n, p, err := mapHeader(b, off)
	if err != nil {
		return o, 0, fmt.Errorf("option: %w", err)
	}
	for i := 0; i < n; i++ {
		keyOff := p
		kb, _, next, err := rawBytes(b, p)
		if err != nil {
			return o, 0, fmt.Errorf("option key: %w", err)
		}
		p = next
		vOff := p
		switch string(kb) {
		case "chunk":
			var v []byte
			if v, _, p, err = rawBytes(b, p); err != nil {
				return o, 0, fmt.Errorf("option chunk: %w", err)
			}
			o.Chunk = string(v)
		case "compressed":
			var v []byte
			if v, _, p, err = rawBytes(b, p); err != nil {
				return o, 0, fmt.Errorf("option compressed: %w", err)
			}
			o.Compressed = string(v)
		case "size", "fluent_signal":
			v, next, err := event.Value(b, p)
			if err != nil {
				return o, 0, Shift(fmt.Errorf("option %s: %w", kb, err), 0)
			}
			iv, ok := v.(int64)
			if !ok || iv < 0 || iv > 1<<31 {
				return o, 0, errAt(vOff, "option %s must be a non-negative integer, is %v", kb, v)
			}
			if string(kb) == "size" {
				o.Size = int(iv)
			} else {
				if iv > SignalTraces {
					return o, 0, errAt(vOff, "option fluent_signal %d is not 0 (logs), 1 (metrics) or 2 (traces)", iv)
				}
				o.Signal = int(iv)
			}
			p = next
		case "metadata":
			if p >= len(b) || !isMap(b[p]) {
				return o, 0, errAt(p, "option metadata must be a map")
			}
			end, err := skipValue(b, p)
			if err != nil {
				return o, 0, fmt.Errorf("option metadata: %w", err)
			}
			o.Metadata, p = b[p:end:end], end
		default:
			if p, err = skipValue(b, p); err != nil {
				return o, 0, fmt.Errorf("option %q at byte offset %d: %w", kb, keyOff, err)
			}
		}
	}
	return o, p, nil
}

// DefaultMaxDecompressed bounds a CompressedPackedForward payload once
// decompressed when the caller gives no limit.
const DefaultMaxDecompressed = 64 << 20

// AppendEvents appends the frame's events to dst in Floe's event layout
// ([[TIME, METADATA], RECORD] with an EventTime, nanoseconds kept; integer
// times get zero nanoseconds) and returns the number of events. A gzip
// payload may decompress to at most maxDecompressed bytes (0: the default).
// Error offsets are relative to the frame for Message and Forward modes and
// to the (decompressed) entry stream for the packed modes.
func (f *Frame) AppendEvents(dst []byte, maxDecompressed int) ([]byte, int, error) {
	switch f.Mode {
	case ModeMessage:
		// [time, record] as a v1 event, so the event codec checks both.
		tmp := make([]byte, 0, 1+len(f.Time)+len(f.Record))
		tmp = append(append(append(tmp, 0x92), f.Time...), f.Record...)
		ev, _, err := event.ParseEvent(tmp, 0)
		if err != nil {
			return dst, 0, fmt.Errorf("message: %w", err)
		}
		return event.AppendRaw(dst, ev.Time, ev.Meta, ev.Body), 1, nil
	case ModeForward:
		out, n, err := appendStream(dst, f.Entries)
		if err == nil && n != f.Count {
			err = fmt.Errorf("forward entries: %d decoded, %d announced", n, f.Count)
		}
		return out, n, err
	case ModePackedForward:
		return appendStream(dst, f.Entries)
	case ModeCompressedPackedForward:
		stream, err := Gunzip(f.Entries, maxDecompressed)
		if err != nil {
			return dst, 0, err
		}
		return appendStream(dst, stream)
	}
	return dst, 0, fmt.Errorf("frame has no mode")
}

// appendStream converts a stream of entries ([time, record] or Fluent Bit's
// [[time, metadata], record]).
func appendStream(dst, stream []byte) ([]byte, int, error) {
	it := event.NewIter(stream)
	n := 0
	for it.Next() {
		ev := it.Event()
		dst = event.AppendRaw(dst, ev.Time, ev.Meta, ev.Body)
		n++
	}
	if err := it.Err(); err != nil {
		return dst, n, fmt.Errorf("entry %d: %w", n, err)
	}
	return dst, n, nil
}

// Gunzip decompresses a CompressedPackedForward payload, which may hold
// several gzip members one after the other, refusing output over limit bytes
// (0: DefaultMaxDecompressed).
func Gunzip(data []byte, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxDecompressed
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip entries: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("gzip entries: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("gzip entries decompress to more than %d bytes: %w", limit, ErrTooLarge)
	}
	return out, nil
}

// ---- encoding (clients, tests, and the forward output) ----

// AppendMessage appends a Message mode frame.
func AppendMessage(dst []byte, tag string, t event.Time, record event.Map, opt *Options) []byte {
	n := 3
	if opt != nil {
		n = 4
	}
	dst = event.AppendArrayHeader(dst, n)
	dst = event.AppendString(dst, tag)
	dst = t.AppendMsgpack(dst)
	dst = record.AppendMsgpack(dst)
	if opt != nil {
		dst = opt.AppendMsgpack(dst)
	}
	return dst
}

// AppendForward appends a Forward mode frame from entries already encoded
// (each a [time, record] array, concatenated).
func AppendForward(dst []byte, tag string, entries []byte, count int, opt *Options) []byte {
	dst = event.AppendArrayHeader(dst, 2+boolInt(opt != nil))
	dst = event.AppendString(dst, tag)
	dst = event.AppendArrayHeader(dst, count)
	dst = append(dst, entries...)
	if opt != nil {
		dst = opt.AppendMsgpack(dst)
	}
	return dst
}

// AppendPackedForward appends a PackedForward frame (entries as bin). For
// CompressedPackedForward pass the gzip of the stream and set
// opt.Compressed to "gzip".
func AppendPackedForward(dst []byte, tag string, stream []byte, opt *Options) []byte {
	dst = event.AppendArrayHeader(dst, 2+boolInt(opt != nil))
	dst = event.AppendString(dst, tag)
	dst = event.AppendBytes(dst, stream)
	if opt != nil {
		dst = opt.AppendMsgpack(dst)
	}
	return dst
}

// Gzip compresses an entry stream for CompressedPackedForward.
func Gzip(stream []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(stream)
	_ = zw.Close()
	return buf.Bytes()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AppendMsgpack encodes the options that are set.
func (o *Options) AppendMsgpack(dst []byte) []byte {
	n := 0
	if o.Chunk != "" {
		n++
	}
	if o.Size >= 0 {
		n++
	}
	if o.Compressed != "" {
		n++
	}
	if o.Signal != 0 {
		n++
	}
	if o.Metadata != nil {
		n++
	}
	dst = event.AppendMapHeader(dst, n)
	if o.Chunk != "" {
		dst = event.AppendString(event.AppendString(dst, "chunk"), o.Chunk)
	}
	if o.Size >= 0 {
		dst = event.AppendInt(event.AppendString(dst, "size"), int64(o.Size))
	}
	if o.Compressed != "" {
		dst = event.AppendString(event.AppendString(dst, "compressed"), o.Compressed)
	}
	if o.Signal != 0 {
		dst = event.AppendInt(event.AppendString(dst, "fluent_signal"), int64(o.Signal))
	}
	if o.Metadata != nil {
		dst = append(event.AppendString(dst, "metadata"), o.Metadata...)
	}
	return dst
}

// AppendAck appends the server's answer to a chunk: {"ack": chunk}.
func AppendAck(dst []byte, chunk string) []byte {
	dst = event.AppendMapHeader(dst, 1)
	dst = event.AppendString(dst, "ack")
	return event.AppendString(dst, chunk)
}

// ParseAck reads an ack answer and returns its chunk id.
func ParseAck(b []byte) (string, error) {
	n, p, err := mapHeader(b, 0)
	if err != nil {
		return "", fmt.Errorf("ack: %w", err)
	}
	ack, found := "", false
	for i := 0; i < n; i++ {
		k, _, next, err := rawBytes(b, p)
		if err != nil {
			return "", fmt.Errorf("ack key: %w", err)
		}
		p = next
		if string(k) == "ack" {
			v, _, next, err := rawBytes(b, p)
			if err != nil {
				return "", fmt.Errorf("ack value: %w", err)
			}
			ack, found, p = string(v), true, next
			continue
		}
		if p, err = skipValue(b, p); err != nil {
			return "", err
		}
	}
	if !found {
		return "", errors.New("ack: map has no \"ack\" key")
	}
	return ack, nil
}
