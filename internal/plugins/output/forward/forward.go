// Package forward is Fluent Bit's forward output (out_forward): it sends
// every chunk to a Fluentd Forward protocol v1 server (Fluentd, Fluent Bit,
// Floe's forward input) over TCP or TLS.
//
// Modes, as Fluent Bit picks them:
//
//	default              PackedForward: [tag, bin(entries), option?]
//	compress gzip        CompressedPackedForward: [tag, bin(gzip(entries)), {compressed: gzip}]
//	time_as_integer on   Forward: [tag, [[int time, record], ...], option?]
//	tag $key             Message: [tag-from-record, time, record, option?] per record
//
// Entries are [time, record] with the time as EventTime (nanoseconds kept),
// or integer seconds with time_as_integer; with
// retain_metadata_in_forward_mode the entries keep Floe's metadata
// ([[time, metadata], record], Fluent Bit's v2 layout). Group markers are
// not sent.
//
// Options: with send_options, require_ack_response or compress the frame
// carries an option map (size, chunk, compressed). With require_ack_response
// Flush answers nil only after the server's {"ack": chunk} with the same
// chunk id; a connection that closes or a read that times out
// (net.io_timeout) before it is RETRY, and the connection is dropped.
// Forward has no permanent refusal: every failure is RETRY.
//
// Authentication: with shared_key the HELO/PING/PONG handshake runs on each
// new connection (self_hostname, username/password); a refused handshake or a
// server digest that does not match is RETRY with the reason.
//
// upstream names a file of [UPSTREAM] and [NODE] sections (Fluent Bit's
// format); chunks go round robin over the nodes and a node that fails hands
// the chunk to the next (failover) within the same Flush. A node may set
// host, port, tls, tls.verify, tls.ca_file, shared_key, self_hostname,
// username and password.
package forward

import (
	"bufio"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	proto "github.com/floe-io/floe/internal/forward"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	"github.com/floe-io/floe/internal/plugins/output/internal/netout"
)

// maxIdlePerNode bounds the idle connections kept per node (one per worker).
const maxIdlePerNode = 8

// Spec describes the forward output.
func Spec() *plugin.Spec {
	keys := []plugin.Key{
		{Name: "host", Default: "127.0.0.1", Desc: "address of the forward server"},
		{Name: "port", Type: plugin.Int, Default: "24224", Desc: "TCP port of the forward server"},
		{Name: "upstream", Desc: "file of [UPSTREAM]/[NODE] sections: round robin with failover"},
		{Name: "tag", Desc: "tag sent instead of the chunk's; $key takes it from each record (Message mode)"},
		{Name: "time_as_integer", Type: plugin.Bool, Default: "off", Desc: "send times as integer seconds (Forward mode)"},
		{Name: "send_options", Type: plugin.Bool, Default: "off", Desc: "send the option map (size) with every frame"},
		{Name: "require_ack_response", Type: plugin.Bool, Default: "off", Desc: "wait for the server's ack before reporting success"},
		{Name: "compress", Enum: []string{"gzip"}, Desc: "gzip the entries (CompressedPackedForward)"},
		{Name: "retain_metadata_in_forward_mode", Type: plugin.Bool, Default: "off", Desc: "keep record metadata in the entries"},
		{Name: "shared_key", Desc: "shared key of the HELO/PING/PONG handshake"},
		{Name: "empty_shared_key", Type: plugin.Bool, Default: "off", Desc: "run the handshake with an empty shared key"},
		{Name: "self_hostname", Default: "localhost", Desc: "host name sent in PING"},
		{Name: "username", Desc: "user name for the handshake"},
		{Name: "password", Desc: "password for the handshake"},
		{Name: "fluentd_compat", Type: plugin.Bool, Default: "off", Desc: "accepted; Floe sends logs only"},
		{Name: "workers", Type: plugin.Int, Default: "2"},
	}
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "forward",
		Desc:      "Forward (Fluentd protocol)",
		Keys:      append(keys, netout.Keys()...),
		NewOutput: New,
	}
}

type mode int

const (
	modePacked mode = iota
	modeForward
	modeMessage
)

// Output sends chunks to forward servers. It is safe for concurrent flushes.
type Output struct {
	log      *slog.Logger
	nodes    []*node
	next     atomic.Uint32
	tag      string // static tag override
	tagKey   string // Message mode: tag from this record key
	mode     mode
	intTime  bool
	options  bool
	ack      bool
	gzip     bool
	metadata bool
	io       time.Duration
}

// node is one server with its pool of idle connections.
type node struct {
	name   string
	addr   string
	dialer *netout.Dialer
	auth   *proto.Client // nil without a handshake

	mu   sync.Mutex
	idle []*conn
}

type conn struct {
	c   net.Conn
	w   *bufio.Writer
	dec *proto.Decoder
}

// New builds a forward output.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	return newOutput(set, p)
}

func newOutput(set plugin.Settings, p *plugin.Props) (*Output, error) {
	o := &Output{log: set.Logger}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.intTime = p.Bool("time_as_integer")
	o.options = p.Bool("send_options")
	o.ack = p.Bool("require_ack_response")
	o.metadata = p.Bool("retain_metadata_in_forward_mode")
	switch c := strings.ToLower(strings.TrimSpace(p.String("compress"))); c {
	case "":
	case "gzip":
		o.gzip = true
	default:
		return nil, p.Errorf("compress", "invalid compress %q (gzip)", p.String("compress"))
	}
	if t := strings.TrimSpace(p.String("tag")); t != "" {
		if strings.HasPrefix(t, "$") {
			k := t[1:]
			if k == "" || strings.ContainsAny(k, "$[]'\" ") {
				return nil, p.Errorf("tag", "tag %q: only a top-level record key ($key) is supported", t)
			}
			o.tagKey = k
		} else {
			o.tag = t
		}
	}
	switch {
	case o.tagKey != "":
		o.mode = modeMessage
	case o.intTime && !o.gzip:
		o.mode = modeForward
	default:
		o.mode = modePacked
	}

	if up := strings.TrimSpace(p.String("upstream")); up != "" {
		nodes, err := loadUpstream(p, up)
		if err != nil {
			return nil, err
		}
		o.nodes = nodes
	} else {
		host, addr, err := netout.HostPort(p, "host", "port")
		if err != nil {
			return nil, err
		}
		d, err := netout.New(p, host)
		if err != nil {
			return nil, err
		}
		n := &node{name: addr, addr: addr, dialer: d}
		n.auth = clientAuth(p.String("shared_key"), p.Bool("empty_shared_key"),
			p.String("self_hostname"), p.String("username"), p.String("password"))
		o.nodes = []*node{n}
	}
	o.io = o.nodes[0].dialer.IOTimeout
	return o, nil
}

func clientAuth(key string, empty bool, host, user, pass string) *proto.Client {
	if key == "" && !empty {
		return nil
	}
	if host == "" {
		host = "localhost"
	}
	return &proto.Client{SharedKey: key, Hostname: host, Username: user, Password: pass}
}

// Flush sends the chunk to one node, trying the others in turn if it fails.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("forward output: %s chunks are not supported (logs only)", c.Signal()))
	}
	frames, err := o.encode(c)
	if err != nil {
		return plugin.Permanent(fmt.Errorf("forward output: chunk %s: %w", c.ID, err))
	}
	if len(frames) == 0 {
		return nil
	}
	start := int(o.next.Add(1)-1) % len(o.nodes)
	var errs []error
	for i := range o.nodes {
		n := o.nodes[(start+i)%len(o.nodes)]
		err := o.send(ctx, n, frames)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("node %s: %w", n.name, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("forward output: %w", errors.Join(errs...))
}

// frame is one encoded message and the chunk id its ack must carry.
type frame struct {
	data  []byte
	chunk string
}

// encode builds the frames of a chunk in the configured mode.
func (o *Output) encode(c *chunk.Chunk) ([]frame, error) {
	tag := c.Tag
	if o.tag != "" {
		tag = o.tag
	}
	if o.mode == modeMessage {
		return o.encodeMessages(c, tag)
	}
	var entries []byte
	n := 0
	err := format.EachRecord(c.Data, func(r *format.Record) error {
		entries = o.appendEntry(entries, r.RawEvent)
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	opt := o.option(n)
	var data []byte
	switch {
	case o.gzip:
		data = proto.AppendPackedForward(nil, tag, proto.Gzip(entries), o.withChunk(opt, entries))
	case o.mode == modeForward:
		data = proto.AppendForward(nil, tag, entries, n, o.withChunk(opt, entries))
	default:
		data = proto.AppendPackedForward(nil, tag, entries, o.withChunk(opt, entries))
	}
	f := frame{data: data}
	if o.ack {
		f.chunk = opt.Chunk
	}
	return []frame{f}, nil
}

func (o *Output) encodeMessages(c *chunk.Chunk, fallback string) ([]frame, error) {
	var frames []frame
	err := format.EachRecord(c.Data, func(r *format.Record) error {
		tag := fallback
		_ = format.Pairs(r.Body, func(k, v []byte) bool {
			if ks, ok := format.Str(k); ok && string(ks) == o.tagKey {
				if vs, ok := format.Str(v); ok && len(vs) > 0 {
					tag = string(vs)
				}
				return false
			}
			return true
		})
		var d []byte
		d = event.AppendArrayHeader(d, 3+boolInt(o.options || o.ack))
		d = event.AppendString(d, tag)
		d = o.appendTime(d, r.Time)
		d = append(d, r.Body...)
		f := frame{}
		if o.options || o.ack {
			opt := &proto.Options{Size: -1}
			if o.ack {
				opt.Chunk = chunkID(d)
				f.chunk = opt.Chunk
			}
			d = opt.AppendMsgpack(d)
		}
		f.data = d
		frames = append(frames, f)
		return nil
	})
	return frames, err
}

func (o *Output) option(n int) *proto.Options {
	if !o.options && !o.ack && !o.gzip {
		return nil
	}
	opt := &proto.Options{Size: -1}
	if o.options {
		opt.Size = n
	}
	if o.gzip {
		opt.Compressed = "gzip"
	}
	return opt
}

// withChunk sets the ack id as Fluent Bit makes it: Base64 of the first 16
// bytes of the SHA-512 of the entries.
func (o *Output) withChunk(opt *proto.Options, entries []byte) *proto.Options {
	if opt != nil && o.ack {
		opt.Chunk = chunkID(entries)
	}
	return opt
}

func chunkID(b []byte) string {
	sum := sha512.Sum512(b)
	return base64.StdEncoding.EncodeToString(sum[:16])
}

func (o *Output) appendEntry(dst []byte, ev *event.RawEvent) []byte {
	dst = event.AppendArrayHeader(dst, 2)
	if o.metadata {
		dst = event.AppendArrayHeader(dst, 2)
		dst = o.appendTime(dst, ev.Time)
		if len(ev.Meta) == 0 {
			dst = append(dst, 0x80)
		} else {
			dst = append(dst, ev.Meta...)
		}
	} else {
		dst = o.appendTime(dst, ev.Time)
	}
	return append(dst, ev.Body...)
}

func (o *Output) appendTime(dst []byte, t event.Time) []byte {
	if o.intTime {
		return event.AppendInt(dst, t.Sec)
	}
	return t.AppendMsgpack(dst)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// send writes the frames on one connection of n and waits for their acks.
func (o *Output) send(ctx context.Context, n *node, frames []frame) error {
	cn, err := n.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = cn.c.SetDeadline(time.Now()) })
	defer stop()
	if err := o.exchange(cn, frames); err != nil {
		cn.c.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	n.put(cn)
	return nil
}

func (o *Output) exchange(cn *conn, frames []frame) error {
	_ = cn.c.SetDeadline(time.Now().Add(o.io))
	for _, f := range frames {
		if _, err := cn.w.Write(f.data); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := cn.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for _, f := range frames {
		if f.chunk == "" {
			continue
		}
		for {
			v, _, err := cn.dec.Next()
			if err != nil {
				return fmt.Errorf("waiting for the ack of chunk %s: %w", f.chunk, err)
			}
			if proto.IsHeartbeat(v) {
				continue
			}
			got, err := proto.ParseAck(v)
			if err != nil {
				if _, herr := proto.ParseHelo(v); herr == nil {
					return errors.New("the server requires the shared key handshake (it sent HELO): set shared_key")
				}
				return fmt.Errorf("waiting for the ack of chunk %s: %w", f.chunk, err)
			}
			if got != f.chunk {
				return fmt.Errorf("server acked chunk %q, want %q", got, f.chunk)
			}
			break
		}
	}
	_ = cn.c.SetDeadline(time.Time{})
	return nil
}

// get takes an idle connection or opens one (with the handshake).
func (n *node) get(ctx context.Context) (*conn, error) {
	for {
		n.mu.Lock()
		k := len(n.idle)
		if k == 0 {
			n.mu.Unlock()
			break
		}
		cn := n.idle[k-1]
		n.idle = n.idle[:k-1]
		n.mu.Unlock()
		// Without acks nothing would tell a frame written into a connection
		// the server has closed (a restart) from a delivered one.
		if netout.Alive(cn.c) {
			return cn, nil
		}
		cn.c.Close()
	}
	c, err := n.dialer.Dial(ctx, "tcp", n.addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	cn := &conn{c: c, w: bufio.NewWriterSize(c, 64<<10), dec: proto.NewDecoder(c, 4<<10, 1<<20)}
	if n.auth != nil {
		if err := n.handshake(ctx, cn); err != nil {
			c.Close()
			return nil, err
		}
	}
	return cn, nil
}

func (n *node) put(cn *conn) {
	n.mu.Lock()
	if len(n.idle) < maxIdlePerNode {
		n.idle = append(n.idle, cn)
		cn = nil
	}
	n.mu.Unlock()
	if cn != nil {
		cn.c.Close()
	}
}

func (n *node) handshake(ctx context.Context, cn *conn) error {
	stop := context.AfterFunc(ctx, func() { _ = cn.c.SetDeadline(time.Now()) })
	defer stop()
	_ = cn.c.SetDeadline(time.Now().Add(n.dialer.IOTimeout))
	defer cn.c.SetDeadline(time.Time{})
	v, _, err := cn.dec.Next()
	if err != nil {
		return fmt.Errorf("handshake: reading HELO: %w", err)
	}
	helo, err := proto.ParseHelo(v)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	ping := n.auth.NewPing(helo)
	if _, err := cn.c.Write(proto.AppendPing(nil, ping)); err != nil {
		return fmt.Errorf("handshake: sending PING: %w", err)
	}
	if v, _, err = cn.dec.Next(); err != nil {
		return fmt.Errorf("handshake: reading PONG: %w", err)
	}
	pong, err := proto.ParsePong(v)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if err := n.auth.VerifyPong(helo, ping, pong); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	return nil
}

// Close drops the idle connections.
func (o *Output) Close(context.Context) error {
	for _, n := range o.nodes {
		n.mu.Lock()
		for _, cn := range n.idle {
			cn.c.Close()
		}
		n.idle = nil
		n.mu.Unlock()
	}
	return nil
}
