package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errProducerID marks a producer that could not get its id and epoch: a
// client in that state does not recover, so the output builds a new one.
var errProducerID = errors.New("init producer id")

// markers is what the output knows of the chunks its transactional id
// committed: the marker topic holds one record per committed chunk, keyed
// by the transactional id and the chunk's key, written in the chunk's own
// transaction, so a marker is visible to read_committed consumers exactly
// when the chunk's records are.
//
// The set is loaded when the producer starts (after its epoch fenced any
// earlier producer with the id, which settles that producer's open
// transaction) and again after a commit whose outcome is unknown; in
// between, this producer is the only one that can commit under the id, so
// its own commits keep the set complete.
type markers struct {
	topic     string
	scope     string // transactional id
	retention time.Duration
	cl        *kgo.Client // read_committed consumer of topic, control records kept
	log       *slog.Logger

	created bool
	stale   bool            // the set must be read again before the next decision
	pos     map[int32]int64 // next offset to read in each partition
	done    map[string]time.Time
	adds    int
	skipped atomic.Int64
}

func newMarkers(topic, scope string, retention time.Duration, cl *kgo.Client, log *slog.Logger) *markers {
	return &markers{topic: topic, scope: scope, retention: retention, cl: cl, log: log, stale: true,
		pos: map[int32]int64{}, done: map[string]time.Time{}}
}

// markerKey is the marker's Kafka key: a transactional id cannot hold a
// newline (configuration values are lines), so the split is unambiguous.
func (m *markers) markerKey(key string) string { return m.scope + "\n" + key }

// record is the marker of the chunk with key, to produce in its transaction.
func (m *markers) record(key string, records int) *kgo.Record {
	return &kgo.Record{Topic: m.topic, Key: []byte(m.markerKey(key)), Value: []byte(strconv.Itoa(records))}
}

func (m *markers) has(key string) bool {
	_, ok := m.done[key]
	return ok
}

// add remembers a committed chunk; markers older than the topic's retention
// are forgotten, as the topic forgets them.
func (m *markers) add(key string, at time.Time) {
	if time.Since(at) > m.retention {
		return
	}
	m.done[key] = at
	if m.adds++; m.adds%4096 == 0 {
		cut := time.Now().Add(-m.retention)
		for k, t := range m.done {
			if t.Before(cut) {
				delete(m.done, k)
			}
		}
	}
}

// load creates the marker topic if needed, fences earlier producers with the
// transactional id (loading the producer id bumps the epoch: their open
// transaction is aborted, one being committed completes), then reads the
// topic with read_committed up to its high watermark of after the fencing.
// Reading to the high watermark rather than to the last stable offset waits
// for other producers' open transactions on the topic to end, so no marker
// committed before the fencing is missed.
func (m *markers) load(ctx context.Context, producer *kgo.Client) error {
	if !m.created {
		if err := m.ensureTopic(ctx); err != nil {
			return err
		}
		m.created = true
		m.cl.ForceMetadataRefresh()
	}
	if _, _, err := producer.ProducerID(ctx); err != nil {
		return fmt.Errorf("kafka exactly once: %w: %w", errProducerID, err)
	}
	start, err := m.offsets(ctx, -2)
	if err != nil {
		return err
	}
	end, err := m.offsets(ctx, -1)
	if err != nil {
		return err
	}
	behind := func() bool {
		for p, e := range end {
			if m.pos[p] < e && start[p] < e {
				return true
			}
		}
		return false
	}
	n := 0
	for behind() {
		fs := m.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("kafka exactly once: reading %s to its end: %w", m.topic, err)
		}
		fs.EachError(func(t string, p int32, err error) {
			m.log.Warn("kafka exactly once: fetching markers", "topic", t, "partition", p, "error", err)
		})
		prefix := m.scope + "\n"
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 > m.pos[r.Partition] {
				m.pos[r.Partition] = r.Offset + 1
			}
			if !r.Attrs.IsControl() && strings.HasPrefix(string(r.Key), prefix) {
				m.add(string(r.Key[len(prefix):]), r.Timestamp)
				n++
			}
		})
	}
	m.stale = false
	m.log.Info("kafka exactly once: markers loaded", "topic", m.topic, "read", n, "known", len(m.done))
	return nil
}

// ensureTopic creates the marker topic when it does not exist: one
// partition (a marker is a few bytes per chunk), compacted and deleted after
// the retention, since every marker has a key of its own.
func (m *markers) ensureTopic(ctx context.Context) error {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(m.topic)
	meta.Topics = append(meta.Topics, mt)
	resp, err := meta.RequestWith(ctx, m.cl)
	if err != nil {
		return fmt.Errorf("kafka exactly once: metadata of %s: %w", m.topic, err)
	}
	if len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 {
		return nil
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = m.topic, 1, -1
	for k, v := range map[string]string{"cleanup.policy": "compact,delete",
		"retention.ms": strconv.FormatInt(m.retention.Milliseconds(), 10)} {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	cresp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return fmt.Errorf("kafka exactly once: create topic %s: %w", m.topic, err)
	}
	for _, t := range cresp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka exactly once: create topic %s: %w", m.topic, err)
		}
	}
	m.log.Info("kafka exactly once: created the marker topic", "topic", m.topic)
	return nil
}

// offsets lists the start (-2) or end (-1, the high watermark) offset of
// every partition of the marker topic.
func (m *markers) offsets(ctx context.Context, at int64) (map[int32]int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(m.topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, m.cl)
	if err != nil {
		return nil, fmt.Errorf("kafka exactly once: metadata of %s: %w", m.topic, err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = m.topic
	for _, t := range mresp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("kafka exactly once: metadata of %s: %w", m.topic, err)
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p.Partition, at, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	if len(rt.Partitions) == 0 {
		return nil, fmt.Errorf("kafka exactly once: topic %s has no partitions yet", m.topic)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return nil, fmt.Errorf("kafka exactly once: list offsets of %s: %w", m.topic, err)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("kafka exactly once: offsets of %s/%d: %w", m.topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out, nil
}
