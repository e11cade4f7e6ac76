// Package natsembed runs nats-server with JetStream inside a Floe process:
// the default a new user gets, with nothing else to install.
package natsembed

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/floe-io/floe/internal/storelock"
)

// Options configure the embedded server.
type Options struct {
	// StoreDir holds JetStream's file storage. Required.
	StoreDir string
	// Listen is host:port for clients; empty means no listener (in-process only).
	Listen string
	// MaxPayload bounds one message; 0 means 8 MiB, room for Floe's chunks.
	MaxPayload int32
	// MaxFileStore caps JetStream's file storage in bytes; 0 leaves
	// nats-server's default (75% of the free disk space).
	MaxFileStore int64
	// ServerName names the server; every node of a cluster needs its own.
	ServerName string
	// Cluster joins a NATS cluster when ClusterListen is set.
	ClusterName   string
	ClusterListen string   // host:port for routes from other nodes
	Routes        []string // nats-route://host:port of the other nodes
	Logger        *slog.Logger
}

// Server is a running embedded nats-server.
type Server struct {
	srv  *server.Server
	opts Options
	lock *storelock.Lock
}

// DefaultStoreDir is the per-user state directory used when storage.path is unset.
func DefaultStoreDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "floe")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "floe")
	}
	return filepath.Join(os.TempDir(), "floe-"+strconv.Itoa(os.Getuid()))
}

// Start takes the store's lock (see storelock), launches the server and
// waits until it accepts connections. A store owned by another process is
// refused with a *storelock.HeldError before anything in it is opened.
func Start(o Options) (s *Server, err error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("nats: storage directory is not set")
	}
	if err := os.MkdirAll(o.StoreDir, 0o755); err != nil {
		return nil, fmt.Errorf("nats: create storage directory %s: %w", o.StoreDir, err)
	}
	lock, err := storelock.Acquire(o.StoreDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = lock.Release()
		}
	}()
	if o.MaxPayload == 0 {
		o.MaxPayload = 8 << 20
	}
	sopts := &server.Options{
		ServerName: o.ServerName,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		MaxPayload: o.MaxPayload,
		NoSigs:     true,
		NoLog:      true,
	}
	if o.MaxFileStore > 0 {
		sopts.JetStreamMaxStore = o.MaxFileStore
	}
	if o.Listen == "" {
		sopts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats: listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats: listen port %q: %w", port, err)
		}
		if p == 0 {
			p = -1 // nats-server's "pick a free port"
		}
		sopts.Host, sopts.Port = host, p
	}
	if o.ClusterListen != "" {
		host, port, err := net.SplitHostPort(o.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("nats: cluster listen address %q: %w", o.ClusterListen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats: cluster listen port %q: %w", port, err)
		}
		if o.ServerName == "" {
			return nil, fmt.Errorf("nats: a clustered server needs nats.server_name")
		}
		name := o.ClusterName
		if name == "" {
			name = "floe"
		}
		sopts.Cluster = server.ClusterOpts{Name: name, Host: host, Port: p}
		if len(o.Routes) > 0 {
			routes := server.RoutesFromStr(strings.Join(o.Routes, ","))
			if len(routes) != len(o.Routes) {
				return nil, fmt.Errorf("nats: invalid cluster routes %q", strings.Join(o.Routes, ","))
			}
			sopts.Routes = routes
		}
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: server not ready after 30s (storage %s, listen %q)", o.StoreDir, o.Listen)
	}
	return &Server{srv: srv, opts: o, lock: lock}, nil
}

// ClientURL is the address clients dial, or "" when the server does not listen.
func (s *Server) ClientURL() string {
	if s.opts.Listen == "" {
		return ""
	}
	return s.srv.ClientURL()
}

// Addr is the host:port the server listens on, or "".
func (s *Server) Addr() string {
	if s.opts.Listen == "" {
		return ""
	}
	if a, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return a.String()
	}
	return ""
}

// ConnectOption makes a client connection use this server, in process when it does not listen.
func (s *Server) ConnectOption() nats.Option {
	if s.opts.Listen == "" {
		return nats.InProcessServer(s.srv)
	}
	return func(o *nats.Options) error {
		o.Servers = []string{s.srv.ClientURL()}
		return nil
	}
}

// Shutdown stops the server, waiting at most until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		// Only once the server has closed its files may another process take the store.
		_ = s.lock.Release()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("nats: shutdown: %w", ctx.Err())
	}
}

// JetStreamReady reports whether JetStream can take requests: enabled and,
// in a cluster, with a meta leader this server is current with.
func (s *Server) JetStreamReady() error {
	if !s.srv.JetStreamEnabled() {
		return fmt.Errorf("jetstream not enabled")
	}
	if s.srv.JetStreamIsClustered() && !s.srv.JetStreamIsCurrent() {
		return fmt.Errorf("jetstream cluster has no current meta leader yet")
	}
	return nil
}

// Raw exposes the nats-server for tests.
func (s *Server) Raw() *server.Server { return s.srv }
