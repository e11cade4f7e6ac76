// Package udp is Fluent Bit's udp input (plugins/in_udp): it receives
// datagrams on a UDP port (default 0.0.0.0:5170) and reads records from
// each, with the formats of the tcp input (format json or none, separator,
// parser, source_address_key as udp://HOST:PORT).
//
// Every datagram stands alone: a JSON value or a text record cut by a
// datagram's end is not continued by the next one. Unlike upstream, the
// text after the last separator of a datagram is a record (upstream drops
// it, so `echo -n msg | nc -u` sent nothing).
//
// buffer_size (KB, default chunk_size, default 32) is the largest datagram
// read; longer ones are truncated by the kernel. A sender cannot be held
// back, so while the pipeline is paused or behind by more than 4 MiB the
// input drops what arrives and counts it (floe_input_dropped_records_total).
package udp

import (
	"context"
	"net"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/netin"
)

const defaultChunk = 32768 // upstream FLB_IN_UDP_CHUNK

// Spec describes the udp input plugin.
func Spec() *plugin.Spec {
	keys := append(netin.ListenKeys(5170), netin.TextKeys()...)
	keys = append(keys,
		plugin.Key{Name: "chunk_size", Desc: "KB (default 32); buffer_size defaults to it"},
		plugin.Key{Name: "buffer_size", Desc: "largest datagram in KB (default chunk_size)"},
		plugin.Key{Name: "workers", Type: plugin.Int, Default: "1", Desc: "accepted; one reader per socket"},
	)
	return &plugin.Spec{
		Kind:     plugin.KindInput,
		Name:     "udp",
		Desc:     "UDP",
		Keys:     keys,
		NewInput: New,
	}
}

// UDP is a configured udp input.
type UDP struct {
	netin.PauseFlag
	addr   string
	format *netin.TextFormat
	size   int
	bound  netin.Bound
}

// New builds a udp input.
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
	size, err := netin.KBSize(p, "buffer_size", chunk)
	if err != nil {
		return nil, err
	}
	return &UDP{addr: addr, format: f, size: min(size, 64<<10)}, nil
}

// Addr waits until the input listens and returns its address.
func (u *UDP) Addr(ctx context.Context) (string, error) {
	a, err := u.bound.Wait(ctx)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// Run receives datagrams until ctx ends.
func (u *UDP) Run(ctx context.Context, w plugin.Writer) error {
	pc, err := netin.ListenPacket("udp", u.addr, 0)
	var a net.Addr
	if pc != nil {
		a = pc.LocalAddr()
	}
	u.bound.Set(a, err)
	if err != nil {
		return err
	}
	u.format.Log.Info("listening", "address", a.String())
	dec := u.format.NewDecoder("")
	d := &netin.Datagrams{Conn: pc, Size: u.size, Pause: &u.PauseFlag, Metrics: u.format.Metrics, Log: u.format.Log,
		Decode: func(b *netin.Batch, data []byte, peer net.Addr) {
			dec.SetSource(netin.SourceOf("udp", peer))
			dec.B = *b
			dec.Decode(data, true)
			*b = dec.B
		}}
	return d.Run(ctx, w)
}

var _ plugin.Pauser = (*UDP)(nil)
