package forward

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/event"
	proto "github.com/floe-io/floe/internal/forward"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

// fwdSink is a forward server built on Floe's forward protocol package (the
// decoder, frame parser and handshake the forward input uses): it runs the
// handshake when it has a shared key, stores the events of every frame and
// acks the frames that ask for it.
type fwdSink struct {
	t         testing.TB
	sharedKey string
	noAck     bool // read frames, never answer (a server that withholds acks)
	discard   bool // benchmarks: parse and ack frames, keep nothing

	mu     sync.Mutex
	ln     net.Listener
	addr   string
	conns  map[net.Conn]bool
	events []event.Event
	frames []proto.Frame // mode and options of every frame received
	fault  bool
	wg     sync.WaitGroup
}

func newFwdSink(t testing.TB, sharedKey string) *fwdSink {
	s := &fwdSink{t: t, sharedKey: sharedKey, conns: map[net.Conn]bool{}}
	s.listen(freeport.Addr(t))
	t.Cleanup(s.close)
	return s
}

func (s *fwdSink) listen(addr string) {
	ln, err := freeport.Listen(addr)
	if err != nil {
		s.t.Fatalf("listen %s: %v", addr, err)
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
}

func (s *fwdSink) close() {
	s.mu.Lock()
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fwdSink) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	dec := proto.NewDecoder(c, 32<<10, 64<<20)
	if s.sharedKey != "" {
		srv := &proto.Server{SharedKey: s.sharedKey, Hostname: "sink"}
		helo := srv.NewHelo()
		if _, err := c.Write(proto.AppendHelo(nil, helo)); err != nil {
			return
		}
		v, _, err := dec.Next()
		if err != nil {
			return
		}
		ping, err := proto.ParsePing(v)
		if err != nil {
			s.t.Logf("sink: closing a client that sent no PING: %v", err)
			return // as the forward input does
		}
		pong := srv.Check(helo, ping)
		if _, err := c.Write(proto.AppendPong(nil, pong)); err != nil || !pong.AuthResult {
			return
		}
	}
	for {
		v, _, err := dec.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.t.Logf("sink read: %v", err)
			}
			return
		}
		if proto.IsHeartbeat(v) {
			continue
		}
		f, err := proto.ParseFrame(v)
		if err != nil {
			s.t.Errorf("sink: bad frame: %v", err)
			return
		}
		s.mu.Lock()
		fault := s.fault
		s.fault = false
		s.mu.Unlock()
		if fault {
			return // the transient failure: the connection drops, no ack
		}
		if s.discard {
			if f.Options.Chunk != "" {
				if _, err := c.Write(proto.AppendAck(nil, f.Options.Chunk)); err != nil {
					return
				}
			}
			continue
		}
		data, _, err := f.AppendEvents(nil, 0)
		if err != nil {
			s.t.Errorf("sink: frame events: %v", err)
			return
		}
		var evs []event.Event
		it := event.NewIter(data)
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				s.t.Errorf("sink: event: %v", err)
				return
			}
			evs = append(evs, ev)
		}
		if err := it.Err(); err != nil {
			s.t.Errorf("sink: events: %v", err)
			return
		}
		f.Entries, f.Time, f.Record = nil, nil, nil
		s.mu.Lock()
		s.events = append(s.events, evs...)
		s.frames = append(s.frames, f)
		s.mu.Unlock()
		if f.Options.Chunk != "" && !s.noAck {
			if _, err := c.Write(proto.AppendAck(nil, f.Options.Chunk)); err != nil {
				return
			}
		}
	}
}

func (s *fwdSink) hostPort() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	host, port, _ := net.SplitHostPort(s.addr)
	return []string{"host " + host, "port " + port}
}

func (s *fwdSink) Config() []string {
	cfg := append(s.hostPort(), "require_ack_response on", "net.io_timeout 5s")
	if s.sharedKey != "" {
		cfg = append(cfg, "shared_key "+s.sharedKey)
	}
	return cfg
}

func (s *fwdSink) Events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

func (s *fwdSink) Frames() []proto.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]proto.Frame(nil), s.frames...)
}

func (s *fwdSink) Seqs(t testing.TB) []int64 {
	var out []int64
	for _, ev := range s.Events() {
		v, ok := ev.Body.Get("seq")
		n, isInt := v.(int64)
		if !ok || !isInt {
			t.Fatalf("sink holds a record without an integer seq: %v", ev.Body)
		}
		out = append(out, n)
	}
	return out
}

// Inject: forward has no refusal; a transient failure is a connection that
// drops before the ack.
func (s *fwdSink) Inject(f outputtest.Fault) bool {
	if f == outputtest.Permanent {
		return false
	}
	s.mu.Lock()
	s.fault = true
	s.mu.Unlock()
	return true
}

func (s *fwdSink) Restart(t testing.TB) {
	addr := s.addr
	s.close()
	s.listen(addr)
}

func (s *fwdSink) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func netSplit(addr string) (string, string, error) { return net.SplitHostPort(addr) }
