// Package syslog is Fluent Bit's syslog input (plugins/in_syslog): it
// receives syslog messages over a UDP or TCP port or a unix socket and
// parses each one with a parser.
//
//   - mode: unix_udp (default), unix_tcp, tcp or udp. tcp and udp listen on
//     listen:port (default 0.0.0.0:5140); the unix modes on path, created
//     with unix_perm (octal, default 0644). tcp may be TLS.
//   - format (stream modes): newline (default; RFC 6587 non-transparent
//     framing, what logger --tcp sends) or octet_counting ("LEN SP MSG",
//     logger --octet-count). A datagram is one message.
//   - parser: as upstream, syslog-rfc5424 for tcp and udp and
//     syslog-rfc3164-local for the unix modes unless set; the stock parsers
//     are built in. A message the parser rejects is kept as
//     {"message": "raw text"} and counted (upstream logs and drops it).
//   - raw_message_key adds the message as received, source_address_key the
//     peer (tcp://HOST:PORT, udp://HOST:PORT, unix://PATH).
//   - buffer_chunk_size (default 32768) is how a connection's buffer grows
//     and buffer_max_size (default buffer_chunk_size) the largest message:
//     a longer one closes the connection, as upstream. receive_buffer_size
//     sets the socket's SO_RCVBUF.
//
// Backpressure: stream modes stop reading their connections while the
// pipeline is paused (clients block); datagram modes cannot hold senders
// back, so they drop what arrives while paused and count it
// (floe_input_dropped_records_total).
package syslog

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/netin"
)

const defaultChunk = 32768 // upstream FLB_SYSLOG_CHUNK

// Spec describes the syslog input plugin.
func Spec() *plugin.Spec {
	keys := append(netin.ListenKeys(5140),
		plugin.Key{Name: "mode", Enum: []string{"unix_udp", "unix_tcp", "tcp", "udp"}, Default: "unix_udp", Desc: "transport"},
		plugin.Key{Name: "path", Desc: "unix socket path (unix_udp, unix_tcp)"},
		plugin.Key{Name: "unix_perm", Default: "0644", Desc: "permissions of the unix socket (octal)"},
		plugin.Key{Name: "format", Default: "newline", Desc: "stream framing: newline or octet_counting"},
		plugin.Key{Name: "buffer_chunk_size", Type: plugin.Size, Default: strconv.Itoa(defaultChunk), Desc: "buffer growth step"},
		plugin.Key{Name: "buffer_max_size", Type: plugin.Size, Desc: "largest message (default buffer_chunk_size)"},
		plugin.Key{Name: "receive_buffer_size", Type: plugin.Size, Desc: "socket receive buffer (SO_RCVBUF)"},
		plugin.Key{Name: "raw_message_key", Desc: "key where the message as received is kept"},
		plugin.Key{Name: "source_address_key", Desc: "key where the peer's address is added"},
	)
	keys = append(keys, netin.TLSKeys()...)
	return &plugin.Spec{
		Kind:     plugin.KindInput,
		Name:     "syslog",
		Desc:     "Syslog",
		Keys:     keys,
		NewInput: New,
	}
}

// Syslog is a configured syslog input.
type Syslog struct {
	netin.PauseFlag
	mode   string
	addr   string // host:port or socket path
	perm   os.FileMode
	rcvBuf int
	framer framer
	chunk  int
	lines  netin.LineDecoder
	srv    netin.Server
	bound  netin.Bound
	grace  time.Duration
}

// New builds a syslog input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	log := netin.Logger(set)
	m := netin.Metrics(set)
	s := &Syslog{mode: strings.ToLower(p.String("mode")), grace: 5 * time.Second}
	switch s.mode {
	case "tcp", "udp":
		addr, err := netin.Addr(p)
		if err != nil {
			return nil, err
		}
		s.addr = addr
	default:
		s.addr = p.String("path")
		if s.addr == "" {
			return nil, p.Errorf("mode", "mode %s needs path, the unix socket to listen on", s.mode)
		}
		perm, err := strconv.ParseUint(p.String("unix_perm"), 8, 32)
		if err != nil {
			return nil, p.Errorf("unix_perm", "unix_perm %q is not an octal mode", p.String("unix_perm"))
		}
		s.perm = os.FileMode(perm & 0o7777)
	}
	switch f := strings.ToLower(p.String("format")); f {
	case "octet_counting", "octet":
		s.framer.octet = true
	case "newline":
	default:
		log.Warn("unknown frame format, using 'newline'", "format", f)
	}
	s.chunk = int(p.Size("buffer_chunk_size"))
	if s.chunk <= 0 {
		return nil, p.Errorf("buffer_chunk_size", "buffer_chunk_size must be positive")
	}
	s.framer.max = int(p.Size("buffer_max_size"))
	if s.framer.max <= 0 {
		s.framer.max = s.chunk
	}
	s.rcvBuf = int(p.Size("receive_buffer_size"))
	name := p.String("parser")
	if name == "" {
		name = "syslog-rfc5424"
		if strings.HasPrefix(s.mode, "unix") {
			name = "syslog-rfc3164-local"
		}
	}
	var parser plugin.Parser
	var ok bool
	if set.Parsers != nil {
		parser, ok = set.Parsers.Lookup(name)
	}
	if !ok {
		return nil, p.Errorf("parser", "parser %q not found", name)
	}
	s.lines = netin.LineDecoder{Parser: parser, Key: "message", SourceKey: p.String("source_address_key"),
		RawKey: p.String("raw_message_key"), Metrics: m, Log: log}
	tlsCfg, err := netin.TLS(p)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil && s.mode != "tcp" {
		return nil, p.Errorf("tls", "tls needs mode tcp")
	}
	scheme := "tcp"
	if s.mode == "unix_tcp" {
		scheme = "unix"
	}
	s.srv = netin.Server{Log: log, Metrics: m, TLS: tlsCfg, Scheme: scheme, Path: s.addr}
	return s, nil
}

// Addr waits until the input listens and returns its address.
func (s *Syslog) Addr(ctx context.Context) (string, error) {
	a, err := s.bound.Wait(ctx)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// Run listens until ctx ends.
func (s *Syslog) Run(ctx context.Context, w plugin.Writer) error {
	switch s.mode {
	case "tcp", "unix_tcp":
		network := "tcp"
		if s.mode == "unix_tcp" {
			network = "unix"
		}
		ln, err := netin.ListenStream(network, s.addr, s.perm)
		s.bound.Set(netin.AddrOf(ln), err)
		if err != nil {
			return err
		}
		if network == "unix" {
			defer os.Remove(s.addr)
		}
		s.srv.Log.Info("listening", "mode", s.mode, "address", ln.Addr().String())
		return s.srv.Serve(ctx, ln, func(ctx context.Context, c *netin.Conn) { s.handle(ctx, c, w) })
	}
	network := "udp"
	if s.mode == "unix_udp" {
		network = "unixgram"
	}
	pc, err := netin.ListenPacket(network, s.addr, s.perm)
	var a net.Addr
	if pc != nil {
		a = pc.LocalAddr()
	}
	s.bound.Set(a, err)
	if err != nil {
		return err
	}
	if network == "unixgram" {
		defer os.Remove(s.addr)
	}
	if s.rcvBuf > 0 {
		if rb, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
			if err := rb.SetReadBuffer(s.rcvBuf); err != nil {
				s.srv.Log.Warn("could not set receive_buffer_size", "error", err)
			}
		}
	}
	s.srv.Log.Info("listening", "mode", s.mode, "address", a.String())
	lines := s.lines
	d := &netin.Datagrams{Conn: pc, Size: max(s.framer.max, 64<<10), Pause: &s.PauseFlag, Metrics: s.srv.Metrics, Log: s.srv.Log,
		Decode: func(b *netin.Batch, data []byte, peer net.Addr) {
			msg := trimNewline(data)
			if len(msg) == 0 {
				return
			}
			src := "unix://" + s.addr
			if s.mode == "udp" {
				src = netin.SourceOf("udp", peer)
			}
			lines.Add(b, msg, event.Now(), src)
		}}
	return d.Run(ctx, w)
}

// trimNewline drops the line end some clients put after a datagram.
func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

func (s *Syslog) handle(ctx context.Context, c *netin.Conn, w plugin.Writer) {
	lines := s.lines
	writes := &netin.Writes{W: w}
	var b netin.Batch
	max := s.framer.max
	if s.framer.octet {
		max += 16 // room for the count before a message of max bytes
	}
	err := netin.ReadStream(c, s.chunk, max, func(buf []byte, eof bool) (int, error) {
		now := event.Now()
		off := 0
		var ferr error
		for off < len(buf) {
			msg, used, err := s.framer.next(buf[off:], eof)
			if err != nil {
				ferr = err
				break
			}
			if used == 0 {
				break
			}
			off += used
			if len(msg) > 0 {
				lines.Add(&b, msg, now, c.Source)
			}
		}
		if err := writes.Write(ctx, &b); err != nil {
			return off, err
		}
		return off, ferr
	})
	if err != nil && ctx.Err() == nil {
		s.srv.Metrics.Errors.Add(1)
		s.srv.Log.Warn("connection closed", "remote", c.Source, "error", err)
	}
	writes.Wait(ctx, s.grace)
}

var _ plugin.Pauser = (*Syslog)(nil)
