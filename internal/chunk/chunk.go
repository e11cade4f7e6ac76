// Package chunk defines the unit that travels between Floe's stages: the
// concatenated MessagePack events of one tag and one signal type, and how it
// maps onto a NATS message.
package chunk

import (
	"context"
	"strconv"

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

// ToMsg builds the NATS message for c on subject.
func ToMsg(subject string, c *Chunk) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = c.Data
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

// FromHeaders rebuilds a chunk from a message's headers and data. tagFromSubject
// is used only when the Floe-Tag header is missing.
func FromHeaders(h nats.Header, data []byte, tagFromSubject func() string) *Chunk {
	c := &Chunk{Data: data, Type: Logs}
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
	return c
}
