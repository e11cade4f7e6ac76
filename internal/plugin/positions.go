package plugin

import (
	"context"

	"github.com/floe-io/floe/internal/positions"
)

// PositionStore keeps where resumable inputs (tail) stopped reading: the
// JetStream key-value bucket of internal/positions, so a restarted or
// rescheduled ingest, on this host or another, resumes there. An input
// commits a position only after the receipt of the events before it.
type PositionStore interface {
	Get(ctx context.Context, key string) (positions.Position, bool, error)
	Commit(ctx context.Context, key string, p positions.Position) error
	Forget(ctx context.Context, key string) error
}

var _ PositionStore = (*positions.Store)(nil)

// ChunkWriter is implemented by a Writer that can store one write as a
// chunk of its own whose id the input chooses (split into id, id/1, id/2 …
// when larger than a chunk). The id is the chunk's Nats-Msg-Id: an input
// that re-reads the same data after a restart and writes it under the same
// id has the copy dropped by JetStream's duplicate window.
//
// WriteChunk takes data over, capacity included: the input must not touch
// it afterwards, and the writer may reuse it for later chunks once stored.
type ChunkWriter interface {
	WriteChunk(ctx context.Context, id, tag string, data []byte, records int) (Receipt, error)
	// ChunkBuffer lends an empty buffer of at least n bytes' capacity for
	// the input to fill and pass to WriteChunk. Buffers of stored chunks
	// come back this way, so a busy input does not allocate (and the
	// runtime clear) a chunk-sized buffer per chunk.
	ChunkBuffer(n int) []byte
}
