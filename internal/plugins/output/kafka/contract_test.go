package kafka

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/plugin/outputtest"
)

const sinkTopic = "logs"

// kfakeSink is franz-go's in-process Kafka cluster, persisted to a directory
// so that a restart keeps what was produced.
type kfakeSink struct {
	t     testing.TB
	dir   string
	ports []int
	extra []string
	mu    sync.Mutex
	c     *kfake.Cluster
}

func newKfakeSink(t testing.TB, extra ...string) *kfakeSink {
	s := &kfakeSink{t: t, dir: t.TempDir(), extra: extra}
	s.start()
	t.Cleanup(func() { s.cluster().Close() })
	return s
}

func (s *kfakeSink) start() {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, sinkTopic), kfake.DataDir(s.dir)}
	if s.ports != nil {
		opts = append(opts, kfake.Ports(s.ports...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		s.t.Fatalf("kfake: %v", err)
	}
	if s.ports == nil {
		for _, a := range c.ListenAddrs() {
			_, p, _ := net.SplitHostPort(a)
			n, _ := strconv.Atoi(p)
			s.ports = append(s.ports, n)
		}
	}
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
}

func (s *kfakeSink) cluster() *kfake.Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *kfakeSink) Config() []string {
	brokers := ""
	for i, a := range s.cluster().ListenAddrs() {
		if i > 0 {
			brokers += ","
		}
		brokers += a
	}
	return append([]string{"brokers " + brokers, "topics " + sinkTopic, "timeout 2s"}, s.extra...)
}

// Records consumes the topic from the start until it is quiet.
func (s *kfakeSink) Records(t testing.TB) []*kgo.Record {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cluster().ListenAddrs()...), kgo.ConsumeTopics(sinkTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			return out
		}
	}
}

func (s *kfakeSink) Seqs(t testing.TB) []int64 {
	var seqs []int64
	for _, r := range s.Records(t) {
		var rec struct {
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal(r.Value, &rec); err != nil || rec.Seq == nil {
			t.Fatalf("kafka record %q is not a record with a seq: %v", r.Value, err)
		}
		seqs = append(seqs, *rec.Seq)
	}
	return seqs
}

// Inject: a permanent fault answers the next produce with MESSAGE_TOO_LARGE;
// a transient one answers NOT_ENOUGH_REPLICAS to every produce for 3 s,
// longer than the output's 2 s timeout, since franz-go itself retries a
// briefly failing broker (the flush must see the failure to test RETRY).
func (s *kfakeSink) Inject(f outputtest.Fault) bool {
	code := kerr.MessageTooLarge.Code
	var until time.Time
	if f == outputtest.Transient {
		code = kerr.NotEnoughReplicas.Code
	}
	c := s.cluster()
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		if f == outputtest.Transient {
			if until.IsZero() {
				until = time.Now().Add(3 * time.Second)
			}
			if time.Now().After(until) {
				return nil, nil, false
			}
			c.KeepControl()
		}
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return true
}

func (s *kfakeSink) Restart(t testing.TB) {
	s.cluster().Close()
	s.start()
}

func TestContract(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newKfakeSink(t) }, outputtest.Options{})
}

func TestContractTransactional(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newKfakeSink(t, "transactional_id floe-contract") }, outputtest.Options{})
}
