package forward

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	forwardin "github.com/floe-io/floe/internal/plugins/input/forward"
)

// selfSigned writes a certificate for 127.0.0.1 (also its own CA) and key.
func selfSigned(t *testing.T) (crt, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt, key = filepath.Join(dir, "crt.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, key
}

// Over TLS to Floe's forward input: the certificate is verified against
// tls.ca_file, and a client that does not trust it gets no OK.
func TestRoundTripTLS(t *testing.T) {
	crt, key := selfSigned(t)
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
