// Package tcp is Fluent Bit's tcp output (out_tcp): it writes every chunk to
// a TCP (or TLS) connection, as MessagePack (the default: Floe's events,
// [[time, metadata], record], verbatim) or as JSON (json: one array per
// chunk, json_lines: one record per line, json_stream: objects back to back)
// with json_date_key and json_date_format.
//
// A plain stream has no answer: Flush is OK once the bytes are written. A
// connection that failed, or that the peer closed since the last flush, is
// replaced by a new one before writing, so a restarted receiver does not
// lose the next chunk into a dead socket. Every failure is RETRY (a stream
// cannot refuse permanently), except a chunk that does not decode (ERROR).
package tcp

import (
	"context"
	"fmt"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	"github.com/floe-io/floe/internal/plugins/output/internal/netout"
)

// Spec describes the tcp output.
func Spec() *plugin.Spec {
	keys := []plugin.Key{
		{Name: "host", Default: "127.0.0.1", Desc: "address of the receiver"},
		{Name: "port", Type: plugin.Int, Default: "5170", Desc: "TCP port of the receiver"},
		{Name: "workers", Type: plugin.Int, Default: "2"},
	}
	keys = append(keys, format.JSONKeys()...)
	keys = append(keys, netout.Keys()...)
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "tcp",
		Desc:      "TCP Output",
		Keys:      keys,
		NewOutput: New,
	}
}

// Output writes chunks to one TCP receiver.
type Output struct {
	pool *netout.Pool
	json *format.JSON // nil: msgpack
}

// New builds a tcp output.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	host, addr, err := netout.HostPort(p, "host", "port")
	if err != nil {
		return nil, err
	}
	d, err := netout.New(p, host)
	if err != nil {
		return nil, err
	}
	o := &Output{pool: &netout.Pool{Dialer: d, Network: "tcp", Addr: addr}}
	if f := strings.ToLower(strings.TrimSpace(p.String("format"))); f != "msgpack" {
		jf, ok := format.ParseJSONFormat(f)
		if !ok {
			return nil, p.Errorf("format", "unknown format %q (msgpack, json, json_lines, json_stream)", p.String("format"))
		}
		if o.json, err = format.NewJSON(jf, p.String("json_date_key"), p.String("json_date_format"), set.Service.JSON); err != nil {
			return nil, p.Errorf("json_date_format", "%v", err)
		}
	}
	return o, nil
}

// Flush writes the chunk.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("tcp output: %s chunks are not supported (logs only)", c.Signal()))
	}
	payload := c.Data
	if o.json != nil {
		var err error
		if payload, err = o.json.AppendChunk(nil, c.Data); err != nil {
			return plugin.Permanent(fmt.Errorf("tcp output: chunk %s: %w", c.ID, err))
		}
	}
	if len(payload) == 0 {
		return nil
	}
	if err := o.pool.Write(ctx, payload); err != nil {
		return fmt.Errorf("tcp output: %w", err)
	}
	return nil
}

// Close drops the idle connections.
func (o *Output) Close(context.Context) error {
	o.pool.Close()
	return nil
}
