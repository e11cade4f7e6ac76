package natsout

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugins/output/internal/inputsink"
)

// secureServer is an embedded nats-server with JetStream, a stream on
// sink.>, and the given TLS and auth options; it returns the client URL and
// a JetStream context of an admin connection (made with admin).
func secureServer(t *testing.T, set func(*server.Options), admin ...nats.Option) (string, jetstream.JetStream) {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	set(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL(), admin...)
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: sinkStream, Subjects: []string{"sink.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return srv.ClientURL(), js
}

// streamSeqs reads the records stored in the stream.
func streamSeqs(t *testing.T, js jetstream.JetStream) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, sinkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for n := info.State.FirstSeq; n > 0 && n <= info.State.LastSeq; n++ {
		m, err := st.GetMsg(ctx, n)
		if err != nil {
			t.Fatalf("get message %d: %v", n, err)
		}
		seqs = append(seqs, payloadSeqs(t, m.Data)...)
	}
	return seqs
}

func tlsServer(t *testing.T) (crt, key string, set func(*server.Options)) {
	crt, key = inputsink.SelfSigned(t)
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return crt, key, func(o *server.Options) {
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		o.TLS = true
	}
}

func rootCAs(t *testing.T, crt string) *tls.Config {
	pem, err := os.ReadFile(crt)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// With tls on and the server's CA in tls.ca_file the output connects over
// TLS and the stream stores the chunk; with another CA the flush is a
// RETRY that names the certificate problem, and nothing is stored.
func TestTLS(t *testing.T) {
	crt, _, set := tlsServer(t)
	url, js := secureServer(t, set, nats.Secure(rootCAs(t, crt)))
	tlsURL := strings.Replace(url, "nats://", "tls://", 1)

	out := openOut(t, "url "+url, "subject sink.$TAG", "timeout 2s", "tls on", "tls.ca_file "+crt)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 10)); err != nil {
		t.Fatalf("flush over TLS: %v", err)
	}
	if err := outputtest.Diff(seqs(0, 10), streamSeqs(t, js)); err != nil {
		t.Fatal(err)
	}
	if !out.nc.TLSRequired() {
		t.Error("the connection is not TLS")
	}

	otherCA, _ := inputsink.SelfSigned(t)
	bad := openOut(t, "url "+tlsURL, "subject sink.$TAG", "timeout 1s", "tls on", "tls.ca_file "+otherCA)
	retryUntilReason(t, bad, "certificate signed by unknown authority")
	if err := outputtest.Diff(seqs(0, 10), streamSeqs(t, js)); err != nil {
		t.Fatal(err)
	}
}

// user/password and token authenticate the output; wrong credentials are a
// RETRY that says the server refused them (authorization is fixed by an
// operator, not by the data), and nothing is stored.
func TestCredentials(t *testing.T) {
	for _, c := range []struct {
		name      string
		set       func(*server.Options)
		admin     nats.Option
		good, bad []string
	}{
		{"user_password", func(o *server.Options) { o.Username, o.Password = "floe", "s3cret" }, nats.UserInfo("floe", "s3cret"),
			[]string{"user floe", "password s3cret"}, []string{"user floe", "password wrong"}},
		{"token", func(o *server.Options) { o.Authorization = "t0ken" }, nats.Token("t0ken"),
			[]string{"token t0ken"}, []string{"token nope"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			url, js := secureServer(t, c.set, c.admin)
			base := []string{"url " + url, "subject sink.$TAG", "timeout 1s"}
			out := openOut(t, append(base, c.good...)...)
			if err := out.Flush(context.Background(), outputtest.Chunk(0, 10)); err != nil {
				t.Fatalf("flush with the right credentials: %v", err)
			}
			bad := openOut(t, append(base, c.bad...)...)
			retryUntilReason(t, bad, "authorization violation")
			none := openOut(t, base...)
			if err := none.Flush(context.Background(), outputtest.Chunk(15, 5)); err == nil {
				t.Fatal("flush without credentials answered OK")
			}
			if err := outputtest.Diff(seqs(0, 10), streamSeqs(t, js)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// retryUntilReason flushes as the mesh retries until the RETRY names why
// the server refused the connection (the refusal is learnt asynchronously,
// so the first answers may only say that there is no connection).
func retryUntilReason(t *testing.T, out *Output, reason string) {
	t.Helper()
	var err error
	for range 30 {
		err = out.Flush(context.Background(), outputtest.Chunk(10, 5))
		if err == nil || plugin.IsPermanent(err) {
			t.Fatalf("flush to a server that refuses the connection answered %v, want RETRY", err)
		}
		if strings.Contains(strings.ToLower(err.Error()), reason) {
			t.Logf("RETRY: %v", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the RETRY does not say %q: %v", reason, err)
}
