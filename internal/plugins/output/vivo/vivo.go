// Package vivo is the vivo_exporter output's specification: its keys,
// defaults and their parsed form. The exporter is not flushed by the output
// stage: the router publishes the chunks it matches to per-signal JetStream
// streams (FLOE_VIVO_<id>_LOGS|METRICS|TRACES, limited to stream_queue_size
// bytes, oldest discarded) and the vivo stage (services/vivo) serves them
// over HTTP.
//
// Keys follow plugins/out_vivo_exporter/vivo.c and Fluent Bit's HTTP server
// config map: empty_stream_on_read (off), stream_queue_size (20M, decimal:
// 20,000,000 bytes), http_cors_allow_origin (unset), the listen address host
// (0.0.0.0) and port (2025), and the http_server.* keys. Of those,
// http_server.http2 (on: HTTP/2 without TLS by prior knowledge besides
// HTTP/1.1), http_server.idle_timeout, http_server.buffer_max_size (the
// largest request head) and http_server.max_connections are honoured;
// http_server.buffer_chunk_size and http_server.workers are accepted and have
// no effect (Go's server has no fixed buffers or worker threads).
package vivo

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/plugin"
)

// Name is the plugin name; ServedBy is the stage that serves it.
const (
	Name     = "vivo_exporter"
	ServedBy = "vivo"
)

// Defaults (Fluent Bit's).
const (
	DefaultHost          = "0.0.0.0"
	DefaultPort          = 2025
	DefaultStreamQueue   = "20M"            // 20,000,000 bytes
	DefaultIdleTimeout   = 10 * time.Second // http_server.idle_timeout
	DefaultBufferMaxSize = 4000000          // http_server.buffer_max_size, 4M
)

// Spec describes the vivo_exporter output.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind:     plugin.KindOutput,
		Name:     Name,
		Desc:     "Serve logs, metrics and traces over HTTP (Vivo), from the vivo stage",
		ServedBy: ServedBy,
		Keys: []plugin.Key{
			{Name: "empty_stream_on_read", Type: plugin.Bool, Default: "off",
				Desc: "clear the whole stream (logs, metrics or traces) after each read"},
			{Name: "stream_queue_size", Type: plugin.Size, Default: DefaultStreamQueue,
				Desc: "bytes kept per stream; the oldest chunks are discarded beyond it"},
			{Name: "http_cors_allow_origin", Desc: "value of Access-Control-Allow-Origin; unset: no CORS headers"},
			{Name: "host", Default: DefaultHost, Desc: "listen address"},
			{Name: "port", Type: plugin.Int, Default: strconv.Itoa(DefaultPort), Desc: "listen port"},
			{Name: "http_server.http2", Type: plugin.Bool, Default: "on", Desc: "also serve HTTP/2 without TLS (prior knowledge)"},
			{Name: "http2", Type: plugin.Bool, Desc: "alias of http_server.http2"},
			{Name: "http_server.idle_timeout", Type: plugin.Seconds, Default: "10s", Desc: "close idle keep-alive connections after this"},
			{Name: "http_server.buffer_max_size", Type: plugin.Size, Default: "4M", Desc: "largest request head"},
			{Name: "buffer_max_size", Type: plugin.Size, Desc: "alias of http_server.buffer_max_size"},
			{Name: "http_server.buffer_chunk_size", Type: plugin.Size, Default: "512K", Desc: "accepted, no effect"},
			{Name: "http_server.max_connections", Type: plugin.Size, Default: "0", Desc: "concurrent connections; 0 = unlimited"},
			{Name: "http_server.workers", Type: plugin.Int, Default: "1", Desc: "accepted, no effect"},
		},
	}
}

// Settings are an exporter's parsed keys.
type Settings struct {
	EmptyStreamOnRead bool
	StreamQueueSize   int64 // bytes; 0 = unlimited
	CORSAllowOrigin   string
	Host              string
	Port              int
	HTTP2             bool
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxConnections    int
}

// Addr is the listen address host:port.
func (s Settings) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Parse reads an exporter's keys (already type-checked by validation) and
// checks the listen address.
func Parse(p *plugin.Props) (Settings, error) {
	s := Settings{
		EmptyStreamOnRead: p.Bool("empty_stream_on_read"),
		StreamQueueSize:   p.Size("stream_queue_size"),
		CORSAllowOrigin:   p.String("http_cors_allow_origin"),
		Host:              strings.TrimSpace(p.String("host")),
		Port:              p.Int("port"),
		HTTP2:             p.Bool("http_server.http2"),
		IdleTimeout:       time.Duration(p.Seconds("http_server.idle_timeout") * float64(time.Second)),
		MaxHeaderBytes:    int(p.Size("http_server.buffer_max_size")),
		MaxConnections:    int(p.Size("http_server.max_connections")),
	}
	if p.Has("http2") {
		s.HTTP2 = p.Bool("http2")
	}
	if p.Has("buffer_max_size") {
		s.MaxHeaderBytes = int(p.Size("buffer_max_size"))
	}
	if s.Host == "" {
		s.Host = DefaultHost
	}
	if p.Has("port") {
		v := strings.TrimSpace(p.String("port"))
		if _, err := strconv.Atoi(v); err != nil {
			return s, p.Errorf("port", "%q is not a port number", v)
		}
	}
	// Port 0 asks the system for a free port (tests).
	if s.Port < 0 || s.Port > 65535 {
		return s, p.Errorf("port", "port %d is out of range (0-65535)", s.Port)
	}
	if strings.ContainsAny(s.Host, " /") {
		return s, p.Errorf("host", "host %q is not an address", s.Host)
	}
	if s.StreamQueueSize < 0 {
		return s, p.Errorf("stream_queue_size", "stream_queue_size must not be negative")
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.MaxHeaderBytes <= 0 {
		s.MaxHeaderBytes = DefaultBufferMaxSize
	}
	if s.MaxConnections < 0 {
		return s, p.Errorf("http_server.max_connections", "must not be negative")
	}
	if p.Bool("tls") {
		return s, p.Errorf("tls", "tls is not supported by %s yet: put a TLS proxy in front of it", Name)
	}
	return s, nil
}

// SourceType derives Vivo's source_type (the input plugin name) from the
// input instance name a chunk carries (Floe-Source): "dummy.0" → "dummy".
// An alias carries no plugin name, so it is returned as is.
func SourceType(source string) string {
	i := strings.LastIndexByte(source, '.')
	if i <= 0 || i == len(source)-1 {
		return source
	}
	for _, c := range source[i+1:] {
		if c < '0' || c > '9' {
			return source
		}
	}
	return source[:i]
}

// String is for logs.
func (s Settings) String() string {
	return fmt.Sprintf("addr=%s stream_queue_size=%d empty_stream_on_read=%t", s.Addr(), s.StreamQueueSize, s.EmptyStreamOnRead)
}
