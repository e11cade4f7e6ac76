package kafka

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
)

// One broker of two refuses produce requests for longer than the output's
// timeout, so a chunk spread over both partitions fails after half of it was
// written. Retried without a transaction, that half is in Kafka twice; with
// transactional_id the failed attempt is aborted and read_committed consumers
// see every record once.
func TestPartialFailure(t *testing.T) {
	for _, txn := range []bool{false, true} {
		name := "idempotent"
		if txn {
			name = "transactional"
		}
		t.Run(name, func(t *testing.T) {
			c := kfake.MustCluster(kfake.NumBrokers(2), kfake.SeedTopics(2, "logs"))
			defer c.Close()
			if c.LeaderFor("logs", 0) == c.LeaderFor("logs", 1) {
				other := (c.LeaderFor("logs", 0) + 1) % 2
				if err := c.MoveTopicPartition("logs", 1, other); err != nil {
					t.Fatal(err)
				}
			}
			bad := c.LeaderFor("logs", 1)
			var failing atomic.Bool
			c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if !failing.Load() || c.CurrentNode() != bad {
					return nil, nil, false
				}
				req := kr.(*kmsg.ProduceRequest)
				resp := req.ResponseKind().(*kmsg.ProduceResponse)
				for _, rt := range req.Topics {
					st := kmsg.NewProduceResponseTopic()
					st.Topic, st.TopicID = rt.Topic, rt.TopicID
					for _, rp := range rt.Partitions {
						sp := kmsg.NewProduceResponseTopicPartition()
						sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotEnoughReplicas.Code
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})
			lines := []string{"brokers " + strings.Join(c.ListenAddrs(), ","), "topics logs", "message_key_field message", "timeout 2s"}
			if txn {
				lines = append(lines, "transactional_id floe-test")
			}
			out := openOut(t, lines...)
			ch := outputtest.Chunk(0, 40)
			failing.Store(true)
			err := out.Flush(context.Background(), ch)
			if err == nil || plugin.IsPermanent(err) {
				t.Fatalf("flush while a broker refuses: %v; want RETRY", err)
			}
			failing.Store(false)
			deadline := time.Now().Add(30 * time.Second)
			for err = out.Flush(context.Background(), ch); err != nil; err = out.Flush(context.Background(), ch) {
				if time.Now().After(deadline) {
					t.Fatalf("retry never succeeded: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("logs"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var seqs []int64
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				fs := cl.PollFetches(ctx)
				cancel()
				n := 0
				fs.EachRecord(func(r *kgo.Record) {
					var v struct{ Seq int64 }
					json.Unmarshal(r.Value, &v)
					seqs = append(seqs, v.Seq)
					n++
				})
				if n == 0 {
					break
				}
			}
			diff := outputtest.Diff(seqRange(0, 40), seqs)
			if txn && diff != nil {
				t.Fatalf("transactional: %v", diff)
			}
			if !txn {
				if diff == nil || !strings.Contains(diff.Error(), "duplicated") || strings.Contains(diff.Error(), "missing") {
					t.Fatalf("idempotent producer: %v; want the records of the healthy partition duplicated and none missing", diff)
				}
				t.Logf("without a transaction, as documented: %v", diff)
			}
		})
	}
}

func seqRange(first int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = first + int64(i)
	}
	return s
}
