// Package vivo is the vivo stage: Fluent Bit's Vivo exporter HTTP API served
// from JetStream instead of a 20 MB ring inside one process.
//
// The router publishes every chunk a vivo_exporter output matches to one of
// three streams per exporter, FLOE_VIVO_<id>_LOGS|METRICS|TRACES (Limits
// retention, at most stream_queue_size bytes, oldest discarded). A chunk's id
// is its stream sequence − 1: ids start at 0, only grow, survive purges and
// restarts of this stage and of NATS, and every replica of the stage answers
// the same. The stage holds no state of its own.
//
// Endpoints (paths compared exactly, any method; OPTIONS is a CORS preflight):
//
//	/logs /metrics /traces          the documented API: one log event per line,
//	                                [[<ns>,{"_tag":"<tag>",<metadata>}],{<record>}]
//	/api/v1/logs|metrics|traces     current upstream: one JSON object per log chunk
//	                                (source_type, source_name, tag, records)
//	/api/v1/internal/metrics        the stage's own metrics, OTLP JSON
//	/                               "Fluent Bit Vivo Exporter\n"
//	/ui/                            the live viewer
//
// Metrics and traces chunks (OTLP protobuf) render as OTLP JSON, one
// document per chunk, on both generations. Queries: see parseQuery and
// query.resolve. Floe's additions on the stream endpoints: ?tag=<Match
// pattern> filters the chunks, ?follow=1 keeps the response open and streams
// new chunks as they arrive (NDJSON, or Server-Sent Events with Accept:
// text/event-stream, event id = chunk id, Last-Event-ID resumes).
//
// A one-shot read streams: each chunk is rendered and written as it is read
// from an ordered consumer with a bounded look-ahead, so a huge ?limit does
// not hold the stream in memory.
package vivo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	vivoout "github.com/floe-io/floe/internal/plugins/output/vivo"
	"github.com/floe-io/floe/internal/telemetry"
)

// Exporter is one vivo_exporter output instance.
type Exporter struct {
	Name  string        // output display name
	ID    string        // jsx.OutputID of the instance: streams jsx.VivoStreamName(ID, signal)
	Props *plugin.Props // the vivo_exporter section with defaults
}

// Config configures the stage.
type Config struct {
	Exporters []Exporter
	Logger    *slog.Logger
	JSON      event.JSONOptions // [SERVICE] json.* rendering options
	// Telemetry, when set, adds the process's own metrics to
	// /api/v1/internal/metrics (optional).
	Telemetry *telemetry.Registry
}

// Service serves the exporters' HTTP APIs.
type Service struct {
	js   jetstream.JetStream
	cfg  Config
	log  *slog.Logger
	exps []*exporter

	mu        sync.Mutex
	addrs     []string
	listening chan struct{}
}

// shutdownGrace bounds the graceful shutdown of the HTTP servers.
const shutdownGrace = 5 * time.Second

// New checks the exporters' settings and listen addresses.
func New(js jetstream.JetStream, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Service{js: js, cfg: cfg, log: cfg.Logger, listening: make(chan struct{})}
	seen := map[string]string{}
	var errs []error
	for _, e := range cfg.Exporters {
		if e.Props == nil {
			errs = append(errs, fmt.Errorf("vivo exporter %s: no configuration", e.Name))
			continue
		}
		set, err := vivoout.Parse(e.Props)
		if err != nil {
			errs = append(errs, fmt.Errorf("vivo exporter %s: %w", e.Name, err))
			continue
		}
		addr := set.Addr()
		if prev, dup := seen[addr]; dup && set.Port != 0 {
			errs = append(errs, fmt.Errorf("vivo exporters %s and %s both listen on %s: give one another port", prev, e.Name, addr))
			continue
		}
		seen[addr] = e.Name
		s.exps = append(s.exps, newExporter(s, e, set))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Addrs are the addresses the exporters listen on, in configuration order,
// once Listening is closed.
func (s *Service) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// Listening is closed when every exporter listens.
func (s *Service) Listening() <-chan struct{} { return s.listening }

// Run listens on every exporter's host:port and serves until ctx ends, then
// shuts down gracefully: followers (?follow=1) are ended first, requests in
// progress get shutdownGrace to finish.
func (s *Service) Run(ctx context.Context) error {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	for _, e := range s.exps {
		ln, err := net.Listen("tcp", e.set.Addr())
		if err != nil {
			closeAll()
			return fmt.Errorf("vivo exporter %s: listen: %w", e.name, err)
		}
		if e.set.MaxConnections > 0 {
			ln = limitListener(ln, e.set.MaxConnections)
		}
		lns = append(lns, ln)
	}
	// Requests (followers especially) end when base ends.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	servers := make([]*http.Server, len(s.exps))
	errc := make(chan error, len(s.exps))
	addrs := make([]string, len(s.exps))
	for i, e := range s.exps {
		srv := &http.Server{
			Handler:           e,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       e.set.IdleTimeout,
			MaxHeaderBytes:    e.set.MaxHeaderBytes,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          log.New(slogWriter{s.log}, "", 0),
		}
		var p http.Protocols
		p.SetHTTP1(true)
		if e.set.HTTP2 {
			p.SetUnencryptedHTTP2(true)
		}
		srv.Protocols = &p
		servers[i] = srv
		// The configured host with the port bound (port 0 picks a free one).
		addrs[i] = e.set.Addr()
		if ta, ok := lns[i].Addr().(*net.TCPAddr); ok {
			addrs[i] = net.JoinHostPort(e.set.Host, strconv.Itoa(ta.Port))
		}
		s.log.Info("vivo listening", "exporter", e.name, "addr", addrs[i])
		go func(srv *http.Server, ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(srv, lns[i])
	}
	s.mu.Lock()
	s.addrs = addrs
	s.mu.Unlock()
	close(s.listening)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("vivo: serve: %w", err)
	}
	cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
		}()
	}
	wg.Wait()
	return runErr
}

// slogWriter sends net/http's own error log lines to the stage's logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.l.Debug("vivo http", "msg", msg)
	return len(p), nil
}

// limitListener accepts at most n connections at a time
// (http_server.max_connections).
func limitListener(ln net.Listener, n int) net.Listener {
	return &limited{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limited struct {
	net.Listener
	sem   chan struct{}
	done  chan struct{}
	close sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limited) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
