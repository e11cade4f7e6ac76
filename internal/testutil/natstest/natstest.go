// Package natstest starts a real embedded nats-server with JetStream for
// integration tests.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/freeport"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a test JetStream server that can be restarted on the same storage and port.
type Server struct {
	t    testing.TB
	dir  string
	port int
	Srv  *server.Server
}

// Run starts a server on 127.0.0.1 with a free port and file storage in a temp dir.
func Run(t testing.TB) *Server {
	t.Helper()
	// Below the ephemeral range, so Restart finds the port still free.
	s := &Server{t: t, dir: t.TempDir(), port: freeport.Get(t)}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats server not ready")
	}
	s.Srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
}

// URL is the client URL.
func (s *Server) URL() string { return s.Srv.ClientURL() }

// Shutdown stops the server (idempotent).
func (s *Server) Shutdown() {
	if s.Srv != nil {
		s.Srv.Shutdown()
		s.Srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port and storage.
func (s *Server) Restart() {
	s.Shutdown()
	s.start()
}

// Connect returns a client connection and JetStream context, closed at test end.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}
