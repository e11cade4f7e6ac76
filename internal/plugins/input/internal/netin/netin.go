// Package netin holds what Floe's network inputs (http, tcp, udp, syslog)
// share: the listen and TLS keys Fluent Bit gives every input, listeners
// that track their connections in the input's metrics, the pause flag that
// datagram and HTTP inputs answer with instead of blocking, and small
// helpers to build records.
package netin

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
	"github.com/floe-io/floe/internal/telemetry"
)

// ListenKeys are Fluent Bit's generic listen keys (flb_input.c: listen,
// host, port) with the plugin's default port.
func ListenKeys(defaultPort int) []plugin.Key {
	return []plugin.Key{
		{Name: "listen", Default: "0.0.0.0", Desc: "address to listen on"},
		{Name: "host", Desc: "alias of listen"},
		{Name: "port", Type: plugin.Int, Default: strconv.Itoa(defaultPort), Desc: "TCP or UDP port to listen on"},
	}
}

// Addr is the host:port a plugin listens on.
func Addr(p *plugin.Props) (string, error) {
	host := p.String("listen")
	if !p.Has("listen") && p.Has("host") {
		host = p.String("host")
	}
	port := p.Int("port")
	if port < 0 || port > 65535 {
		return "", p.Errorf("port", "port %d is out of range 0-65535", port)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// Logger returns set's logger, or one that discards.
func Logger(set plugin.Settings) *slog.Logger {
	if set.Logger != nil {
		return set.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Metrics returns the network metrics of the input, or a private set in
// tests that pass no registry.
func Metrics(set plugin.Settings) *telemetry.NetInputMetrics {
	if set.Telemetry != nil {
		return set.Telemetry.NetInput(set.DisplayName())
	}
	return &telemetry.NetInputMetrics{}
}

// PauseFlag is the paused state of an input that refuses data while the
// pipeline is full instead of blocking in Write (plugin.Pauser): HTTP
// answers 503, datagram inputs drop and count. Embed it to implement
// plugin.Pauser.
type PauseFlag struct{ paused atomic.Bool }

// Pause marks the input paused (plugin.Pauser).
func (p *PauseFlag) Pause() { p.paused.Store(true) }

// Resume marks the input running again (plugin.Pauser).
func (p *PauseFlag) Resume() { p.paused.Store(false) }

// IsPaused reports whether the input is paused.
func (p *PauseFlag) IsPaused() bool { return p.paused.Load() }

// Server accepts stream connections (TCP or unix, optionally TLS) and runs a
// handler for each, counting them in Metrics.
type Server struct {
	Log     *slog.Logger
	Metrics *telemetry.NetInputMetrics
	TLS     *TLSConfig // nil: plain
	// Name prefixes the source addresses of connections: "tcp" or "unix".
	Scheme string
	// Path is the socket path of a unix listener, for source addresses.
	Path string
}

// Conn is one accepted connection.
type Conn struct {
	net.Conn
	// Source is the peer as Fluent Bit's source_address_key shows it:
	// tcp://HOST:PORT, or unix://PATH for unix sockets.
	Source string
}

// ListenStream opens a stream listener: network "tcp" on addr, or "unix" on
// the socket path addr, created with permissions perm after removing a
// stale socket file left by a previous run.
func ListenStream(network, addr string, perm os.FileMode) (net.Listener, error) {
	if network == "unix" {
		if err := removeStaleSocket(addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := os.Chmod(addr, perm); err != nil {
			ln.Close()
			return nil, fmt.Errorf("chmod %s: %w", addr, err)
		}
	}
	return ln, nil
}

// ListenPacket opens a datagram socket: "udp" on addr, or "unixgram" on the
// socket path addr (see ListenStream).
func ListenPacket(network, addr string, perm os.FileMode) (net.PacketConn, error) {
	if network == "unixgram" {
		if err := removeStaleSocket(addr); err != nil {
			return nil, err
		}
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	if network == "unixgram" {
		if err := os.Chmod(addr, perm); err != nil {
			pc.Close()
			return nil, fmt.Errorf("chmod %s: %w", addr, err)
		}
	}
	return pc, nil
}

// removeStaleSocket removes a socket file nobody listens on, and refuses
// to touch anything else at that path.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("%s: another process listens on this socket", path)
	}
	return os.Remove(path)
}

// Serve accepts connections on ln until ctx ends, running handle for each
// in its own goroutine. When ctx ends it closes the listener and every
// connection, so handlers blocked in Read return, and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener, handle func(ctx context.Context, c *Conn)) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				err = nil
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			err = fmt.Errorf("accept: %w", err)
			break
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		s.Metrics.Connections.Add(1)
		s.Metrics.ConnectionsTotal.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
				s.Metrics.Connections.Add(-1)
			}()
			conn := &Conn{Conn: c, Source: s.source(c)}
			if s.TLS != nil {
				tc, err := s.TLS.handshake(ctx, c)
				if err != nil {
					s.Metrics.Refused.Add(1)
					s.Log.Warn("TLS handshake failed, connection closed", "remote", conn.Source, "error", err)
					return
				}
				conn.Conn = tc
			}
			handle(ctx, conn)
		}()
	}
	ln.Close()
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	return err
}

func (s *Server) source(c net.Conn) string {
	if s.Scheme == "unix" {
		return "unix://" + s.Path
	}
	return SourceOf("tcp", c.RemoteAddr())
}

// SourceOf formats a peer address as Fluent Bit does (flb_connection.c):
// scheme://host:port, the host without IPv6 brackets.
func SourceOf(scheme string, a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return scheme + "://" + a.IP.String() + ":" + strconv.Itoa(a.Port)
	case *net.UDPAddr:
		return scheme + "://" + a.IP.String() + ":" + strconv.Itoa(a.Port)
	case nil:
		return scheme + "://"
	}
	return scheme + "://" + a.String()
}

// ---- records ----

// AppendField appends to dst the MessagePack map body with one more string
// entry key: val (Fluent Bit's flb_msgpack_append_message_to_record). A
// body that is not a map is appended unchanged.
func AppendField(dst, body []byte, key, val string) []byte {
	n, hl, ok := recordaccessor.MapHeader(body)
	if !ok {
		return append(dst, body...)
	}
	dst = event.AppendMapHeader(dst, n+1)
	dst = append(dst, body[hl:]...)
	dst = event.AppendString(dst, key)
	return event.AppendString(dst, val)
}

// IsMap reports whether b starts with a MessagePack map.
func IsMap(b []byte) bool {
	_, _, ok := recordaccessor.MapHeader(b)
	return ok
}

// StringRecord appends the body {key: val}, plus {srcKey: src} when srcKey is set.
func StringRecord(dst []byte, key string, val []byte, srcKey, src string) []byte {
	if srcKey == "" {
		dst = event.AppendMapHeader(dst, 1)
	} else {
		dst = event.AppendMapHeader(dst, 2)
	}
	dst = event.AppendString(dst, key)
	dst = event.AppendString(dst, string(val))
	if srcKey != "" {
		dst = event.AppendString(dst, srcKey)
		dst = event.AppendString(dst, src)
	}
	return dst
}

// Batch collects encoded events for one Write.
type Batch struct {
	Data    []byte
	Records int
	scratch []byte
}

// Add appends an event with body (a MessagePack map), adding the field
// srcKey: src when srcKey is set.
func (b *Batch) Add(t event.Time, body []byte, srcKey, src string) {
	if srcKey != "" {
		b.scratch = AppendField(b.scratch[:0], body, srcKey, src)
		body = b.scratch
	}
	b.Data = event.AppendRaw(b.Data, t, nil, body)
	b.Records++
}

// Reset empties the batch, keeping its memory unless it grew large.
func (b *Batch) Reset() {
	if cap(b.Data) > 4<<20 {
		b.Data = nil
	}
	b.Data, b.Records = b.Data[:0], 0
}

// Bound publishes the address a listener got once it is open (port 0 in
// tests picks a free one).
type Bound struct {
	once sync.Once
	ch   chan struct{}
	mu   sync.Mutex
	addr net.Addr
	err  error
}

func (b *Bound) init() { b.once.Do(func() { b.ch = make(chan struct{}) }) }

// Set records the listening address, or the error that prevented listening.
func (b *Bound) Set(a net.Addr, err error) {
	b.init()
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.ch:
		return
	default:
	}
	b.addr, b.err = a, err
	close(b.ch)
}

// Wait returns the listening address once the listener is open.
func (b *Bound) Wait(ctx context.Context) (net.Addr, error) {
	b.init()
	select {
	case <-b.ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr, b.err
}

// KBSize reads Fluent Bit's tcp/udp chunk_size and buffer_size: a number of
// kilobytes (upstream multiplies atoi() by 1024), optionally with a unit
// (k, m) for clarity.
func KBSize(p *plugin.Props, key string, def int) (int, error) {
	s := p.String(key)
	if s == "" {
		return def, nil
	}
	t := s
	mult := 1024
	switch t[len(t)-1] {
	case 'k', 'K':
		t = t[:len(t)-1]
	case 'm', 'M':
		t, mult = t[:len(t)-1], 1024*1024
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || int64(n)*int64(mult) > 1<<30 {
		return 0, p.Errorf(key, "%s %q is not a positive number of kilobytes up to 1G", key, s)
	}
	return n * mult, nil
}

// AddrOf is ln's address, or nil.
func AddrOf(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// ErrorLog is a standard logger for net/http's server errors: they go to
// log at warning level, and TLS handshake failures count as refusals.
func ErrorLog(log *slog.Logger, m *telemetry.NetInputMetrics) *stdlog.Logger {
	return stdlog.New(errorLogWriter{log, m}, "", 0)
}

type errorLogWriter struct {
	log *slog.Logger
	m   *telemetry.NetInputMetrics
}

func (e errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		e.m.Refused.Add(1)
	}
	e.log.Warn("http server", "error", msg)
	return len(p), nil
}
