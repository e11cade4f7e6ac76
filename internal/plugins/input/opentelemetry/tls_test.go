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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"google.golang.org/grpc/credentials"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (crt, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt, key = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return crt, key, pool
}

// With tls on, the OpenTelemetry SDK's exporters reach the input over
// HTTPS (port), gRPC with TLS (grpc_port) and gRPC with TLS on the HTTP
// port (ALPN h2), and the records arrive as the mapping says; a cleartext
// client is not served.
func TestTLS(t *testing.T) {
	crt, key, pool := selfSigned(t)
	tlsOn := []string{"tls on", "tls.crt_file " + crt, "tls.key_file " + key}
	clientTLS := &tls.Config{RootCAs: pool}

	t.Run("http", func(t *testing.T) {
		w := &signalWriter{}
		_, addr, _, _ := start(t, w, tlsOn...)
		exp, err := otlploghttp.New(context.Background(), otlploghttp.WithEndpoint(addr), otlploghttp.WithTLSClientConfig(clientTLS))
		if err != nil {
			t.Fatal(err)
		}
		emitSDKLogs(t, exp)
		checkSDKLogs(t, w, "v1_logs")

		resp, err := http.Post("http://"+addr+"/v1/logs", ctProto, strings.NewReader(""))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("cleartext request to the TLS port answered %d", resp.StatusCode)
			}
		}
		if w.Count() != 2 {
			t.Errorf("%d records after the cleartext request, want the SDK's 2", w.Count())
		}
	})
	t.Run("grpc", func(t *testing.T) {
		w := &signalWriter{}
		_, _, gaddr, _ := start(t, w, tlsOn...)
		exp, err := otlploggrpc.New(context.Background(), otlploggrpc.WithEndpoint(gaddr),
			otlploggrpc.WithTLSCredentials(credentials.NewTLS(clientTLS)))
		if err != nil {
			t.Fatal(err)
		}
		emitSDKLogs(t, exp)
		checkSDKLogs(t, w, "opentelemetry.proto.collector.logs.v1.LogsService_Export")
	})
	t.Run("grpc on the http port", func(t *testing.T) {
		w := &signalWriter{}
		_, addr, _, _ := start(t, w, append(tlsOn, "grpc off", "tag_from_uri off")...)
		exp, err := otlploggrpc.New(context.Background(), otlploggrpc.WithEndpoint(addr),
			otlploggrpc.WithTLSCredentials(credentials.NewTLS(clientTLS)))
		if err != nil {
			t.Fatal(err)
		}
		emitSDKLogs(t, exp)
		checkSDKLogs(t, w, "")
	})
}

func TestTLSConfigErrors(t *testing.T) {
	_, err := Spec().NewInput(context.Background(), plugin.Settings{Name: "opentelemetry.0"},
		plugintest.Props(Spec(), "tls on", "tls.key_file /nonexistent"))
	if err == nil || !strings.Contains(err.Error(), "tls.crt_file is not set") {
		t.Fatalf("tls on without a certificate: %v", err)
	}
}
