package netin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

func spec() *plugin.Spec {
	return &plugin.Spec{Kind: plugin.KindInput, Name: "t", Keys: append(append(ListenKeys(1), TLSKeys()...), TextKeys()...)}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
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
	kd, _ := x509.MarshalECPrivateKey(k)
	dir := t.TempDir()
	crt, key = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return crt, key, pool
}

// A TLS server reads what a TLS client sends; a plain client fails the
// handshake, is counted as refused, and the server goes on.
func TestServeTLS(t *testing.T) {
	crt, key, pool := selfSigned(t)
	cfg, err := TLS(plugintest.Props(spec(), "tls on", "tls.crt_file "+crt, "tls.key_file "+key, "tls.min_version TLSv1.3"))
	if err != nil {
		t.Fatal(err)
	}
	m := &telemetry.NetInputMetrics{}
	srv := Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m, TLS: cfg, Scheme: "tcp"}
	ln, err := ListenStream("tcp", "127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, ln, func(_ context.Context, c *Conn) {
			b, _ := io.ReadAll(c)
			got <- c.Source + " " + string(b)
		})
	}()
	plain, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	plain.Write([]byte("not a handshake at all\n"))
	plain.Close()
	tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if tc.ConnectionState().Version != tls.VersionTLS13 {
		t.Errorf("version %x", tc.ConnectionState().Version)
	}
	tc.Write([]byte("secret"))
	src := "tcp://" + tc.LocalAddr().String()
	tc.Close()
	select {
	case s := <-got:
		if s != src+" secret" {
			t.Errorf("read %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing read over TLS")
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Refused.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.Refused.Load() != 1 || m.ConnectionsTotal.Load() != 2 {
		t.Errorf("refused %d connections %d, want 1 and 2", m.Refused.Load(), m.ConnectionsTotal.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m.Connections.Load() != 0 {
		t.Errorf("%d connections still counted open", m.Connections.Load())
	}
}

func TestTLSConfigErrors(t *testing.T) {
	crt, key, _ := selfSigned(t)
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"tls on"}, "key tls: tls is on but tls.crt_file is not set"},
		{[]string{"tls on", "tls.crt_file /nonexistent", "tls.key_file " + key}, "key tls.crt_file"},
		{[]string{"tls on", "tls.crt_file " + key, "tls.key_file " + key}, "key tls.crt_file"},
		{[]string{"tls on", "tls.crt_file " + crt, "tls.key_file " + key, "tls.ciphers RC4-MD5"}, "unknown or insecure cipher suite"},
		{[]string{"tls on", "tls.crt_file " + crt, "tls.key_file " + key, "tls.verify_client_cert on"}, "needs tls.ca_file or tls.ca_path"},
		{[]string{"tls on", "tls.crt_file " + crt, "tls.key_file " + key, "tls.min_version TLSv1.3", "tls.max_version TLSv1.2"}, "below tls.min_version"},
	} {
		if _, err := TLS(plugintest.Props(spec(), c.lines...)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.lines, err, c.want)
		}
	}
	if cfg, err := TLS(plugintest.Props(spec())); cfg != nil || err != nil {
		t.Errorf("tls off: %v %v", cfg, err)
	}
}

func TestAppendField(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 70000} {
		m := event.Map{}
		for i := range n {
			m = append(m, event.KV{Key: "k" + string(rune('a'+i%26)) + string(rune('0'+i/26%10)) + strings.Repeat("x", i/260), Value: int64(i)})
		}
		b := AppendField(nil, m.AppendMsgpack(nil), "src", "tcp://1.2.3.4:5")
		v, end, err := event.Value(b, 0)
		if err != nil || end != len(b) {
			t.Fatalf("%d keys: %v (end %d of %d)", n, err, end, len(b))
		}
		got := v.(event.Map)
		if len(got) != n+1 || got[n].Key != "src" || got[n].Value != "tcp://1.2.3.4:5" {
			t.Fatalf("%d keys: last %v", n, got[len(got)-1])
		}
	}
	if b := AppendField(nil, []byte{0x91, 0x01}, "k", "v"); string(b) != "\x91\x01" {
		t.Errorf("non-map changed: %x", b)
	}
}

func TestUnescapeAndKBSize(t *testing.T) {
	for in, want := range map[string]string{`\n`: "\n", `a\tb`: "a\tb", `\r\n`: "\r\n", `;`: ";", `\\`: `\`, `x\`: `x\`} {
		if got, err := Unescape(in); err != nil || string(got) != want {
			t.Errorf("Unescape(%q) = %q %v", in, got, err)
		}
	}
	if _, err := Unescape(`\q`); err == nil {
		t.Error(`\q accepted`)
	}
	s := &plugin.Spec{Kind: plugin.KindInput, Name: "t", Keys: []plugin.Key{{Name: "buffer_size"}}}
	for in, want := range map[string]int{"": 7, "32": 32768, "64k": 65536, "2M": 2 << 20} {
		lines := []string{}
		if in != "" {
			lines = append(lines, "buffer_size "+in)
		}
		if got, err := KBSize(plugintest.Props(s, lines...), "buffer_size", 7); err != nil || got != want {
			t.Errorf("KBSize(%q) = %d %v, want %d", in, got, err, want)
		}
	}
	if _, err := KBSize(plugintest.Props(s, "buffer_size -1"), "buffer_size", 7); err == nil {
		t.Error("-1 accepted")
	}
}

// A socket file left by a stopped process is replaced; a live socket or a
// regular file at the path is refused.
func TestUnixSocketPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln, err := ListenStream("unix", path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenStream("unix", path, 0o600); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := ListenStream("unix", path, 0o640)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep me"), 0o644)
	if _, err := ListenPacket("unixgram", file, 0o600); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("regular file was touched")
	}
}

func TestQueueBound(t *testing.T) {
	q := NewQueue(100)
	var b Batch
	b.Add(event.Time{}, event.Map{{Key: "k", Value: strings.Repeat("v", 60)}}.AppendMsgpack(nil), "", "")
	if !q.Put(&b) {
		t.Fatal("first batch refused")
	}
	if q.Put(&b) {
		t.Fatal("queue over its limit accepted a batch")
	}
	if got := q.take(); got.Records != 1 {
		t.Fatalf("took %d records", got.Records)
	}
	if !q.Put(&b) {
		t.Fatal("emptied queue refused a batch")
	}
}
