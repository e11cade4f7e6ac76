// Package jsx is Floe's JetStream plumbing: the stream topology every process
// declares, the publisher that waits for PubAcks, the consume loop that maps
// a handler's answer onto Ack/Nak/Term, and dead letters. It holds no
// business logic.
package jsx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/tag"
)

// Streams and subject prefixes of the stage mesh.
const (
	StreamIn       = "FLOE_IN"
	StreamFiltered = "FLOE_FILTERED"
	StreamDLQ      = "FLOE_DLQ"

	SubjectIn       = "floe.in."
	SubjectFiltered = "floe.filtered."
	SubjectOut      = "floe.out."
	SubjectDLQ      = "floe.dlq."
	subjectVivo     = "floe.vivo."

	// Durable consumer names, shared by every replica of a stage.
	DurableFilter = "floe-filter"
	DurableRouter = "floe-router"
	DurableOutput = "floe-output"
)

// OutputStream describes the stream of one output instance.
type OutputStream struct {
	ID        string // output id as used in subjects (see OutputID)
	MaxBytes  int64  // storage.total_limit_size; 0 = unlimited
	BlockFull bool   // storage.on_full block: refuse new chunks instead of dropping the oldest
}

// VivoStream describes the streams of one Vivo exporter: one per signal
// type, keeping the newest MaxBytes (stream_queue_size), oldest discarded.
type VivoStream struct {
	ID       string
	MaxBytes int64
}

// Signals are the signal types a Vivo exporter keeps apart.
var Signals = []string{"logs", "metrics", "traces"}

// VivoStreamName is the stream of one exporter and signal type.
func VivoStreamName(id, signal string) string {
	return "FLOE_VIVO_" + id + "_" + strings.ToUpper(signal)
}

// VivoSubject is where the router publishes a chunk for a Vivo exporter.
func VivoSubject(id, signal, t string) string {
	return subjectVivo + id + "." + signal + "." + tag.ToSubject(t)
}

// Topology is the set of streams a configuration needs.
type Topology struct {
	Replicas   int           // storage.replicas, 1 or 3
	Duplicates time.Duration // dedup window for Nats-Msg-Id
	InMaxBytes int64         // FLOE_IN byte limit; 0 = unlimited
	// FilteredMaxBytes bounds FLOE_FILTERED (refusing new chunks, so the
	// filter waits); 0 = unlimited.
	FilteredMaxBytes int64
	Outputs          []OutputStream
	Vivo             []VivoStream
}

// OutputID makes an output instance name usable in stream names and subjects.
func OutputID(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// OutputStreamName is the stream of an output id.
func OutputStreamName(id string) string { return "FLOE_OUT_" + id }

// InSubject, FilteredSubject and OutSubject name a tag's subjects.
func InSubject(t string) string       { return SubjectIn + tag.ToSubject(t) }
func FilteredSubject(t string) string { return SubjectFiltered + tag.ToSubject(t) }
func OutSubject(outputID, t string) string {
	return SubjectOut + outputID + "." + tag.ToSubject(t)
}

// DLQSubject is where a stage sets aside a chunk it cannot process.
func DLQSubject(stage, t string) string { return SubjectDLQ + stage + "." + tag.ToSubject(t) }

func maxBytes(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// StreamConfigs lists the stream configurations of a topology.
func (t Topology) StreamConfigs() []jetstream.StreamConfig {
	replicas := t.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	dup := t.Duplicates
	if dup <= 0 {
		dup = 2 * time.Minute
	}
	base := func(name string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:       name,
			Subjects:   subjects,
			Retention:  jetstream.WorkQueuePolicy,
			Storage:    jetstream.FileStorage,
			Replicas:   replicas,
			Duplicates: dup,
			MaxBytes:   -1,
			Discard:    jetstream.DiscardOld,
		}
	}
	in := base(StreamIn, SubjectIn+">")
	in.MaxBytes = maxBytes(t.InMaxBytes)
	in.Discard = jetstream.DiscardNew
	filtered := base(StreamFiltered, SubjectFiltered+">")
	if t.FilteredMaxBytes > 0 {
		filtered.MaxBytes = t.FilteredMaxBytes
		filtered.Discard = jetstream.DiscardNew
	}
	dlq := base(StreamDLQ, SubjectDLQ+">")
	dlq.Retention = jetstream.LimitsPolicy
	out := []jetstream.StreamConfig{in, filtered, dlq}
	for _, o := range t.Outputs {
		c := base(OutputStreamName(o.ID), SubjectOut+o.ID+".>")
		c.MaxBytes = maxBytes(o.MaxBytes)
		if o.BlockFull {
			c.Discard = jetstream.DiscardNew
		}
		out = append(out, c)
	}
	for _, v := range t.Vivo {
		for _, sig := range Signals {
			c := base(VivoStreamName(v.ID, sig), subjectVivo+v.ID+"."+sig+".>")
			c.Retention = jetstream.LimitsPolicy
			c.MaxBytes = maxBytes(v.MaxBytes)
			c.Discard = jetstream.DiscardOld
			out = append(out, c)
		}
	}
	return out
}

// EnsureTopology declares every stream idempotently, so start order does not
// matter. It retries while JetStream is not yet available (a cluster still
// electing, a server still starting) until ctx ends.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, t Topology) error {
	for _, cfg := range t.StreamConfigs() {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return err
		}
	}
	return nil
}

// errCodeClusterNoPeers is nats-server's "no suitable peers for placement"
// (JSClusterNoPeersErrF). A cluster whose servers are still finding each
// other answers it for a replicated stream, so it is retried for a while;
// if it lasts, the stream asks for more replicas than the cluster has.
const errCodeClusterNoPeers jetstream.ErrorCode = 10005

// noPeersPatience is how long "no suitable peers" is retried.
var noPeersPatience = 30 * time.Second

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	delay := 100 * time.Millisecond
	var noPeersSince time.Time
	for {
		// Short attempts: while a cluster elects its leader, requests time out
		// rather than fail, and waiting 10s per attempt delays every start.
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.CreateOrUpdateStream(cctx, cfg)
		cancel()
		if err == nil {
			return nil
		}
		if isNoPeers(err) {
			if noPeersSince.IsZero() {
				noPeersSince = time.Now()
			} else if time.Since(noPeersSince) > noPeersPatience {
				return fmt.Errorf("declare stream %s with %d replicas: %w (for %v: does the cluster have that many JetStream servers?)",
					cfg.Name, cfg.Replicas, err, noPeersPatience)
			}
		} else if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || isConfigError(err) {
			return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("declare stream %s: %w (last error: %v)", cfg.Name, ctx.Err(), err)
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

func isNoPeers(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeClusterNoPeers
}

func isConfigError(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 400-class answers are about the config, not availability.
		return apiErr.Code == 400
	}
	return false
}
