package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/natsembed"
)

// Admin is a connection for operator commands (floe dlq): to the configured
// NATS server, or, without one, to the embedded server's storage directly.
type Admin struct {
	JS    jetstream.JetStream
	close func()
}

// Close releases the connection and any embedded server.
func (a *Admin) Close() { a.close() }

// ConnectAdmin connects as the configuration (and overrides) say.
func ConnectAdmin(ctx context.Context, cfg *config.Config, natsURL, storagePath string) (*Admin, error) {
	svc, err := ParseService(cfg.Service)
	if err != nil {
		return nil, err
	}
	if natsURL != "" {
		svc.NATS.URL = natsURL
	}
	if storagePath != "" {
		svc.StoragePath = storagePath
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	co := svc.NATS
	co.Logger, co.Name = log, "floe-admin"
	var srv *natsembed.Server
	if co.URL == "" {
		dir := natsembed.DefaultStoreDir()
		if svc.StoragePath != "" {
			dir = filepath.Join(svc.StoragePath, "jetstream")
		}
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("no embedded storage at %s (give --nats-url to reach a running server): %w", dir, err)
		}
		srv, err = natsembed.Start(natsembed.Options{StoreDir: dir})
		if err != nil {
			return nil, fmt.Errorf("open embedded storage %s (is floe running on it? stop it or use --nats-url): %w", dir, err)
		}
		co.ExtraOpts = append(co.ExtraOpts, srv.ConnectOption())
	}
	nc, err := jsx.Connect(co)
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		nc.Close()
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}
	}
	// Fail fast rather than retrying forever: an operator is waiting.
	deadline := time.Now().Add(5 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			closeAll()
			return nil, fmt.Errorf("cannot reach NATS at %s", co.URL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		closeAll()
		return nil, err
	}
	return &Admin{JS: js, close: closeAll}, nil
}
