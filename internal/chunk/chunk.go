// Package chunk defines the unit that travels between Floe's stages: the
// concatenated MessagePack events of one tag and one signal type, and how it
// maps onto a NATS message.
package chunk

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
)

// Signal types carried in the Floe-Type header.
const (
	Logs    = "logs"
	Metrics = "metrics"
	Traces  = "traces"
)

// NATS headers of a chunk message.
const (
	HeaderTag     = "Floe-Tag"
	HeaderType    = "Floe-Type"
	HeaderRecords = "Floe-Records"
	HeaderMsgID   = nats.MsgIdHdr
	HeaderReason  = "Floe-Reason" // why a chunk was set aside (dead letters)
	HeaderStage   = "Floe-Stage"  // which stage set it aside
	HeaderSource  = "Floe-Source" // input instance that produced the events ("dummy.0")
	HeaderEmits   = "Floe-Emits"  // times filters re-emitted the events under a new tag
	// HeaderEncoding names how the message data is compressed (EncodingS2);
	// absent, the data is the chunk's MessagePack (or OTLP) as is.
	HeaderEncoding = "Floe-Encoding"
)

// Compressions a chunk can travel with between stages.
const (
	// EncodingS2 is S2's block format (github.com/klauspost/compress/s2),
	// a Snappy extension that compresses at GB/s.
	EncodingS2 = "s2"
	// EncodingNone sends the data as is.
	EncodingNone = "none"
)

// Chunk is one unit of work. Data is byte for byte what Fluent Bit hands an output plugin.
type Chunk struct {
	ID      string // unique and deterministic; also the Nats-Msg-Id
	Tag     string
	Type    string // Logs, Metrics or Traces; empty means Logs
	Records int
	Data    []byte
	Source  string // input instance name, for Vivo's source_name
	// Emits counts how many times filters (rewrite_tag) re-emitted these
	// events under a new tag: the filter stage's loop guard.
	Emits int

	// wire is the compressed form of wireOf as it arrived, kept so that a
	// stage passing the chunk on unchanged sends it without compressing it
	// again.
	wire, wireOf []byte
	// lazy: Data is not decoded yet (FromHeadersLazy); wire holds it.
	lazy bool
}

// Signal returns the chunk's type, defaulting to logs.
func (c *Chunk) Signal() string {
	if c.Type == "" {
		return Logs
	}
	return c.Type
}

// Consumer is implemented by every hop. It returns nil only when the chunk is
// durably accepted downstream; it must not retain c after returning.
type Consumer interface {
	ConsumeChunk(ctx context.Context, c *Chunk) error
}

// ConsumerFunc adapts a function to Consumer.
type ConsumerFunc func(ctx context.Context, c *Chunk) error

// ConsumeChunk calls f.
func (f ConsumerFunc) ConsumeChunk(ctx context.Context, c *Chunk) error { return f(ctx, c) }

// compression is what ToMsg compresses with: EncodingS2 unless
// SetCompression said otherwise.
var compression atomic.Value

// SetCompression sets how every chunk this process publishes is compressed:
// EncodingS2 (the default, also for "") or EncodingNone. Stages decode
// either, whatever their own setting.
func SetCompression(enc string) error {
	switch enc {
	case "":
		compression.Store(EncodingS2)
		return nil
	case EncodingS2, EncodingNone:
		compression.Store(enc)
		return nil
	}
	return fmt.Errorf("unknown chunk compression %q (want %s or %s)", enc, EncodingS2, EncodingNone)
}

// Compression is the compression SetCompression set.
func Compression() string {
	if v, ok := compression.Load().(string); ok {
		return v
	}
	return EncodingS2
}

// minCompress is the smallest chunk worth compressing: below it, the
// header and the work outweigh what a few events save.
const minCompress = 1024

// scratch holds S2's worst-case output for the chunks encoded so far,
// reused because the result is copied out at its real size.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// encode returns c's data as it goes on the wire and its encoding ("" when
// sent as is).
func encode(c *Chunk, plain bool) ([]byte, string) {
	if plain {
		if c.lazy && c.Load() != nil {
			// Sent as it came; the reader reports what does not decode.
			return c.wire, EncodingS2
		}
		return c.Data, ""
	}
	if c.wire != nil && sameSlice(c.Data, c.wireOf) {
		return c.wire, EncodingS2
	}
	if len(c.Data) < minCompress || Compression() != EncodingS2 {
		return c.Data, ""
	}
	n := s2.MaxEncodedLen(len(c.Data))
	if n < 0 {
		return c.Data, ""
	}
	bp := scratch.Get().(*[]byte)
	if len(*bp) < n {
		*bp = make([]byte, n)
	}
	enc := s2.Encode(*bp, c.Data)
	if len(enc) > len(c.Data)-len(c.Data)/8 {
		// Not worth it (already compressed or random data).
		scratch.Put(bp)
		return c.Data, ""
	}
	// append onto nil allocates without zeroing what it then overwrites.
	out := append([]byte(nil), enc...)
	scratch.Put(bp)
	c.wire, c.wireOf = out, c.Data
	return out, EncodingS2
}

// Compress makes c's compressed form now, as ToMsg would, so that copies
// of c made afterwards (one per output) share it rather than each
// compressing the same data.
func (c *Chunk) Compress() { encode(c, false) }

// ForgetWire drops the compressed form c arrived in, so that publishing c
// compresses its Data afresh. The filter stage calls it on whatever a filter
// returns.
func (c *Chunk) ForgetWire() {
	if !c.lazy {
		c.wire, c.wireOf = nil, nil
	}
}

// ReleaseData lets go of Data once ToMsg has compressed it: every later
// message for c carries the compressed bytes, so the buffer can be reused.
// It reports whether it did; a chunk sent as is keeps its Data.
func (c *Chunk) ReleaseData() bool {
	if c.lazy || c.wire == nil || !sameSlice(c.Data, c.wireOf) {
		return false
	}
	c.Data, c.wireOf = nil, nil
	return true
}

// Load decodes the data of a chunk FromHeadersLazy left compressed; it does
// nothing for any other chunk. Whoever reads Data of such a chunk calls it
// first.
func (c *Chunk) Load() error {
	if !c.lazy {
		return nil
	}
	data, err := decode(EncodingS2, c.wire)
	if err != nil {
		return fmt.Errorf("chunk %s of %s: %w", c.ID, c.Tag, err)
	}
	c.Data, c.wireOf, c.lazy = data, data, false
	return nil
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && cap(a) == cap(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// decode turns data received with encoding enc back into the chunk's bytes.
func decode(enc string, data []byte) ([]byte, error) { return decodeInto(enc, data, nil) }

// decodeInto is decode writing into buf when it is large enough.
func decodeInto(enc string, data, buf []byte) ([]byte, error) {
	switch enc {
	case "", EncodingNone:
		return data, nil
	case EncodingS2:
		n, err := s2.DecodedLen(data)
		if err != nil {
			return nil, fmt.Errorf("s2 chunk of %d bytes: %w", len(data), err)
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("s2 chunk of %d bytes claims %d bytes decoded, more than any chunk", len(data), n)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		out, err := s2.Decode(buf[:n], data)
		if err != nil {
			return nil, fmt.Errorf("s2 chunk of %d bytes: %w", len(data), err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown %s %q", HeaderEncoding, enc)
}

// ToMsg builds the NATS message for c on subject, its data compressed as
// SetCompression says.
func ToMsg(subject string, c *Chunk) *nats.Msg { return toMsg(subject, c, false) }

// ToPlainMsg builds the NATS message for c on subject with its data as is:
// for streams whose byte limits count the events themselves (Vivo's
// stream_queue_size).
func ToPlainMsg(subject string, c *Chunk) *nats.Msg { return toMsg(subject, c, true) }

func toMsg(subject string, c *Chunk, plain bool) *nats.Msg {
	m := nats.NewMsg(subject)
	data, enc := encode(c, plain)
	m.Data = data
	if enc != "" {
		m.Header.Set(HeaderEncoding, enc)
	}
	m.Header.Set(HeaderTag, c.Tag)
	m.Header.Set(HeaderType, c.Signal())
	m.Header.Set(HeaderRecords, strconv.Itoa(c.Records))
	if c.ID != "" {
		m.Header.Set(HeaderMsgID, c.ID)
	}
	if c.Source != "" {
		m.Header.Set(HeaderSource, c.Source)
	}
	if c.Emits > 0 {
		m.Header.Set(HeaderEmits, strconv.Itoa(c.Emits))
	}
	return m
}

// Payload returns a message's chunk bytes, decompressed as its
// Floe-Encoding header says: for code that reads stored chunks without
// FromHeaders.
func Payload(h nats.Header, data []byte) ([]byte, error) {
	out, err := decode(h.Get(HeaderEncoding), data)
	if err != nil {
		return nil, fmt.Errorf("chunk %s of %s: %w", h.Get(HeaderMsgID), h.Get(HeaderTag), err)
	}
	return out, nil
}

// FromHeadersLazy is FromHeaders for a stage that may pass the chunk on
// without reading its events (the filter stage, for tags no filter
// matches): S2 data stays compressed, Data nil, until Load. Any other
// encoding is decoded at once.
func FromHeadersLazy(h nats.Header, data []byte, tagFromSubject func() string) (*Chunk, error) {
	if h.Get(HeaderEncoding) != EncodingS2 {
		return FromHeaders(h, data, tagFromSubject)
	}
	c := &Chunk{Type: Logs, wire: data, lazy: true}
	fill(c, h, tagFromSubject)
	return c, nil
}

// fill reads the chunk headers into c.
func fill(c *Chunk, h nats.Header, tagFromSubject func() string) {
	if h != nil {
		c.Tag = h.Get(HeaderTag)
		if t := h.Get(HeaderType); t != "" {
			c.Type = t
		}
		c.Records, _ = strconv.Atoi(h.Get(HeaderRecords))
		c.ID = h.Get(HeaderMsgID)
		c.Source = h.Get(HeaderSource)
		c.Emits, _ = strconv.Atoi(h.Get(HeaderEmits))
	}
	if c.Tag == "" && (h == nil || h.Values(HeaderTag) == nil) && tagFromSubject != nil {
		c.Tag = tagFromSubject()
	}
}

// RecordsOf reads the Floe-Records header: how many events a chunk holds,
// 0 when not said.
func RecordsOf(h nats.Header) int {
	n, _ := strconv.Atoi(h.Get(HeaderRecords))
	return n
}

// FromHeaders rebuilds a chunk from a message's headers and data,
// decompressing the data when Floe-Encoding says it is compressed.
// tagFromSubject is used only when the Floe-Tag header is missing. The
// headers are read even when the data does not decode, so a caller can still
// report what it drops.
func FromHeaders(h nats.Header, data []byte, tagFromSubject func() string) (*Chunk, error) {
	return FromHeadersInto(h, data, nil, tagFromSubject)
}

// FromHeadersInto is FromHeaders decompressing into buf when it is large
// enough, for a caller that reuses buffers (Data then aliases buf).
func FromHeadersInto(h nats.Header, data, buf []byte, tagFromSubject func() string) (*Chunk, error) {
	c := &Chunk{Type: Logs}
	var err error
	if enc := h.Get(HeaderEncoding); enc != "" {
		c.Data, err = decodeInto(enc, data, buf)
		if err == nil && enc == EncodingS2 {
			c.wire, c.wireOf = data, c.Data
		}
	} else {
		c.Data = data
	}
	fill(c, h, tagFromSubject)
	if err != nil {
		return c, fmt.Errorf("chunk %s of %s: %w", c.ID, c.Tag, err)
	}
	return c, nil
}
