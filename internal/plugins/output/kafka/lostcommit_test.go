package kafka

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/plugin/outputtest"
)

// A commit Kafka performs but whose answer never reaches the output (the
// connection drops): franz-go asks again and learns the outcome, or the
// flush answers RETRY and the retry, after reading the markers again, finds
// the chunk committed. Either way the chunk is in Kafka once.
func TestLostCommitAnswer(t *testing.T) {
	drop := &dropCommit{}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, sinkTopic), kfake.ListenFn(drop.listen))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := &kfakeSink{t: t, c: c}
	out := newOut(t, append(s.Config(), "transactional_id lost")...)
	ch := outputtest.Chunk(0, 20)
	drop.armed.Store(true)
	err = out.Flush(context.Background(), ch)
	if drop.dropped.Load() != 1 {
		t.Fatalf("dropped %d commit answers, want 1", drop.dropped.Load())
	}
	if err != nil {
		t.Logf("flush after the lost answer: %v", err)
		if err := out.Flush(context.Background(), ch); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if out.Skipped() != 1 {
			t.Errorf("skipped %d chunks, want 1: the retry wrote the committed chunk again", out.Skipped())
		}
	} else {
		t.Log("the client learned the commit's outcome by itself")
	}
	if d := outputtest.Diff(seqRange(0, 20), readAll(t, s, kgo.ReadCommitted(), 20)); d != nil {
		t.Fatal(d)
	}
}

// dropCommit closes the connection instead of writing the answer to the
// first successful EndTxn commit once armed; kfake has committed by then.
// It follows the request frames (kfake reads a size, then a body) to know
// which correlation ids are EndTxn commits.
type dropCommit struct {
	armed   atomic.Bool
	dropped atomic.Int64
}

func (d *dropCommit) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	return dropListener{ln, d}, err
}

type dropListener struct {
	net.Listener
	d *dropCommit
}

func (l dropListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &dropConn{Conn: c, d: l.d, commits: map[int32]int16{}}, nil
}

type dropConn struct {
	net.Conn
	d       *dropCommit
	mu      sync.Mutex
	in      []byte
	commits map[int32]int16
}

func (c *dropConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in = append(c.in, p[:n]...)
	for len(c.in) >= 4 {
		size := int(binary.BigEndian.Uint32(c.in))
		if len(c.in) < 4+size {
			break
		}
		frame := c.in[4 : 4+size]
		c.in = c.in[4+size:]
		if len(frame) < 10 || int16(binary.BigEndian.Uint16(frame)) != int16(kmsg.EndTxn) {
			continue
		}
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		body := frame[8:]
		if l := int16(binary.BigEndian.Uint16(body)); l > 0 { // client id
			body = body[2+int(l):]
		} else {
			body = body[2:]
		}
		req := kmsg.NewPtrEndTxnRequest()
		req.SetVersion(version)
		if req.IsFlexible() {
			body = body[1:] // no tagged fields from franz-go
		}
		if req.ReadFrom(body) == nil && req.Commit {
			c.commits[int32(binary.BigEndian.Uint32(frame[4:]))] = version
		}
	}
	return n, err
}

func (c *dropConn) Write(b []byte) (int, error) {
	if len(b) >= 8 {
		c.mu.Lock()
		version, ok := c.commits[int32(binary.BigEndian.Uint32(b[4:]))]
		c.mu.Unlock()
		if ok && c.d.armed.Load() {
			resp := kmsg.NewPtrEndTxnResponse()
			resp.SetVersion(version)
			body := b[8:]
			if resp.IsFlexible() {
				body = body[1:]
			}
			if resp.ReadFrom(body) == nil && resp.ErrorCode == 0 && c.d.armed.CompareAndSwap(true, false) {
				c.d.dropped.Add(1)
				c.Conn.Close()
				return 0, net.ErrClosed
			}
		}
	}
	return c.Conn.Write(b)
}
