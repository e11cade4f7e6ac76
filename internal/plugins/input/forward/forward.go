// Package forward is Fluent Bit's forward input: a server for the Fluentd
// Forward protocol v1 (Message, Forward, PackedForward and
// CompressedPackedForward modes) over TCP, TLS or a unix socket.
//
// Acks: a frame whose options carry `chunk` is answered {"ack": chunk} only
// after JetStream has acknowledged every event of the frame (the Writer's
// receipt resolved without error); the open chunk is sealed at once, so the
// client does not wait for the next flush. Acks go out in frame order. If the
// events could not be stored (shutdown before the PubAck), no ack is sent and
// the connection is closed, so the client sends them again.
//
// Backpressure: while the Writer blocks (FLOE_IN full, mem_buf_limit) the
// connection is not read, so the client blocks in its writes and nothing
// further is acked. At most maxPendingAcks frames per connection wait for
// their ack; past that the connection is not read either.
//
// Bad input (bytes that are not MessagePack, a frame that is not a forward
// message, entries that do not decode, a message larger than
// buffer_max_size, a failed handshake, a stream that ends inside a message):
// that connection is closed with a logged reason naming the byte offset,
// counted as a refusal; the other connections carry on. A message's declared
// length is checked against buffer_max_size before its bytes are read, so a
// connection never buffers more than buffer_max_size bytes. A gzip payload
// may decompress to at most max(buffer_max_size, 64 MiB).
//
// Authentication: with shared_key (or security.users) set, each connection
// starts with the HELO / PING / PONG handshake; a wrong key or password gets
// a PONG with auth_result false and the reason, then the connection closes.
//
// Heartbeats: MessagePack nil on the connection is ignored; with a TCP
// listener, UDP datagrams to the same port are answered with one 0x00 byte
// (Fluentd's heartbeat), when that port is free for UDP.
//
// Metrics: records and bytes as Fluent Bit's; under floe.net_input the
// open and total connections, failed handshakes (TLS or shared key) as
// refused, and connections closed for bad input as decode errors.
//
// Differences: fluent_signal 1 and 2 are refused (the connection closes with
// that reason, so nothing is acked and the sender keeps its data). Their
// payloads are Fluent Bit's internal cmetrics / ctraces MessagePack
// encodings, not events and not OTLP, while Floe carries metrics and
// traces as OTLP chunks (what the opentelemetry input, fluentbit_metrics
// and Vivo speak); decoding those private, versioned formats would tie
// Floe to one Fluent Bit release's layout. A Fluent Bit that must send
// metrics or traces to Floe uses its opentelemetry output towards Floe's
// opentelemetry input. tls.key_passwd is refused too.
package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	proto "github.com/floe-io/floe/internal/forward"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

const (
	defaultChunkSize = "1024000" // Fluent Bit's buffer_chunk_size
	defaultMaxSize   = "6144000" // Fluent Bit's buffer_max_size
	maxPendingAcks   = 256
	maxBatch         = 480 << 10        // events of ack-less messages written at once, under a 512 KiB chunk
	ioTimeout        = 30 * time.Second // handshake reads, every write
	shutdownGrace    = 5 * time.Second  // time given to pending acks at shutdown
)

// Spec describes the forward input.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: "forward",
		Desc: "Fluentd Forward protocol server",
		Keys: []plugin.Key{
			{Name: "listen", Default: "0.0.0.0", Desc: "address to listen on"},
			{Name: "port", Type: plugin.Int, Default: "24224", Desc: "TCP port (0: any free port)"},
			{Name: "unix_path", Desc: "listen on this unix socket instead of TCP"},
			{Name: "unix_perm", Desc: "permissions of the unix socket, octal (e.g. 0660)"},
			{Name: "tag_prefix", Desc: "prefix added to the tag of every message"},
			{Name: "shared_key", Desc: "require the HELO/PING/PONG handshake with this key"},
			{Name: "empty_shared_key", Type: plugin.Bool, Default: "off", Desc: "require the handshake with an empty shared key"},
			{Name: "self_hostname", Default: "localhost", Desc: "hostname sent in PONG"},
			{Name: "security.users", Multi: true, Desc: "USER PASSWORD pairs required in the handshake"},
			{Name: "buffer_chunk_size", Type: plugin.Size, Default: defaultChunkSize, Desc: "initial read buffer of a connection"},
			{Name: "buffer_max_size", Type: plugin.Size, Default: defaultMaxSize, Desc: "largest message accepted (read buffer limit)"},
			{Name: "tls", Type: plugin.Bool, Default: "off"},
			{Name: "tls.crt_file", Desc: "server certificate (PEM)"},
			{Name: "tls.key_file", Desc: "server private key (PEM)"},
			{Name: "tls.ca_file", Desc: "when set, clients must present a certificate signed by it"},
			{Name: "tls.verify", Type: plugin.Bool, Default: "on", Desc: "verify client certificates when tls.ca_file is set"},
			{Name: "tls.debug", Type: plugin.Int, Desc: "accepted, no effect"},
			{Name: "tls.vhost", Desc: "accepted, no effect"},
			{Name: "tls.key_passwd", Desc: "not supported (encrypted keys)"},
			{Name: "tls.min_version", Enum: []string{"TLSv1.2", "TLSv1.3"}},
		},
		NewInput: New,
	}
}

// Forward is a configured forward input.
type Forward struct {
	log       *slog.Logger
	tag       string // override; "" keeps the client's tag
	prefix    string
	network   string // tcp or unix
	address   string
	unixPerm  os.FileMode
	tlsConf   *tls.Config
	auth      *proto.Server
	chunkSize int
	maxSize   int
	maxGzip   int
	net       *telemetry.NetInputMetrics

	readyOnce sync.Once
	ready     chan struct{}
	addr      net.Addr
}

// New builds a forward input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	f := &Forward{log: set.Logger, ready: make(chan struct{})}
	if f.log == nil {
		f.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if set.Telemetry != nil {
		f.net = set.Telemetry.NetInput(set.DisplayName())
	} else {
		f.net = &telemetry.NetInputMetrics{}
	}
	if p.Has("tag") {
		f.tag = p.String("tag")
	}
	f.prefix = p.String("tag_prefix")
	if path := p.String("unix_path"); path != "" {
		f.network, f.address = "unix", path
		if perm := p.String("unix_perm"); perm != "" {
			v, err := strconv.ParseUint(perm, 8, 32)
			if err != nil || v > 0o777 {
				return nil, p.Errorf("unix_perm", "unix_perm %q is not an octal permission such as 0660", perm)
			}
			f.unixPerm = os.FileMode(v)
		}
	} else {
		port := p.Int("port")
		if port < 0 || port > 65535 {
			return nil, p.Errorf("port", "port %d out of range", port)
		}
		f.network, f.address = "tcp", net.JoinHostPort(p.String("listen"), strconv.Itoa(port))
	}
	chunk, maxSize := p.Size("buffer_chunk_size"), p.Size("buffer_max_size")
	if chunk <= 0 {
		return nil, p.Errorf("buffer_chunk_size", "buffer_chunk_size must be positive")
	}
	if maxSize < chunk {
		return nil, p.Errorf("buffer_max_size", "buffer_max_size %d is smaller than buffer_chunk_size %d", maxSize, chunk)
	}
	if maxSize > 1<<31 {
		return nil, p.Errorf("buffer_max_size", "buffer_max_size %d is larger than 2G", maxSize)
	}
	f.chunkSize, f.maxSize = int(chunk), int(maxSize)
	f.maxGzip = max(f.maxSize, proto.DefaultMaxDecompressed)

	users := map[string]string{}
	for _, v := range p.All("security.users") {
		fields := strings.Fields(v)
		if len(fields) == 0 || len(fields)%2 != 0 {
			return nil, p.Errorf("security.users", "security.users takes USER PASSWORD pairs, got %d words", len(fields))
		}
		for i := 0; i < len(fields); i += 2 {
			users[fields[i]] = fields[i+1]
		}
	}
	if key := p.String("shared_key"); key != "" || len(users) > 0 || p.Bool("empty_shared_key") {
		f.auth = &proto.Server{SharedKey: key, Hostname: p.String("self_hostname"), Users: users}
	}
	if p.Bool("tls") {
		tc, err := tlsConfig(p)
		if err != nil {
			return nil, err
		}
		f.tlsConf = tc
	}
	return f, nil
}

func tlsConfig(p *plugin.Props) (*tls.Config, error) {
	if p.String("tls.key_passwd") != "" {
		return nil, p.Errorf("tls.key_passwd", "encrypted private keys are not supported; decrypt the key file")
	}
	crt, key := p.String("tls.crt_file"), p.String("tls.key_file")
	if crt == "" || key == "" {
		return nil, p.Errorf("tls", "tls on needs tls.crt_file and tls.key_file")
	}
	cert, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return nil, p.Errorf("tls.crt_file", "loading certificate: %v", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if p.String("tls.min_version") == "TLSv1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if ca := p.String("tls.ca_file"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, p.Errorf("tls.ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, p.Errorf("tls.ca_file", "no PEM certificate in %s", ca)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		if !p.Bool("tls.verify") {
			tc.ClientAuth = tls.RequireAnyClientCert
		}
	}
	return tc, nil
}

// Addr waits until the input listens and returns its address (tests).
func (f *Forward) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-f.ready:
		if f.addr == nil {
			return nil, errors.New("forward input did not start listening")
		}
		return f.addr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run serves connections until ctx ends.
func (f *Forward) Run(ctx context.Context, w plugin.Writer) error {
	defer f.readyOnce.Do(func() { close(f.ready) })
	if f.network == "unix" {
		if fi, err := os.Lstat(f.address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(f.address) // a stale socket from a previous run
		}
	}
	ln, err := net.Listen(f.network, f.address)
	if err != nil {
		return fmt.Errorf("forward: listen %s %s: %w", f.network, f.address, err)
	}
	if f.network == "unix" {
		defer os.Remove(f.address)
		if f.unixPerm != 0 {
			if err := os.Chmod(f.address, f.unixPerm); err != nil {
				ln.Close()
				return fmt.Errorf("forward: unix_perm on %s: %w", f.address, err)
			}
		}
	}
	f.addr = ln.Addr()
	f.readyOnce.Do(func() { close(f.ready) })
	f.log.Info("forward input listening", "network", f.network, "addr", f.addr.String(), "tls", f.tlsConf != nil, "auth", f.auth != nil)
	if f.network == "tcp" {
		go f.heartbeats(ctx, f.addr.(*net.TCPAddr))
	}

	// One flusher for every connection: acks wait for their chunk to be
	// sealed, and requests arriving while a flush runs share the next one.
	flushReq := make(chan struct{}, 1)
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		for {
			select {
			case <-flushReq:
				plugin.FlushWriter(w)
			case <-ctx.Done():
				return
			}
		}
	}()

	// Acks may still go out for a short while after ctx ends.
	ackCtx, cancelAcks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAcks()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancelAcks) })
	defer stopAfter()

	var readers, conns sync.WaitGroup
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			f.log.Error("forward accept failed", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		f.net.ConnectionsTotal.Add(1)
		f.net.Connections.Add(1)
		cn := &conn{f: f, c: c, w: w, flush: flushReq, acks: make(chan pendingAck, maxPendingAcks)}
		readers.Add(1)
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer f.net.Connections.Add(-1)
			cn.serve(ctx, ackCtx, readers.Done)
		}()
	}
	// Events read before the stop are written: seal them now so their acks
	// can still go out within the grace period.
	readers.Wait()
	<-flushDone
	plugin.FlushWriter(w)
	conns.Wait()
	return nil
}

// heartbeats answers Fluentd's UDP heartbeats on the TCP port.
func (f *Forward) heartbeats(ctx context.Context, addr *net.TCPAddr) {
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		f.log.Debug("forward UDP heartbeat not available", "addr", addr.String(), "error", err)
		return
	}
	context.AfterFunc(ctx, func() { pc.Close() })
	buf := make([]byte, 64)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo([]byte{0}, from)
	}
}

type pendingAck struct {
	r     plugin.Receipt
	chunk string
	off   int64
}

// conn is one client connection.
type conn struct {
	f     *Forward
	c     net.Conn
	w     plugin.Writer
	flush chan<- struct{}
	acks  chan pendingAck
	log   *slog.Logger

	mu       sync.Mutex
	stopping bool // reads are being stopped (shutdown); do not clear deadlines
}

func (cn *conn) serve(ctx, ackCtx context.Context, readerDone func()) {
	f := cn.f
	remote := "unix"
	if a := cn.c.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		remote = a.String()
	}
	cn.log = f.log.With("remote", remote)
	stop := context.AfterFunc(ctx, func() {
		cn.mu.Lock()
		cn.stopping = true
		cn.mu.Unlock()
		_ = cn.c.SetReadDeadline(time.Now())
	})
	defer stop()

	if f.tlsConf != nil {
		tc := tls.Server(cn.c, f.tlsConf)
		hctx, cancel := context.WithTimeout(ctx, ioTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			readerDone()
			if ctx.Err() == nil {
				f.net.Refused.Add(1)
				cn.log.Warn("closing forward connection", "reason", fmt.Errorf("TLS handshake: %w", err))
			}
			cn.c.Close()
			return
		}
		cn.c = tc
	}
	ackerDone := make(chan struct{})
	ackFailed := make(chan struct{})
	go cn.acker(ackCtx, ackerDone, ackFailed)

	reason := cn.read(ctx, ackFailed)
	readerDone()
	close(cn.acks)
	if reason != nil {
		var ae *authError
		if errors.As(reason, &ae) {
			f.net.Refused.Add(1)
		} else {
			f.net.Errors.Add(1)
		}
		cn.log.Warn("closing forward connection", "reason", reason)
	}
	<-ackerDone
	cn.c.Close()
}

// read handles frames until the connection ends; it returns why it refused
// the connection, or nil for a normal end.
func (cn *conn) read(ctx context.Context, ackFailed <-chan struct{}) error {
	f := cn.f
	dec := proto.NewDecoder(cn.c, f.chunkSize, f.maxSize)
	if f.auth != nil {
		if err := cn.handshake(dec); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	// Events of messages without a chunk option (no ack to send) are
	// batched per tag and written when the decoder is about to read again,
	// when the tag changes, when the batch is large, and before anything
	// else is written or returned: one write per read instead of one per
	// message (a client sending one Message per event), without delay.
	var (
		batch    []byte
		batchN   int
		batchTag string
		batchErr error
	)
	flush := func() {
		if batchN == 0 || batchErr != nil {
			return
		}
		if _, err := cn.w.Write(ctx, batchTag, batch, batchN); err != nil {
			batchErr = err
		}
		batch, batchN = batch[:0], 0
		if cap(batch) > 4*maxBatch {
			batch = nil
		}
	}
	writeFailed := func(tag string, err error) error {
		if ctx.Err() != nil {
			return nil
		}
		// Not the client's fault: no refusal, but no ack either.
		cn.log.Error("forward events not written; closing so the client resends", "tag", tag, "error", err)
		return nil
	}
	dec.BeforeRead = flush
	defer func() { dec.BeforeRead = nil }()
	for {
		v, off, err := dec.Next()
		if batchErr != nil {
			return writeFailed(batchTag, batchErr)
		}
		if err != nil {
			flush()
			select {
			case <-ackFailed:
				return nil // the acker closed the connection and said why
			default:
			}
			if batchErr != nil {
				return writeFailed(batchTag, batchErr)
			}
			if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
				return nil
			}
			return err
		}
		if proto.IsHeartbeat(v) {
			continue
		}
		fr, err := proto.ParseFrame(v)
		if err != nil {
			flush()
			return fmt.Errorf("invalid forward message at byte offset %d: %w", off, proto.Shift(err, off))
		}
		if fr.Options.Signal != proto.SignalLogs {
			flush()
			what := "metrics (cmetrics)"
			if fr.Options.Signal == proto.SignalTraces {
				what = "traces (ctraces)"
			}
			return fmt.Errorf("message at byte offset %d (tag %q): fluent_signal %d, %s, is not accepted by the forward input: send metrics and traces to the opentelemetry input (Fluent Bit's opentelemetry output)", off, fr.Tag, fr.Options.Signal, what)
		}
		tag := f.tag
		if tag == "" {
			tag = f.prefix + fr.Tag
		}
		// A chunk to acknowledge is written on its own, after what came
		// before it.
		if fr.Options.Chunk != "" || (batchN > 0 && (tag != batchTag || len(batch) >= maxBatch)) {
			if flush(); batchErr != nil {
				return writeFailed(batchTag, batchErr)
			}
		}
		mark := len(batch)
		out, n, err := fr.AppendEvents(batch, f.maxGzip)
		if err != nil {
			batch = out[:mark]
			flush()
			if fr.Mode == proto.ModeMessage || fr.Mode == proto.ModeForward {
				err = proto.Shift(err, off)
			}
			return fmt.Errorf("%s message at byte offset %d (tag %q): %w", fr.Mode, off, fr.Tag, err)
		}
		if fr.Options.Size >= 0 && fr.Options.Size != n {
			cn.log.Debug("forward option size differs from the entries", "size", fr.Options.Size, "entries", n)
		}
		if fr.Options.Chunk == "" {
			batch, batchN, batchTag = out, batchN+n, tag
			continue
		}
		batch = out[:0] // keep the buffer: Write below does not keep out
		if n == 0 {
			cn.acks <- pendingAck{chunk: fr.Options.Chunk, off: off}
			continue
		}
		r, err := cn.w.Write(ctx, tag, out, n)
		if err != nil {
			return writeFailed(tag, err)
		}
		select {
		case cn.flush <- struct{}{}:
		default:
		}
		select {
		case cn.acks <- pendingAck{r: r, chunk: fr.Options.Chunk, off: off}:
		case <-ackFailed:
			return nil
		}
	}
}

// handshake runs HELO / PING / PONG; heartbeats may come before the PING.
func (cn *conn) handshake(dec *proto.Decoder) error {
	f := cn.f
	helo := f.auth.NewHelo()
	if err := cn.write(proto.AppendHelo(nil, helo)); err != nil {
		return fmt.Errorf("sending HELO: %w", err)
	}
	cn.setReadDeadline(time.Now().Add(ioTimeout))
	var v []byte
	var off int64
	var err error
	for {
		if v, off, err = dec.Next(); err != nil {
			return fmt.Errorf("waiting for PING: %w", err)
		}
		if !proto.IsHeartbeat(v) {
			break
		}
	}
	ping, err := proto.ParsePing(v)
	if err != nil {
		return fmt.Errorf("handshake at byte offset %d: %w", off, proto.Shift(err, off))
	}
	pong := f.auth.Check(helo, ping)
	if err := cn.write(proto.AppendPong(nil, pong)); err != nil {
		return fmt.Errorf("sending PONG: %w", err)
	}
	if !pong.AuthResult {
		return &authError{fmt.Errorf("authentication failed for host %q user %q: %s", ping.Hostname, ping.Username, pong.Reason)}
	}
	cn.setReadDeadline(time.Time{})
	return nil
}

// authError is a failed handshake: counted as refused, not as bad input.
type authError struct{ error }

func (e *authError) Unwrap() error { return e.error }

// setReadDeadline sets a deadline unless a shutdown already cut reads short.
func (cn *conn) setReadDeadline(t time.Time) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if !cn.stopping {
		_ = cn.c.SetReadDeadline(t)
	}
}

func (cn *conn) write(b []byte) error {
	_ = cn.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := cn.c.Write(b)
	return err
}

// acker sends acks in frame order, each once its events are stored.
func (cn *conn) acker(ctx context.Context, done, failed chan<- struct{}) {
	defer close(done)
	fail := func() {
		close(failed)
		cn.c.Close() // unblocks the reader
		for range cn.acks {
		}
	}
	var buf []byte
	for pa := range cn.acks {
		if pa.r != nil {
			select {
			case <-pa.r.Done():
			case <-ctx.Done():
				cn.log.Warn("forward connection closed before its events were stored; the client will resend", "chunk", pa.chunk)
				fail()
				return
			}
			if err := pa.r.Err(); err != nil {
				cn.log.Error("forward events not stored; no ack, closing so the client resends", "chunk", pa.chunk, "error", err)
				fail()
				return
			}
		}
		buf = proto.AppendAck(buf[:0], pa.chunk)
		if err := cn.write(buf); err != nil {
			cn.log.Debug("forward ack not sent", "chunk", pa.chunk, "error", err)
			fail()
			return
		}
	}
}
