package natsout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// jsSink is a real nats-server with a JetStream stream on sink.>, the way a
// user's stream receives Floe's records.
type jsSink struct {
	srv   *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	extra []string
	mu    sync.Mutex
	sub   *nats.Subscription
}

const sinkStream = "SINK"

func newJSSink(t testing.TB, extra ...string) *jsSink {
	s := &jsSink{srv: natstest.Run(t), extra: extra}
	s.nc, s.js = s.srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.js.CreateStream(ctx, s.streamConfig()); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return s
}

func (s *jsSink) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: sinkStream, Subjects: []string{"sink.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}
}

func (s *jsSink) Config() []string {
	return append([]string{"url " + s.srv.URL(), "subject sink.$TAG", "timeout 2s"}, s.extra...)
}

// Seqs reads every message of the stream and the seq of each JSON line or
// MessagePack event in it.
func (s *jsSink) Seqs(t testing.TB) []int64 {
	msgs := s.messages(t)
	var seqs []int64
	for _, m := range msgs {
		seqs = append(seqs, payloadSeqs(t, m.Data)...)
	}
	return seqs
}

func (s *jsSink) messages(t testing.TB) []*jetstream.RawStreamMsg {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, sinkStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

func payloadSeqs(t testing.TB, data []byte) []int64 {
	var seqs []int64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec struct {
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Seq == nil {
			t.Fatalf("stream message line %q is not a record with a seq: %v", sc.Bytes(), err)
		}
		seqs = append(seqs, *rec.Seq)
	}
	return seqs
}

// Inject: a transient fault unbinds the stream from its subjects until the
// next message shows up (its PubAck never comes: the output times out); a
// permanent one lowers the stream's max_msg_size so JetStream refuses the
// next message with "message size exceeds maximum allowed".
func (s *jsSink) Inject(f outputtest.Fault) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := s.streamConfig()
	if f == outputtest.Permanent {
		cfg.MaxMsgSize = 16
		if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
			panic(err)
		}
		return true
	}
	cfg.Subjects = []string{"elsewhere.>"}
	if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
		panic(err)
	}
	var once sync.Once
	sub, err := s.nc.Subscribe("sink.>", func(*nats.Msg) {
		once.Do(func() {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := s.js.UpdateStream(ctx, s.streamConfig()); err != nil {
					panic(err)
				}
				s.mu.Lock()
				s.sub.Unsubscribe()
				s.mu.Unlock()
			}()
		})
	})
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.sub = sub
	s.mu.Unlock()
	if err := s.nc.Flush(); err != nil {
		panic(err)
	}
	return true
}

func (s *jsSink) Restart(testing.TB) { s.srv.Restart() }

func TestContract(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newJSSink(t) }, outputtest.Options{})
}

func TestContractMessagePerRecord(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newJSSink(t, "message_per_record on") }, outputtest.Options{})
}
