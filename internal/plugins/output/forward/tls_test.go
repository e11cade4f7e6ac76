package forward

import (
	"context"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	forwardin "github.com/floe-io/floe/internal/plugins/input/forward"
	"github.com/floe-io/floe/internal/plugins/output/internal/inputsink"
)

// Over TLS to Floe's forward input: the certificate is verified against
// tls.ca_file, and a client that does not trust it gets no OK.
func TestRoundTripTLS(t *testing.T) {
	crt, key := inputsink.SelfSigned(t)
	in, err := forwardin.New(context.Background(), plugin.Settings{Name: "forward.0"},
		plugintest.Props(forwardin.Spec(), "listen 127.0.0.1", "port 0", "tls on", "tls.crt_file "+crt, "tls.key_file "+key))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &plugintest.Writer{}
	done := make(chan error, 1)
	go func() { done <- in.(*forwardin.Forward).Run(ctx, w) }()
	defer func() { cancel(); <-done }()
	addr, err := in.(*forwardin.Forward).Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, addr.String())
	out := newOut(t, "host "+host, "port "+port, "tls on", "tls.ca_file "+crt, "tls.verify_hostname on", "require_ack_response on")
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 10)); err != nil {
		t.Fatalf("flush over TLS: %v", err)
	}
	if n := stored(t, w); n != 10 {
		t.Fatalf("forward input stored %d events, want 10", n)
	}
	untrusting := newOut(t, "host "+host, "port "+port, "tls on", "require_ack_response on")
	err = untrusting.Flush(context.Background(), outputtest.Chunk(10, 10))
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("flush to an untrusted server = %v, want a retry", err)
	}
	if n := stored(t, w); n != 10 {
		t.Fatalf("forward input stored %d events after the refused client, want 10", n)
	}
}

// Without acks nothing confirms delivery, so a connection the server closed
// (restart) must be noticed before the next frame is written into it.
func TestRestartWithoutAcks(t *testing.T) {
	s := newFwdSink(t, "")
	out := newOut(t, s.hostPort()...)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(s.Events()) == 10 })
	s.Restart(t)
	for i := 1; i < 4; i++ {
		if err := out.Flush(context.Background(), outputtest.Chunk(int64(i*10), 10)); err != nil {
			t.Fatalf("flush %d after the restart: %v", i, err)
		}
	}
	waitFor(t, func() bool { return len(s.Events()) >= 40 })
	if err := outputtest.Diff(seqsUpTo(40), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
}

func stored(t *testing.T, w *plugintest.Writer) int {
	t.Helper()
	evs, err := w.Events()
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// username/password against the forward input's security.users.
func TestUserPassword(t *testing.T) {
	in, err := forwardin.New(context.Background(), plugin.Settings{Name: "forward.0"},
		plugintest.Props(forwardin.Spec(), "listen 127.0.0.1", "port 0", "shared_key k", "security.users alice s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &plugintest.Writer{}
	done := make(chan error, 1)
	go func() { done <- in.(*forwardin.Forward).Run(ctx, w) }()
	defer func() { cancel(); <-done }()
	addr, err := in.(*forwardin.Forward).Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, addr.String())
	wrong := newOut(t, "host "+host, "port "+port, "shared_key k", "username alice", "password nope", "require_ack_response on")
	if err := wrong.Flush(context.Background(), outputtest.Chunk(0, 5)); err == nil || plugin.IsPermanent(err) {
		t.Fatalf("flush with a wrong password = %v, want a retry", err)
	}
	right := newOut(t, "host "+host, "port "+port, "shared_key k", "username alice", "password s3cret", "require_ack_response on")
	if err := right.Flush(context.Background(), outputtest.Chunk(5, 5)); err != nil {
		t.Fatalf("flush with the right password: %v", err)
	}
	if n := stored(t, w); n != 5 {
		t.Fatalf("forward input stored %d events, want the 5 of the authenticated client", n)
	}
}
