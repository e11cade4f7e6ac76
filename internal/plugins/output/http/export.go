package httpout

import (
	"crypto/tls"
	"log/slog"
	"net/http"
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

// RetryAfter parses a Retry-After header value (seconds or an HTTP date),
// capped at one hour; false when absent or malformed.
func RetryAfter(v string) (time.Duration, bool) { return retryAfter(v, time.Now()) }
