package kubernetes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// errTooLarge is a response larger than buffer_size: Fluent Bit discards it
// and the pod goes without metadata.
var errTooLarge = errors.New("response larger than buffer_size")

// apiClient talks to the API server or the kubelet: GET a path, with the
// service account token, within buffer_size.
type apiClient struct {
	base    *url.URL
	http    *http.Client
	token   *tokenSource
	maxBody int64 // 0: no limit
}

// get fetches path and returns the body of a 200 answer.
func (c *apiClient) get(ctx context.Context, path string) ([]byte, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u.Redacted(), err)
	}
	req.Header.Set("User-Agent", "Floe")
	req.Header.Set("Accept", "application/json")
	if tok := c.token.get(ctx); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	r := io.Reader(resp.Body)
	if c.maxBody > 0 {
		r = io.LimitReader(resp.Body, c.maxBody+1)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP status %d: %s", u.Redacted(), resp.StatusCode, firstLine(body))
	}
	if c.maxBody > 0 && int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("GET %s: %w (%d bytes)", u.Redacted(), errTooLarge, c.maxBody)
	}
	return body, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// tokenSource reads the service account token from kube_token_file (or
// the output of kube_token_command) and reads it again once kube_token_ttl
// has passed, so a rotated projected token is picked up.
type tokenSource struct {
	file    string
	command string
	ttl     time.Duration
	now     func() time.Time
	warn    func(msg string, args ...any)

	mu     sync.Mutex
	token  string
	readAt time.Time
}

func (t *tokenSource) get(ctx context.Context) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if !t.readAt.IsZero() && now.Sub(t.readAt) <= t.ttl {
		return t.token
	}
	t.readAt = now
	var (
		b   []byte
		err error
	)
	if t.command != "" {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, err = exec.CommandContext(cctx, "/bin/sh", "-c", t.command).Output()
		cancel()
		if err != nil {
			t.warn("kubernetes: kube_token_command failed; requests go without a new token", "command", t.command, "error", err)
			return t.token
		}
	} else {
		b, err = os.ReadFile(t.file)
		if err != nil {
			// As Fluent Bit: outside a pod there may be no token, and
			// the API server (or a kubectl proxy) may not need one.
			t.warn("kubernetes: cannot read kube_token_file; requests go without a token", "file", t.file, "error", err)
			t.token = ""
			return ""
		}
	}
	t.token = strings.TrimSpace(string(b))
	return t.token
}

// tlsOptions are the filter's TLS keys.
type tlsOptions struct {
	verify         bool
	verifyHostname bool
	vhost          string
	caFile         string
	caPath         string
}

// tlsConfig builds the client TLS configuration as Fluent Bit's: with
// tls.verify on the server's chain is checked against kube_ca_file /
// kube_ca_path (the system roots when neither can be read), and its host
// name only with tls.verify_hostname on, since clusters are often reached
// by an address their certificate does not name.
// A failure names the key at fault: kube_ca_file or kube_ca_path.
type tlsError struct {
	key string
	err error
}

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

func (o tlsOptions) tlsConfig() (*tls.Config, []string, error) {
	var warnings []string
	roots := x509.NewCertPool()
	loaded := 0
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// As Fluent Bit, a missing CA file (the in-pod default, or a
			// configuration checked outside the cluster) is no reason to
			// refuse to start: requests are verified against the
			// system's CAs and fail if the server is not known there.
			warnings = append(warnings, fmt.Sprintf("kube_ca_file %s does not exist; verifying the API server with the system's CA certificates", o.caFile))
		case err != nil:
			return nil, nil, &tlsError{"kube_ca_file", fmt.Errorf("reading kube_ca_file: %w", err)}
		case !roots.AppendCertsFromPEM(pem):
			return nil, nil, &tlsError{"kube_ca_file", fmt.Errorf("kube_ca_file %s holds no PEM certificate", o.caFile)}
		default:
			loaded++
		}
	}
	if o.caPath != "" {
		ents, err := os.ReadDir(o.caPath)
		if err != nil {
			return nil, nil, &tlsError{"kube_ca_path", fmt.Errorf("reading kube_ca_path: %w", err)}
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			pem, err := os.ReadFile(filepath.Join(o.caPath, e.Name()))
			if err == nil && roots.AppendCertsFromPEM(pem) {
				loaded++
			}
		}
	}
	if loaded == 0 {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, nil, fmt.Errorf("loading the system's CA certificates: %w", err)
		}
		roots = sys
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: o.vhost}
	switch {
	case !o.verify:
		cfg.InsecureSkipVerify = true
	case !o.verifyHostname:
		// Check the chain ourselves, without the host name.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg, warnings, nil
}

func newHTTPClient(tlsCfg *tls.Config, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}
