// Package pluginsdk is the Go SDK for Floe output plugins that run as their
// own process. Its shape follows fluent-bit-go — register, init per
// instance with its configuration, flush a chunk and answer OK, RETRY or
// ERROR, exit — but the plugin is an ordinary Go program: its own crash
// domain, any Go version, logs, metrics and traces.
//
//	func main() {
//		pluginsdk.Serve(pluginsdk.Definition{
//			Name:       "myout",
//			EventTypes: []pluginsdk.EventType{pluginsdk.Logs},
//			ConfigKeys: []pluginsdk.ConfigKey{{Name: "endpoint", Default: "http://localhost"}},
//			New: func(ctx context.Context, cfg pluginsdk.Config) (pluginsdk.Output, error) {
//				return &myOut{endpoint: cfg.Get("endpoint")}, nil
//			},
//		})
//	}
//
// Build it with `go build`, list the executable in a plugins_file (`Path`)
// and use `[OUTPUT] Name myout`. Floe starts the process with
// hashicorp/go-plugin and talks gRPC (proto/pluginv1) over a unix socket.
package pluginsdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/floe-io/floe/proto/pluginv1"
)

// EventType is a signal a plugin takes.
type EventType string

const (
	Logs    EventType = "logs"    // Fluent Bit MessagePack events (see Chunk.Events)
	Metrics EventType = "metrics" // OTLP ExportMetricsServiceRequest
	Traces  EventType = "traces"  // OTLP ExportTraceServiceRequest
)

// ConfigKey declares one configuration key. Names are lowercase and must not
// be one of Floe's reserved keys (match, workers, retry_limit, tls*, ...).
type ConfigKey struct {
	Name        string
	Default     string
	Description string
	// Type lets `floe validate` and Floe's start refuse a bad value, with
	// the file and line, before the plugin sees it. Zero is String.
	Type KeyType
	// Allowed, when set, lists the only values accepted (case-insensitive).
	Allowed []string
}

// KeyType says how Floe checks a configuration value.
type KeyType string

const (
	String   KeyType = "string"
	Int      KeyType = "int"
	Bool     KeyType = "bool"     // on/off, true/false, yes/no
	Float    KeyType = "float"    // decimal number
	Size     KeyType = "size"     // Fluent Bit size: 512, 5k, 5M, 1G
	Duration KeyType = "duration" // Fluent Bit time: 10, 10s, 5m, 1h, 1d
)

// Definition is what a plugin registers.
type Definition struct {
	Name        string
	Description string
	EventTypes  []EventType // default: Logs
	ConfigKeys  []ConfigKey
	// New creates one instance for an [OUTPUT] section.
	New func(ctx context.Context, cfg Config) (Output, error)
}

// Config is an instance's configuration: its declared keys, defaults applied.
type Config struct {
	Instance string // Floe's name for the instance (its alias when set)
	props    map[string]string
}

// Get returns the value of key ("" when unset and without default).
func (c Config) Get(key string) string { return c.props[strings.ToLower(key)] }

// Output is one instance of a plugin.
type Output interface {
	// Flush delivers a chunk. Return nil for OK, an error made with
	// Permanent for ERROR (the chunk goes to the dead-letter stream), and
	// any other error for RETRY (RetryAfter to ask for a delay).
	Flush(ctx context.Context, c Chunk) error
}

// Exiter is implemented by outputs that release resources; Exit is called
// once, after the instance's last flush.
type Exiter interface {
	Exit(ctx context.Context) error
}

// Chunk is what Floe hands an output: the events of one tag and one signal.
type Chunk struct {
	Tag       string
	EventType EventType
	// Data is byte for byte what Fluent Bit gives its output plugins for
	// logs (concatenated MessagePack events), or an OTLP protobuf export
	// request for metrics and traces.
	Data    []byte
	Records int
}

// ---- errors that keep their class across the wire ----

type classError struct {
	err       error
	permanent bool
	after     time.Duration
}

func (e *classError) Error() string { return e.err.Error() }
func (e *classError) Unwrap() error { return e.err }

// Permanent marks err as ERROR: the chunk is not retried but set aside.
func Permanent(err error) error { return &classError{err: err, permanent: true} }

// RetryAfter asks for a retry no sooner than d.
func RetryAfter(err error, d time.Duration) error { return &classError{err: err, after: d} }

// IsPermanent reports whether err was made with Permanent.
func IsPermanent(err error) bool {
	var c *classError
	return errors.As(err, &c) && c.permanent
}

// Handshake is shared by Floe and plugins; a binary started without it
// (by hand) says it is a Floe plugin and exits.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "FLOE_OUTPUT_PLUGIN",
	MagicCookieValue: "f1oe-output-plugin-v1",
}

// PluginKey is the go-plugin name of the output service.
const PluginKey = "output"

// Serve runs the plugin until Floe stops it. It does not return.
func Serve(def Definition) {
	if def.New == nil || def.Name == "" {
		panic("pluginsdk: Definition needs Name and New")
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{PluginKey: &grpcPlugin{srv: newServer(def)}},
		GRPCServer:      goplugin.DefaultGRPCServer,
	})
}

// grpcPlugin serves the OutputPlugin service; Floe's side has its own client.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	srv *server
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterOutputPluginServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("pluginsdk: the client side lives in Floe")
}
