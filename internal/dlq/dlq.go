// Package dlq lets an operator inspect and resend the chunks Floe set aside
// on the dead-letter stream (FLOE_DLQ): list, show, replay and purge.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/tag"
)

// Letter is one dead-lettered chunk.
type Letter struct {
	Seq     uint64
	Time    time.Time
	Subject string
	Stage   string // stage or output id that set it aside
	Tag     string
	Records int
	Bytes   int
	Reason  string
	Origin  string // subject to replay to
	Data    []byte // the chunk's events, decompressed
	Header  nats.Header
	// DecodeErr is why Data could not be decompressed; Data is then the
	// stored bytes.
	DecodeErr error
}

// Filter selects letters.
type Filter struct {
	Stage string       // exact stage/output id; empty = any
	Tag   *tag.Matcher // Fluent Bit Match on the tag; nil = any
	Seqs  []uint64     // explicit sequences; empty = all
}

func (f Filter) match(l *Letter) bool {
	if f.Stage != "" && f.Stage != l.Stage {
		return false
	}
	if f.Tag != nil && !f.Tag.Match(l.Tag) {
		return false
	}
	if len(f.Seqs) > 0 {
		for _, s := range f.Seqs {
			if s == l.Seq {
				return true
			}
		}
		return false
	}
	return true
}

// Store reads and changes the dead-letter stream.
type Store struct {
	js jetstream.JetStream
}

// New wraps a JetStream context.
func New(js jetstream.JetStream) *Store { return &Store{js: js} }

func (s *Store) stream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, jsx.StreamDLQ)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("no dead-letter stream %s: nothing was ever set aside on this server", jsx.StreamDLQ)
	}
	return st, err
}

// List returns the letters matching f, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]*Letter, error) {
	st, err := s.stream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Letter
	if info.State.Msgs == 0 {
		return nil, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		l := letter(raw)
		if f.match(l) {
			out = append(out, l)
		}
	}
	return out, nil
}

func letter(raw *jetstream.RawStreamMsg) *Letter {
	h := raw.Header
	c, err := chunk.FromHeaders(h, raw.Data, nil)
	l := &Letter{
		Seq: raw.Sequence, Time: raw.Time, Subject: raw.Subject,
		Stage: h.Get(chunk.HeaderStage), Tag: c.Tag, Records: c.Records, Bytes: len(raw.Data),
		Reason: h.Get(chunk.HeaderReason), Origin: h.Get("Floe-Origin-Subject"),
		Data: c.Data, Header: h,
	}
	if err != nil {
		// Shown and replayed as stored, still compressed.
		l.Data, l.DecodeErr = raw.Data, err
	}
	return l
}

// Replay republishes each letter to the subject it came from and removes it
// from the dead-letter stream once JetStream stored the copy. It returns how
// many were replayed.
func (s *Store) Replay(ctx context.Context, f Filter) (int, error) {
	letters, err := s.List(ctx, f)
	if err != nil {
		return 0, err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range letters {
		if l.Origin == "" || strings.HasPrefix(l.Origin, jsx.SubjectDLQ) {
			return n, fmt.Errorf("dead letter %d has no origin subject to replay to", l.Seq)
		}
		m := nats.NewMsg(l.Origin)
		m.Data = l.Data
		keys := []string{chunk.HeaderTag, chunk.HeaderType, chunk.HeaderRecords}
		if l.DecodeErr != nil {
			keys = append(keys, chunk.HeaderEncoding)
		}
		for _, k := range keys {
			if v := l.Header.Values(k); v != nil {
				m.Header[k] = v
			}
		}
		// A fresh id: the original one may still be in the dedup window.
		m.Header.Set(nats.MsgIdHdr, "replay:"+strconv.FormatUint(l.Seq, 10)+":"+strconv.FormatInt(l.Time.UnixNano(), 10))
		if _, err := s.js.PublishMsg(ctx, m); err != nil {
			return n, fmt.Errorf("replay dead letter %d to %s: %w", l.Seq, l.Origin, err)
		}
		if err := st.DeleteMsg(ctx, l.Seq); err != nil {
			return n, fmt.Errorf("replayed dead letter %d but could not remove it: %w", l.Seq, err)
		}
		n++
	}
	return n, nil
}

// Purge deletes the letters matching f and returns how many.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	letters, err := s.List(ctx, f)
	if err != nil {
		return 0, err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return 0, err
	}
	for i, l := range letters {
		if err := st.DeleteMsg(ctx, l.Seq); err != nil {
			return i, fmt.Errorf("delete dead letter %d: %w", l.Seq, err)
		}
	}
	return len(letters), nil
}
