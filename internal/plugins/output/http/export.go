package httpout

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/plugin"
)

// Transport builds the connection pool of an HTTP-based output from Fluent
// Bit's generic net.* and tls.* keys (tls on/off included), so outputs that
// speak HTTP to their backend (es, opensearch, loki) honour them exactly as
// the http output does. host is the name checked by tls.verify_hostname and
// sent as SNI unless tls.vhost is set. net.io_timeout is not applied here:
// callers bound each request as a whole.
func Transport(p *plugin.Props, host string, log *slog.Logger) (t *http.Transport, tlsOn bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc, err := parseNet(p)
	if err != nil {
		return nil, false, err
	}
	if k := unknownKey(p, "tls.", tlsKeys); k != "" {
		return nil, false, p.Errorf(k, "unknown TLS key %q", k)
	}
	var tc *tls.Config
	tlsOn = p.Bool("tls")
	if tlsOn {
		if tc, err = parseTLS(p, host, log); err != nil {
			return nil, false, err
		}
	}
	return newTransport(nc, tc, 0), tlsOn, nil
}

// StatusAnswer is what an HTTP-based output answers for a response whose
// status (not 2xx) err describes: 429 and 503 are retried, after the
// server's Retry-After when it gives one; any other 4xx but 408 is refused
// for good (the chunk is dead-lettered); anything else is retried.
func StatusAnswer(status int, h http.Header, err error) error {
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		if d, ok := RetryAfter(h.Get("Retry-After")); ok {
			return plugin.Throttle(err, d)
		}
		return err
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout:
		return plugin.Permanent(err)
	}
	return err
}

// RetryAfter parses a Retry-After header value (seconds or an HTTP date),
// capped at one hour; false when absent or malformed.
func RetryAfter(v string) (time.Duration, bool) { return retryAfter(v, time.Now()) }

// Endpoint is the server an HTTP-based output talks to, built from its host,
// port and the tls.* / net.* keys as the http output reads them.
type Endpoint struct {
	Addr      string // host:port
	Scheme    string // "https" with tls on, else "http"
	Transport *http.Transport
	Client    *http.Client // answers redirects to the caller instead of following them
}

// NewEndpoint reads an output's host, port and transport keys.
func NewEndpoint(p *plugin.Props, log *slog.Logger) (*Endpoint, error) {
	host := strings.Trim(strings.TrimSpace(p.String("host")), "[]")
	if host == "" {
		return nil, p.Errorf("host", "host is empty")
	}
	port := p.Int("port")
	if port < 1 || port > 65535 {
		return nil, p.Errorf("port", "port %d is out of range (1-65535)", port)
	}
	t, tlsOn, err := Transport(p, host, log)
	if err != nil {
		return nil, err
	}
	e := &Endpoint{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Scheme: "http", Transport: t}
	if tlsOn {
		e.Scheme = "https"
	}
	e.Client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e, nil
}
