package httpout

// TLS and network settings of the connection, from Fluent Bit's generic
// tls.* and net.* output keys.
//
// tls.*: verify (on), verify_hostname (off), vhost, ca_file, ca_path (every
// certificate file in the directory), crt_file and key_file (client
// certificate), min_version and max_version (TLSv1.0 ... TLSv1.3; Go's
// default minimum is TLS 1.2). debug, ciphers and the Windows certificate
// store keys are accepted and ignored with a warning where they matter;
// key_passwd is refused (encrypted keys are not supported).
//
// net.*: connect_timeout (10s, TCP connect and, separately, the TLS
// handshake), keepalive (on), keepalive_idle_timeout (30s), io_timeout (0s,
// read idle timeout when http.read_idle_timeout is 0), source_address,
// tcp_keepalive (off) with tcp_keepalive_time/_interval/_probes, and
// proxy_env_ignore (off). The DNS keys, keepalive_max_recycle,
// max_worker_connections (a Floe worker holds one connection at a time) and
// connect_timeout_log_error are accepted and have no effect.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/plugin"
)

// netSettings are the net.* keys Floe applies.
type netSettings struct {
	connectTimeout time.Duration
	ioTimeout      time.Duration
	keepalive      bool
	keepaliveIdle  time.Duration
	source         *net.TCPAddr
	tcpKeepalive   net.KeepAliveConfig
	proxyEnvIgnore bool
	workers        int
}

// netKeys are the net.* keys Fluent Bit knows; those not applied are accepted.
var netKeys = map[string]bool{
	"net.connect_timeout": true, "net.connect_timeout_log_error": true, "net.io_timeout": true,
	"net.keepalive": true, "net.keepalive_idle_timeout": true, "net.keepalive_max_recycle": true,
	"net.dns.mode": true, "net.dns.prefer_ipv4": true, "net.dns.prefer_ipv6": true, "net.dns.resolver": true,
	"net.max_worker_connections": true, "net.proxy_env_ignore": true, "net.source_address": true,
	"net.tcp_keepalive": true, "net.tcp_keepalive_time": true, "net.tcp_keepalive_interval": true,
	"net.tcp_keepalive_probes": true, "net.backlog": true,
}

// tlsKeys are the tls.* keys Fluent Bit knows.
var tlsKeys = map[string]bool{
	"tls.verify": true, "tls.verify_hostname": true, "tls.debug": true, "tls.ca_file": true,
	"tls.ca_path": true, "tls.crt_file": true, "tls.key_file": true, "tls.key_passwd": true,
	"tls.vhost": true, "tls.min_version": true, "tls.max_version": true, "tls.ciphers": true,
	"tls.windows.certstore_name": true, "tls.windows.use_enterprise_store": true,
}

// unknownKey returns the first key with the prefix that known lacks.
func unknownKey(p *plugin.Props, prefix string, known map[string]bool) string {
	for _, pr := range p.Section.Props {
		k := strings.ToLower(pr.Key)
		if strings.HasPrefix(k, prefix) && !known[k] {
			return pr.Key
		}
	}
	return ""
}

func parseNet(p *plugin.Props) (netSettings, error) {
	var n netSettings
	if k := unknownKey(p, "net.", netKeys); k != "" {
		return n, p.Errorf(k, "unknown network key %q", k)
	}
	var err error
	if n.connectTimeout, err = secondsKey(p, "net.connect_timeout", 10*time.Second); err != nil {
		return n, err
	}
	if n.ioTimeout, err = secondsKey(p, "net.io_timeout", 0); err != nil {
		return n, err
	}
	if n.keepalive, err = boolKey(p, "net.keepalive", true); err != nil {
		return n, err
	}
	if n.keepaliveIdle, err = secondsKey(p, "net.keepalive_idle_timeout", 30*time.Second); err != nil {
		return n, err
	}
	if n.proxyEnvIgnore, err = boolKey(p, "net.proxy_env_ignore", false); err != nil {
		return n, err
	}
	if p.Has("net.source_address") {
		v := strings.TrimSpace(p.String("net.source_address"))
		if _, _, serr := net.SplitHostPort(v); serr != nil {
			v = net.JoinHostPort(strings.Trim(v, "[]"), "0")
		}
		a, rerr := net.ResolveTCPAddr("tcp", v)
		if rerr != nil {
			return n, p.Errorf("net.source_address", "invalid source address %q: %v", p.String("net.source_address"), rerr)
		}
		n.source = a
	}
	tcpKA, err := boolKey(p, "net.tcp_keepalive", false)
	if err != nil {
		return n, err
	}
	n.tcpKeepalive.Enable = tcpKA
	// Fluent Bit's -1 leaves the system default, as a negative value does in Go.
	for _, k := range []struct {
		key string
		dst *time.Duration
	}{{"net.tcp_keepalive_time", &n.tcpKeepalive.Idle}, {"net.tcp_keepalive_interval", &n.tcpKeepalive.Interval}} {
		v, ierr := intKey(p, k.key, -1)
		if ierr != nil {
			return n, ierr
		}
		*k.dst = time.Duration(v) * time.Second
		if v < 0 {
			*k.dst = -1
		}
	}
	if n.tcpKeepalive.Count, err = intKey(p, "net.tcp_keepalive_probes", -1); err != nil {
		return n, err
	}
	if n.tcpKeepalive.Count < 0 {
		n.tcpKeepalive.Count = -1
	}
	n.workers = max(p.Int("workers"), 1)
	return n, nil
}

func parseTLS(p *plugin.Props, host string, log *slog.Logger) (*tls.Config, error) {
	for _, k := range []string{"tls.ciphers", "tls.windows.certstore_name", "tls.windows.use_enterprise_store"} {
		if p.Has(k) {
			log.Warn("TLS key not supported by Floe, ignored", "key", k)
		}
	}
	if p.Has("tls.key_passwd") {
		return nil, p.Errorf("tls.key_passwd", "encrypted private keys are not supported by Floe; decrypt tls.key_file (e.g. openssl pkey -in key.pem -out plain.pem)")
	}
	verify, err := boolKey(p, "tls.verify", true)
	if err != nil {
		return nil, err
	}
	verifyHost, err := boolKey(p, "tls.verify_hostname", false)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{ServerName: host}
	if v := strings.TrimSpace(p.String("tls.vhost")); v != "" {
		cfg.ServerName = v
	}

	var roots *x509.CertPool
	if p.Has("tls.ca_file") || p.Has("tls.ca_path") {
		roots = x509.NewCertPool()
		if f := strings.TrimSpace(p.String("tls.ca_file")); f != "" {
			if err := addPEMFile(roots, f); err != nil {
				return nil, p.Errorf("tls.ca_file", "%v", err)
			}
		}
		if d := strings.TrimSpace(p.String("tls.ca_path")); d != "" {
			if err := addPEMDir(roots, d); err != nil {
				return nil, p.Errorf("tls.ca_path", "%v", err)
			}
		}
	}

	crt, key := strings.TrimSpace(p.String("tls.crt_file")), strings.TrimSpace(p.String("tls.key_file"))
	switch {
	case crt != "" && key != "":
		pair, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			return nil, p.Errorf("tls.crt_file", "cannot load client certificate %s with key %s: %v", crt, key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case crt != "":
		return nil, p.Errorf("tls.crt_file", "tls.crt_file needs tls.key_file")
	case key != "":
		return nil, p.Errorf("tls.key_file", "tls.key_file needs tls.crt_file")
	}

	for _, k := range []struct {
		key string
		dst *uint16
	}{{"tls.min_version", &cfg.MinVersion}, {"tls.max_version", &cfg.MaxVersion}} {
		if !p.Has(k.key) {
			continue
		}
		v, ok := tlsVersion(p.String(k.key))
		if !ok {
			return nil, p.Errorf(k.key, "unknown TLS version %q (TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)", p.String(k.key))
		}
		*k.dst = v
	}
	if cfg.MinVersion != 0 && cfg.MaxVersion != 0 && cfg.MinVersion > cfg.MaxVersion {
		return nil, p.Errorf("tls.min_version", "tls.min_version is above tls.max_version")
	}

	switch {
	case !verify:
		cfg.InsecureSkipVerify = true
	case verifyHost:
		cfg.RootCAs = roots
	default:
		// Fluent Bit checks the chain only unless tls.verify_hostname is on.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	}
	return cfg, nil
}

// verifyChain checks the peer's certificate chain without its host name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

func tlsVersion(s string) (uint16, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tlsv1", "tlsv1.0":
		return tls.VersionTLS10, true
	case "tlsv1.1":
		return tls.VersionTLS11, true
	case "tlsv1.2":
		return tls.VersionTLS12, true
	case "tlsv1.3":
		return tls.VersionTLS13, true
	}
	return 0, false
}

func addPEMFile(pool *x509.CertPool, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cannot read CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("no PEM certificate in %s", file)
	}
	return nil
}

// addPEMDir adds every certificate of the regular files in dir.
func addPEMDir(pool *x509.CertPool, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot read CA directory: %w", err)
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if pool.AppendCertsFromPEM(b) {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate in %s", dir)
	}
	return nil
}

// newTransport builds the instance's connection pool.
func newTransport(n netSettings, tc *tls.Config, idle time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: n.connectTimeout, LocalAddr: n.source, KeepAlive: -1}
	if n.tcpKeepalive.Enable {
		d.KeepAliveConfig = n.tcpKeepalive
	}
	dial := d.DialContext
	if idle > 0 {
		dial = idleDialer(d, idle)
	}
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dial,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: n.connectTimeout,
		DisableKeepAlives:   !n.keepalive,
		IdleConnTimeout:     n.keepaliveIdle,
		MaxIdleConnsPerHost: max(n.workers, 2),
		// Fluent Bit does not ask for compressed responses.
		DisableCompression: true,
	}
	if n.proxyEnvIgnore {
		t.Proxy = nil
	}
	return t
}

// ---- read idle timeout ----

// idleConn bounds the time between two reads while a response is awaited
// (armed), as http.read_idle_timeout does; an idle pooled connection is not
// affected.
type idleConn struct {
	net.Conn
	idle  time.Duration
	mu    sync.Mutex // orders arm/disarm with the deadline a Read sets
	armed bool
}

func idleDialer(d *net.Dialer, idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: idle}, nil
	}
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.armed {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

func (c *idleConn) arm() {
	c.mu.Lock()
	c.armed = true
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	c.mu.Unlock()
}

func (c *idleConn) disarm() {
	c.mu.Lock()
	c.armed = false
	_ = c.Conn.SetReadDeadline(time.Time{})
	c.mu.Unlock()
}

// exchange follows the connection of one request to arm its idle timeout
// once the request is written.
type exchange struct{ conn atomic.Pointer[idleConn] }

func (e *exchange) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			c := info.Conn
			if tc, ok := c.(*tls.Conn); ok {
				c = tc.NetConn()
			}
			ic, _ := c.(*idleConn)
			e.conn.Store(ic)
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if c := e.conn.Load(); c != nil {
				c.arm()
			}
		},
	}
}

func (e *exchange) done() {
	if c := e.conn.Load(); c != nil {
		c.disarm()
	}
}
