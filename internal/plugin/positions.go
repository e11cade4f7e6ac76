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
type ChunkWriter interface {
	WriteChunk(ctx context.Context, id, tag string, data []byte, records int) (Receipt, error)
}
