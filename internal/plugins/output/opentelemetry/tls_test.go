package opentelemetry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// selfSigned writes a CA-signed-by-itself certificate for 127.0.0.1 and
// returns the server config and the CA file.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "otlp.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, ca
}

// TestTLS: tls on with tls.ca_file and tls.verify_hostname reaches an OTLP
// receiver over HTTPS (HTTP/2 with http2 on) and over gRPC with TLS; a
// receiver whose certificate the CA did not sign is not trusted.
func TestTLS(t *testing.T) {
	cfg, ca := selfSigned(t)
	for _, tr := range []struct {
		name  string
		grpc  bool
		extra []string
		proto string
	}{
		{"https", false, nil, "HTTP/1.1"},
		{"https_http2", false, []string{"http2 on"}, "HTTP/2.0"},
		{"grpc_tls", true, nil, ""},
	} {
		t.Run(tr.name, func(t *testing.T) {
			sink := newSink(t, tr.grpc, func(s *otlpSink) { s.tls = cfg })
			o, _ := newOut(t, sink.config(append(tr.extra, "tls on", "tls.ca_file "+ca, "tls.verify_hostname on")...)...)
			if err := o.Flush(context.Background(), plugintest.Chunk(plugintest.KV("seq", int64(1)))); err != nil {
				t.Fatalf("flush over TLS: %v", err)
			}
			if got := sink.seqs(t); len(got) != 1 {
				t.Fatalf("receiver holds %v", got)
			}
			if tr.proto != "" {
				if p := sink.header(0).Get("X-Test-Proto"); p != tr.proto {
					t.Errorf("protocol %s, want %s", p, tr.proto)
				}
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		other, _ := selfSigned(t)
		for _, useGRPC := range []bool{false, true} {
			sink := newSink(t, useGRPC, func(s *otlpSink) { s.tls = other })
			o, _ := newOut(t, sink.config("tls on", "tls.ca_file "+ca, "tls.verify_hostname on", "http.response_timeout 2s")...)
			if err := o.Flush(context.Background(), plugintest.Chunk(plugintest.KV("seq", int64(1)))); err == nil {
				t.Errorf("grpc=%v: flush to an untrusted receiver answered OK", useGRPC)
			}
			if n := len(sink.seqs(t)); n != 0 {
				t.Errorf("grpc=%v: untrusted receiver got %d records", useGRPC, n)
			}
		}
	})
}

// TestH2C: http2 force speaks cleartext HTTP/2 to the receiver.
func TestH2C(t *testing.T) {
	sink := newSink(t, false, func(s *otlpSink) { s.h2c = true })
	o, _ := newOut(t, sink.config("http2 force")...)
	if err := o.Flush(context.Background(), plugintest.Chunk(plugintest.KV("seq", int64(1)))); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if p := sink.header(0).Get("X-Test-Proto"); p != "HTTP/2.0" {
		t.Errorf("protocol %s, want HTTP/2.0 (h2c)", p)
	}
}
