package netin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/plugin"
)

// TLSKeys are Fluent Bit's generic TLS keys of an input (flb_input.c).
func TLSKeys() []plugin.Key {
	return []plugin.Key{
		{Name: "tls", Type: plugin.Bool, Default: "off", Desc: "serve TLS"},
		{Name: "tls.verify", Type: plugin.Bool, Default: "on", Desc: "accepted; a server verifies clients only with tls.verify_client_cert"},
		{Name: "tls.verify_client_cert", Type: plugin.Bool, Default: "off", Desc: "require a client certificate signed by tls.ca_file or tls.ca_path"},
		{Name: "tls.verify_hostname", Type: plugin.Bool, Default: "off", Desc: "accepted (client-side option)"},
		{Name: "tls.debug", Type: plugin.Int, Default: "1", Desc: "accepted"},
		{Name: "tls.vhost", Desc: "accepted (client-side option)"},
		{Name: "tls.ca_path", Desc: "directory of CA certificates for client verification"},
		{Name: "tls.ca_file", Desc: "CA certificates (PEM) for client verification"},
		{Name: "tls.crt_file", Desc: "server certificate chain (PEM)"},
		{Name: "tls.key_file", Desc: "server private key (PEM)"},
		{Name: "tls.key_passwd", Desc: "password of an encrypted (legacy PEM) private key"},
		{Name: "tls.min_version", Enum: []string{"TLSv1.1", "TLSv1.2", "TLSv1.3"}, Desc: "lowest protocol version accepted"},
		{Name: "tls.max_version", Enum: []string{"TLSv1.1", "TLSv1.2", "TLSv1.3"}, Desc: "highest protocol version accepted"},
		{Name: "tls.ciphers", Desc: "colon-separated cipher suites (IANA names) for TLS 1.2 and below"},
	}
}

// handshakeTimeout bounds a client's TLS handshake, so a silent client
// does not hold a connection slot forever.
const handshakeTimeout = 10 * time.Second

type TLSConfig struct{ cfg *tls.Config }

func (t *TLSConfig) handshake(ctx context.Context, c net.Conn) (net.Conn, error) {
	tc := tls.Server(c, t.cfg)
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// Config returns the standard library form (for net/http).
func (t *TLSConfig) Config() *tls.Config {
	if t == nil {
		return nil
	}
	return t.cfg
}

// TLS builds the server TLS configuration of an input from its tls.* keys,
// or nil when tls is off. Errors name the key at fault.
func TLS(p *plugin.Props) (*TLSConfig, error) {
	if !p.Bool("tls") {
		return nil, nil
	}
	crt, key := p.String("tls.crt_file"), p.String("tls.key_file")
	if crt == "" {
		return nil, p.Errorf("tls", "tls is on but tls.crt_file is not set")
	}
	if key == "" {
		return nil, p.Errorf("tls", "tls is on but tls.key_file is not set")
	}
	certPEM, err := os.ReadFile(crt)
	if err != nil {
		return nil, p.Errorf("tls.crt_file", "%v", err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		return nil, p.Errorf("tls.key_file", "%v", err)
	}
	if pw := p.String("tls.key_passwd"); pw != "" {
		if keyPEM, err = decryptKey(keyPEM, pw); err != nil {
			return nil, p.Errorf("tls.key_passwd", "%s: %v", key, err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, p.Errorf("tls.crt_file", "%s with %s: %v", crt, key, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if v := p.String("tls.min_version"); v != "" {
		cfg.MinVersion = tlsVersion(v)
	}
	if v := p.String("tls.max_version"); v != "" {
		cfg.MaxVersion = tlsVersion(v)
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < cfg.MinVersion {
		return nil, p.Errorf("tls.max_version", "tls.max_version %s is below tls.min_version", p.String("tls.max_version"))
	}
	if s := p.String("tls.ciphers"); s != "" {
		ids, err := cipherSuites(s)
		if err != nil {
			return nil, p.Errorf("tls.ciphers", "%v", err)
		}
		cfg.CipherSuites = ids
	}
	if p.Bool("tls.verify_client_cert") {
		pool := x509.NewCertPool()
		n := 0
		if f := p.String("tls.ca_file"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, p.Errorf("tls.ca_file", "%v", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, p.Errorf("tls.ca_file", "%s holds no PEM certificate", f)
			}
			n++
		}
		if d := p.String("tls.ca_path"); d != "" {
			files, err := filepath.Glob(filepath.Join(d, "*"))
			if err != nil {
				return nil, p.Errorf("tls.ca_path", "%v", err)
			}
			for _, f := range files {
				if b, err := os.ReadFile(f); err == nil && pool.AppendCertsFromPEM(b) {
					n++
				}
			}
		}
		if n == 0 {
			return nil, p.Errorf("tls.verify_client_cert", "client verification needs tls.ca_file or tls.ca_path")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &TLSConfig{cfg: cfg}, nil
}

func tlsVersion(s string) uint16 {
	switch strings.ToUpper(s) {
	case "TLSV1.1":
		return tls.VersionTLS11
	case "TLSV1.3":
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func cipherSuites(s string) ([]uint16, error) {
	known := map[string]uint16{}
	for _, c := range tls.CipherSuites() {
		known[c.Name] = c.ID
	}
	var ids []uint16
	for _, name := range strings.Split(s, ":") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		id, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("unknown or insecure cipher suite %q (IANA names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// decryptKey decrypts a legacy encrypted PEM private key ("Proc-Type:
// 4,ENCRYPTED", what OpenSSL's -des3/-aes256 write and Fluent Bit reads
// with tls.key_passwd). An unencrypted key is returned as is.
func decryptKey(keyPEM []byte, pw string) ([]byte, error) {
	block, rest := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	//lint:ignore SA1019 legacy PEM encryption is what tls.key_passwd users have; there is no other stdlib reader
	if !x509.IsEncryptedPEMBlock(block) {
		return keyPEM, nil
	}
	//lint:ignore SA1019 see above
	der, err := x509.DecryptPEMBlock(block, []byte(pw))
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
	return append(out, rest...), nil
}
