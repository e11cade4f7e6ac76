// Package tcp is Fluent Bit's tcp input (plugins/in_tcp): it listens on a
// TCP port (default 0.0.0.0:5170, optionally TLS) and reads records from
// every connection.
//
//   - format json (default): a stream of JSON values; an object is a
//     record, an array becomes {"msg": [...]}, other values are refused.
//     Invalid JSON is logged and skipped up to the next newline (upstream
//     drops its whole read buffer, so what it keeps depends on how reads
//     split the stream).
//   - format none: records are cut at separator (default "\n", escapes
//     understood) and become {"log": "text"}, or the parser's record when
//     parser is set (a parser switches json to none, as upstream). A line
//     the parser rejects is kept as {"log": "text"} and counted. Empty
//     records are skipped; the text left when a client closes is a record.
//   - source_address_key adds "tcp://HOST:PORT" of the peer to every record
//     (upstream adds it only with format json or a parser).
//   - chunk_size (default 32 KB) is how the buffer grows; buffer_size
//     (default chunk_size) bounds one record: a connection sending a
//     longer one is closed with a warning. Both are in kilobytes, as upstream.
//
// Backpressure: each connection writes what a read decoded before reading
// again, and Write blocks while the pipeline is paused, so a paused input
// stops reading its sockets and clients block in send: nothing is lost.
package tcp

import (
	"context"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/netin"
)

const defaultChunk = 32768 // upstream FLB_IN_TCP_CHUNK

// Spec describes the tcp input plugin.
func Spec() *plugin.Spec {
	keys := append(netin.ListenKeys(5170), netin.TextKeys()...)
	keys = append(keys,
		plugin.Key{Name: "chunk_size", Desc: "buffer growth step in KB (default 32)"},
		plugin.Key{Name: "buffer_size", Desc: "largest record in KB (default chunk_size)"},
		plugin.Key{Name: "workers", Type: plugin.Int, Default: "1", Desc: "accepted; every connection has its own goroutine"},
	)
	keys = append(keys, netin.TLSKeys()...)
	return &plugin.Spec{
		Kind:     plugin.KindInput,
		Name:     "tcp",
		Desc:     "TCP",
		Keys:     keys,
		NewInput: New,
	}
}

// TCP is a configured tcp input.
type TCP struct {
	addr   string
	format *netin.TextFormat
	chunk  int
	max    int
	srv    netin.Server
	bound  netin.Bound
	grace  time.Duration
}

// New builds a tcp input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	log := netin.Logger(set)
	m := netin.Metrics(set)
	addr, err := netin.Addr(p)
	if err != nil {
		return nil, err
	}
	f, err := netin.NewTextFormat(set, p, log, m)
	if err != nil {
		return nil, err
	}
	chunk, err := netin.KBSize(p, "chunk_size", defaultChunk)
	if err != nil {
		return nil, err
	}
	max, err := netin.KBSize(p, "buffer_size", chunk)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := netin.TLS(p)
	if err != nil {
		return nil, err
	}
	return &TCP{addr: addr, format: f, chunk: chunk, max: max, grace: 5 * time.Second,
		srv: netin.Server{Log: log, Metrics: m, TLS: tlsCfg, Scheme: "tcp"}}, nil
}

// Addr waits until the input listens and returns its address.
func (t *TCP) Addr(ctx context.Context) (string, error) {
	a, err := t.bound.Wait(ctx)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// Run listens until ctx ends.
func (t *TCP) Run(ctx context.Context, w plugin.Writer) error {
	ln, err := netin.ListenStream("tcp", t.addr, 0)
	t.bound.Set(netin.AddrOf(ln), err)
	if err != nil {
		return err
	}
	t.srv.Log.Info("listening", "address", ln.Addr().String())
	return t.srv.Serve(ctx, ln, func(ctx context.Context, c *netin.Conn) {
		t.handle(ctx, c, w)
	})
}

func (t *TCP) handle(ctx context.Context, c *netin.Conn, w plugin.Writer) {
	dec := t.format.NewDecoder(c.Source)
	writes := &netin.Writes{W: w}
	err := netin.ReadStream(c, t.chunk, t.max, func(buf []byte, eof bool) (int, error) {
		n := dec.Decode(buf, eof)
		return n, writes.Write(ctx, &dec.B)
	})
	if err != nil && ctx.Err() == nil {
		t.srv.Metrics.Errors.Add(1)
		t.srv.Log.Warn("connection closed", "remote", c.Source, "error", err)
	}
	writes.Wait(ctx, t.grace)
}
