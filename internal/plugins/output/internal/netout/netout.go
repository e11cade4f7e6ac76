// Package netout holds what the stream outputs (forward, tcp, syslog) share:
// Fluent Bit's tls.* client keys and a dialer honouring net.connect_timeout.
//
// TLS follows Fluent Bit's defaults: with tls on, tls.verify (on) checks the
// certificate chain against tls.ca_file or the system roots; the host name is
// checked only with tls.verify_hostname on; tls.vhost sets the SNI name.
// tls.crt_file/tls.key_file present a client certificate. tls.key_passwd
// (encrypted keys) is refused.
package netout

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/plugin"
)

// Keys are the tls.* and net.* keys the stream outputs take.
func Keys() []plugin.Key {
	return []plugin.Key{
		{Name: "tls", Type: plugin.Bool, Default: "off", Desc: "connect with TLS"},
		{Name: "tls.verify", Type: plugin.Bool, Default: "on", Desc: "verify the server certificate chain"},
		{Name: "tls.verify_hostname", Type: plugin.Bool, Default: "off", Desc: "also check the server's host name"},
		{Name: "tls.vhost", Desc: "TLS server name (SNI) and name checked"},
		{Name: "tls.ca_file", Desc: "CA certificates (PEM) to verify the server with"},
		{Name: "tls.crt_file", Desc: "client certificate (PEM)"},
		{Name: "tls.key_file", Desc: "client private key (PEM)"},
		{Name: "tls.key_passwd", Desc: "not supported (encrypted keys)"},
		{Name: "tls.debug", Type: plugin.Int, Desc: "accepted, no effect"},
		{Name: "tls.min_version", Enum: []string{"TLSv1.2", "TLSv1.3"}},
		{Name: "net.connect_timeout", Type: plugin.Seconds, Default: "10s", Desc: "TCP connect and TLS handshake timeout"},
		{Name: "net.io_timeout", Type: plugin.Seconds, Default: "60s", Desc: "longest wait for a write or an answer"},
	}
}

// Dialer connects to one address, with TLS when configured.
type Dialer struct {
	TLS            *tls.Config // nil: plain TCP
	ConnectTimeout time.Duration
	IOTimeout      time.Duration
}

// New reads the tls.* and net.* keys; host is the default TLS server name.
func New(p *plugin.Props, host string) (*Dialer, error) {
	d := &Dialer{
		ConnectTimeout: seconds(p.Seconds("net.connect_timeout")),
		IOTimeout:      seconds(p.Seconds("net.io_timeout")),
	}
	if d.ConnectTimeout <= 0 {
		d.ConnectTimeout = 10 * time.Second
	}
	if d.IOTimeout <= 0 {
		d.IOTimeout = 60 * time.Second
	}
	if !p.Bool("tls") {
		return d, nil
	}
	if p.String("tls.key_passwd") != "" {
		return nil, p.Errorf("tls.key_passwd", "encrypted private keys are not supported; decrypt the key file")
	}
	tc, err := ClientTLS(ClientTLSOptions{
		Verify:         p.Bool("tls.verify"),
		VerifyHostname: p.Bool("tls.verify_hostname"),
		ServerName:     firstNonEmpty(p.String("tls.vhost"), host),
		CAFile:         p.String("tls.ca_file"),
		CertFile:       p.String("tls.crt_file"),
		KeyFile:        p.String("tls.key_file"),
		MinTLS13:       p.String("tls.min_version") == "TLSv1.3",
	})
	if err != nil {
		return nil, p.Errorf("tls", "%v", err)
	}
	d.TLS = tc
	return d, nil
}

// ClientTLSOptions are the TLS settings of one client (an output or an
// upstream node).
type ClientTLSOptions struct {
	Verify, VerifyHostname bool
	ServerName             string
	CAFile                 string
	CertFile, KeyFile      string
	MinTLS13               bool
}

// ClientTLS builds a client TLS configuration as Fluent Bit applies it.
func ClientTLS(o ClientTLSOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.MinTLS13 {
		tc.MinVersion = tls.VersionTLS13
	}
	var roots *x509.CertPool
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate found", o.CAFile)
		}
		tc.RootCAs = roots
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("tls.crt_file and tls.key_file go together")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.crt_file/tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	switch {
	case !o.Verify:
		tc.InsecureSkipVerify = true
	case !o.VerifyHostname:
		// Fluent Bit checks the chain but not the name unless asked: verify
		// the chain ourselves and skip Go's name check.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return tc, nil
}

// Dial connects to addr (host:port) over network ("tcp" or "udp"; TLS only
// over tcp), bounded by ctx and net.connect_timeout.
func (d *Dialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.ConnectTimeout)
	defer cancel()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if d.TLS == nil || network != "tcp" {
		return c, nil
	}
	tc := tls.Client(c, d.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// HostPort checks host and port keys and joins them.
func HostPort(p *plugin.Props, hostKey, portKey string) (string, string, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(p.String(hostKey)), "["), "]")
	if host == "" {
		return "", "", p.Errorf(hostKey, "%s is empty", hostKey)
	}
	port := p.Int(portKey)
	if port < 1 || port > 65535 {
		return "", "", p.Errorf(portKey, "%s %d is out of range (1-65535)", portKey, port)
	}
	return host, net.JoinHostPort(host, fmt.Sprint(port)), nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
