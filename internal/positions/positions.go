// Package positions keeps the read positions of inputs that resume (tail
// offsets) in a JetStream key-value bucket, so a restarted or rescheduled
// ingest continues where the last one stopped. A position is committed only
// after the events read up to it are stored (the input's receipt resolved).
package positions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket Floe keeps positions in.
const Bucket = "FLOE_POSITIONS"

// Position is where an input stopped reading one source.
type Position struct {
	Offset int64             `json:"offset"`
	Inode  uint64            `json:"inode,omitempty"` // for files: detects rotation
	Extra  map[string]string `json:"extra,omitempty"`
	Time   time.Time         `json:"time"`
}

// Store reads and commits positions.
type Store struct {
	kv jetstream.KeyValue
}

// Open creates the bucket if needed (idempotent, as streams are).
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   Bucket,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("positions bucket: %w", err)
	}
	return &Store{kv: kv}, nil
}

// Key builds a bucket key from an input instance and a source (a file path):
// KV keys allow only [-/_=.a-zA-Z0-9], so anything else is hex-escaped.
func Key(input, source string) string {
	var b strings.Builder
	esc := func(s string) {
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, "=%02X", c)
			}
		}
	}
	esc(input)
	b.WriteByte('.')
	esc(source)
	return b.String()
}

// Get returns the committed position of key.
func (s *Store) Get(ctx context.Context, key string) (Position, bool, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("read position %s: %w", key, err)
	}
	var p Position
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return Position{}, false, fmt.Errorf("position %s is corrupt: %w", key, err)
	}
	return p, true, nil
}

// Commit stores the position of key.
func (s *Store) Commit(ctx context.Context, key string, p Position) error {
	if p.Time.IsZero() {
		p.Time = time.Now().UTC()
	}
	b, _ := json.Marshal(p)
	if _, err := s.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("commit position %s: %w", key, err)
	}
	return nil
}

// Forget removes the position of key (a source that went away).
func (s *Store) Forget(ctx context.Context, key string) error {
	if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget position %s: %w", key, err)
	}
	return nil
}
