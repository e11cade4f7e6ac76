package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The output stage delivering to Kafka (kfake in this process) with a
// transactional_id is SIGKILLed several times while events flow. The broker
// answers commits late, so kills land after a chunk's transaction committed
// and before the output heard of it (and so before Floe acked the chunk):
// the mesh redelivers such a chunk, and the next output process, finding
// the chunk's marker committed, answers OK without writing it. Kills that
// land before a commit leave a transaction the next process aborts.
// read_committed consumers see every event exactly once.
func TestExactlyOnceKafkaSinkAcrossOutputKills(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	// Padding makes ~1,100 events a chunk (chunks close at 512 KiB), so
	// the stream is some twenty transactions for the kills to land in.
	// Most of the test's time is the mesh's ack wait after a kill (nats.ack_wait 3).
	const total = 20000
	pad := strings.Repeat("x", 400)
	dir := t.TempDir()
	var in bytes.Buffer
	for i := range total {
		fmt.Fprintf(&in, `{"seq":%d,"payload":"event-%d","pad":"%s"}`+"\n", i, i, pad)
	}

	spy := &commitSpy{delay: 150 * time.Millisecond}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "logs"), kfake.ListenFn(spy.listen))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	_, meshURL := startNATS(t, filepath.Join(dir, "mesh"))
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush          0.2
    nats.ack_wait  3
    nats.url  %s

[INPUT]
    Name  stdin
    Tag   seq

[OUTPUT]
    Name              kafka
    Match             seq
    brokers           %s
    topics            logs
    transactional_id  floe-e2e
    timeout           5s
`, meshURL, brokers))

	cons, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("logs"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := make([]int, total)
	records, corrupt := 0, 0
	read := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n, bad := countSeqs(r.Value, seen)
			records += n
			corrupt += bad
		})
		return records
	}
	kills, atKill := killOutputMidStream(t, cfg, in.Bytes(), total, read, func() int { return int(spy.lost.Load()) })

	// What a read_uncommitted consumer sees: the copies written by
	// transactions that a kill cut short, aborted by the next process.
	raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("logs"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	uncommitted := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n := len(raw.PollFetches(ctx).Records())
		cancel()
		if n == 0 {
			break
		}
		uncommitted += n
	}
	t.Logf("%d kills with %v records delivered at each; %d records committed; %d commits whose answer the killed output never got (chunks redelivered after their commit, skipped by their marker); %d records in aborted transactions",
		kills, atKill, records, spy.lost.Load(), uncommitted-records)
	checkOnce(t, seen, corrupt)
}

// commitSpy wraps kfake's listener: it holds the answer to each successful
// EndTxn commit for delay, then counts it lost when the client's socket was
// closed meanwhile (the output process was killed after Kafka committed
// its chunk and before it could ack the chunk to the mesh).
type commitSpy struct {
	delay time.Duration
	lost  atomic.Int64
}

func (s *commitSpy) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return spyListener{ln, s}, nil
}

type spyListener struct {
	net.Listener
	s *commitSpy
}

func (l spyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &spyConn{Conn: c, s: l.s, txns: map[int32]int16{}}, nil
}

// spyConn follows the request frames a client sends (kfake reads a size
// then a body) to know which correlation ids are EndTxn commits, and checks
// the answers to those as kfake writes them (one Write per response).
type spyConn struct {
	net.Conn
	s    *commitSpy
	mu   sync.Mutex
	in   []byte
	txns map[int32]int16 // correlation id of an EndTxn commit -> its version
}

func (c *spyConn) Read(p []byte) (int, error) {
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
		if len(frame) < 8 || int16(binary.BigEndian.Uint16(frame)) != int16(kmsg.EndTxn) {
			continue
		}
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		corr := int32(binary.BigEndian.Uint32(frame[4:]))
		r := kbin.Reader{Src: frame[8:]}
		r.NullableString() // client id
		req := kmsg.NewPtrEndTxnRequest()
		req.SetVersion(version)
		if req.IsFlexible() {
			kmsg.SkipTags(&r)
		}
		if req.ReadFrom(r.Src) == nil && req.Commit {
			c.txns[corr] = version
		}
	}
	if len(c.in) == 0 {
		c.in = nil
	}
	return n, err
}

func (c *spyConn) Write(b []byte) (int, error) {
	if len(b) >= 8 {
		corr := int32(binary.BigEndian.Uint32(b[4:]))
		c.mu.Lock()
		version, commit := c.txns[corr]
		delete(c.txns, corr)
		c.mu.Unlock()
		if commit {
			resp := kmsg.NewPtrEndTxnResponse()
			resp.SetVersion(version)
			body := b[8:]
			if resp.IsFlexible() {
				body = body[1:] // kfake's empty tagged fields of the header
			}
			if resp.ReadFrom(body) == nil && resp.ErrorCode == 0 {
				time.Sleep(c.s.delay)
				if c.peerGone() {
					c.s.lost.Add(1)
				}
			}
		}
	}
	return c.Conn.Write(b)
}

// peerGone reports whether the client closed the connection: kfake's
// reader, which keeps reading while an answer is held, closes the
// connection on the end of file; otherwise a peek at the socket (which takes
// no bytes from kfake's reader) reads end of file or an error.
func (c *spyConn) peerGone() bool {
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	// Control, not Read: kfake's reader holds the read lock, and a
	// non-blocking peek needs no poller.
	if err := rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN)
	}); err != nil {
		return errors.Is(err, net.ErrClosed)
	}
	return gone
}
