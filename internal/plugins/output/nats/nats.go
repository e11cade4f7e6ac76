// Package natsout is the nats output: it publishes a chunk's records to NATS
// JetStream and answers OK only once JetStream acknowledged (PubAck) every
// message, so a chunk Floe acks is stored in the user's stream.
//
// Subject: the subject template with $TAG and $TAG[n] filled from the tag
// (default "$TAG", the subject Fluent Bit's out_nats publishes on). Payload:
// format json_lines (default), json, json_stream or msgpack (the chunk's
// events, group markers included). A chunk is sent as one message, or as
// several when it exceeds max_message_size (default: the server's
// max_payload) or message_per_record is on; each message carries Floe-Tag and
// Floe-Records headers.
//
// Exactly once: every message carries a Nats-Msg-Id made of the chunk's
// Msg-Id (stable across the mesh's redeliveries) and the index of its first
// record, so JetStream drops a message the output had already stored before a
// crash or a lost PubAck. This holds within the stream's duplicate window
// (duplicate_window, 2 minutes by default), which must exceed the time a
// chunk can wait for redelivery.
//
// Answers: a PubAck is OK; a message JetStream will never take (larger than
// the stream's max_msg_size) is ERROR, so the chunk goes to the dead letters;
// no stream on the subject, a timeout, a disconnection or any other error is
// RETRY. With jetstream off the messages are published on core NATS (as
// Fluent Bit's out_nats does) and OK means the server received them.
//
// Fluent Bit's out_nats keys host and port are taken; url (a comma-separated
// list of servers) overrides them. Authentication: user/password, token,
// credentials (a .creds file) or nkey (a seed file); TLS with the tls and
// tls.* keys.
package natsout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	"github.com/floe-io/floe/internal/plugins/output/sinkutil"
)

// errCodeMsgTooBig is JetStream's JSStreamMessageExceedsMaximumErr.
const errCodeMsgTooBig jetstream.ErrorCode = 10054

// pubWindow bounds the publishes awaiting a PubAck at once.
const pubWindow = 512

// Spec describes the nats output plugin.
func Spec() *plugin.Spec {
	ks := []plugin.Key{
		{Name: "host", Default: "127.0.0.1", Desc: "NATS server host (Fluent Bit's out_nats key)"},
		{Name: "port", Type: plugin.Int, Default: "4222", Desc: "NATS server port"},
		{Name: "url", Desc: "comma-separated server URLs (nats://h:4222,...); overrides host and port"},
		{Name: "subject", Default: "$TAG", Desc: "subject template; $TAG and $TAG[n] take the tag or one of its dot-separated parts"},
		{Name: "jetstream", Type: plugin.Bool, Default: "on", Desc: "publish to JetStream and wait for its PubAck; off publishes on core NATS"},
		{Name: "message_per_record", Type: plugin.Bool, Default: "off", Desc: "publish every record as its own message"},
		{Name: "max_message_size", Type: plugin.Size, Desc: "largest message; a bigger chunk is split (default: the server's max_payload)"},
		{Name: "timeout", Type: plugin.Seconds, Default: "10s", Desc: "how long to wait for JetStream's acknowledgements"},
		{Name: "user", Desc: "user name"},
		{Name: "password", Desc: "password (with user)"},
		{Name: "token", Desc: "authentication token"},
		{Name: "credentials", Desc: "user credentials (.creds) file"},
		{Name: "nkey", Desc: "nkey seed file"},
	}
	for _, k := range format.JSONKeys() {
		if k.Name == "format" {
			k.Default = "json_lines"
			k.Desc = "payload: json_lines (default), json, json_stream or msgpack (the chunk's events)"
		}
		ks = append(ks, k)
	}
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "nats",
		Desc:      "NATS JetStream output",
		Keys:      ks,
		NewOutput: New,
	}
}

// Output publishes chunks to NATS. It is safe for concurrent flushes.
type Output struct {
	log       *slog.Logger
	nc        *nats.Conn
	js        jetstream.JetStream
	subject   *sinkutil.Template
	json      *format.JSON // nil for msgpack
	perRecord bool
	maxSize   int
	timeout   time.Duration

	// duplicates counts messages JetStream reported as already stored:
	// redeliveries the Nats-Msg-Id kept out of the stream.
	duplicates atomic.Int64
	noStream   atomic.Bool // logged once until a publish succeeds

	// url and connErr say why a flush finds no connection: the server's
	// refusal (a certificate it does not trust, wrong credentials) is only
	// reported to the reconnect callback, and nats.go's own answer to a
	// publish meanwhile ("outbound buffer limit exceeded") does not tell.
	url     string
	connErr atomic.Pointer[string]
}

// New builds a nats output and starts connecting; a server that is not up
// yet is retried in the background, and flushes answer RETRY meanwhile.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	o := &Output{log: set.Logger, perRecord: p.Bool("message_per_record"), maxSize: int(p.Size("max_message_size"))}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if o.subject, err = sinkutil.ParseTemplate(strings.TrimSpace(p.String("subject"))); err != nil {
		return nil, p.Errorf("subject", "%v", err)
	}
	if p.String("subject") == "" {
		return nil, p.Errorf("subject", "subject is empty")
	}
	o.timeout = time.Duration(p.Seconds("timeout") * float64(time.Second))
	if o.timeout <= 0 {
		return nil, p.Errorf("timeout", "timeout must be positive")
	}
	if f := strings.ToLower(p.String("format")); f != "msgpack" {
		jf, ok := format.ParseJSONFormat(f)
		if !ok {
			return nil, p.Errorf("format", "unknown format %q (json_lines, json, json_stream, msgpack)", p.String("format"))
		}
		if o.json, err = format.NewJSON(jf, p.String("json_date_key"), p.String("json_date_format"), set.Service.JSON); err != nil {
			return nil, p.Errorf("json_date_format", "%v", err)
		}
	}

	url := strings.TrimSpace(p.String("url"))
	if url == "" {
		port := p.Int("port")
		if port < 1 || port > 65535 {
			return nil, p.Errorf("port", "port %d is out of range (1-65535)", port)
		}
		url = "nats://" + net.JoinHostPort(strings.TrimSpace(p.String("host")), strconv.Itoa(port))
	}
	opts := []nats.Option{
		nats.Name("floe " + set.DisplayName()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// No publishing into a buffer while disconnected: such messages
		// would reach the server after the flush answered RETRY.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				o.log.Warn("nats output disconnected", "url", url, "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			o.connErr.Store(nil)
			o.log.Info("nats output reconnected", "server", c.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(*nats.Conn) { o.connErr.Store(nil) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				return
			}
			msg := err.Error()
			if prev := o.connErr.Swap(&msg); prev == nil || *prev != msg {
				o.log.Warn("nats output cannot connect; retrying", "url", url, "error", err)
			}
		}),
	}
	o.url = url
	if u := p.String("user"); u != "" {
		opts = append(opts, nats.UserInfo(u, p.String("password")))
	} else if p.Has("password") {
		return nil, p.Errorf("password", "password requires user")
	}
	if tok := p.String("token"); tok != "" {
		opts = append(opts, nats.Token(tok))
	}
	if f := p.String("credentials"); f != "" {
		opts = append(opts, nats.UserCredentials(f))
	}
	if f := p.String("nkey"); f != "" {
		opt, err := nats.NkeyOptionFromSeed(f)
		if err != nil {
			return nil, p.Errorf("nkey", "%v", err)
		}
		opts = append(opts, opt)
	}
	tc, err := sinkutil.TLSConfig(p)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	if o.nc, err = nats.Connect(url, opts...); err != nil {
		return nil, p.Errorf("url", "nats %s: %v", url, err)
	}
	if p.Bool("jetstream") {
		if o.js, err = jetstream.New(o.nc, jetstream.WithPublishAsyncMaxPending(2*pubWindow),
			jetstream.WithPublishAsyncTimeout(o.timeout)); err != nil {
			o.nc.Close()
			return nil, fmt.Errorf("nats output: %w", err)
		}
	}
	return o, nil
}

// Close drains nothing: every flush already waited for its acknowledgements.
func (o *Output) Close(context.Context) error {
	o.nc.Close()
	return nil
}

// Duplicates is how many messages JetStream dropped as already stored.
func (o *Output) Duplicates() int64 { return o.duplicates.Load() }

// Flush publishes c and waits for every acknowledgement.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	subject, err := o.subject.Expand(c.Tag)
	if err != nil {
		return plugin.Permanent(fmt.Errorf("nats subject: %w", err))
	}
	if !validSubject(subject) {
		return plugin.Permanent(fmt.Errorf("nats subject %q (from tag %q) is not a valid subject to publish on", subject, c.Tag))
	}
	msgs, err := o.messages(c, subject)
	if err != nil {
		return plugin.Permanent(fmt.Errorf("nats chunk %s: %w", c.ID, err))
	}
	if !o.nc.IsConnected() {
		return o.notConnected()
	}
	if o.js == nil {
		for _, m := range msgs {
			if err := o.nc.PublishMsg(m); err != nil {
				return fmt.Errorf("nats publish %s: %w", subject, err)
			}
		}
		fctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		if err := o.nc.FlushWithContext(fctx); err != nil {
			return fmt.Errorf("nats flush %s: %w", subject, err)
		}
		return nil
	}
	for len(msgs) > 0 {
		n := min(len(msgs), pubWindow)
		if err := o.publish(ctx, subject, msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	if o.noStream.Swap(false) {
		o.log.Info("nats output: a stream now stores subject " + subject)
	}
	return nil
}

// notConnected is the RETRY of a flush while the connection is down, with
// the reason the last attempt to connect failed, when there is one.
func (o *Output) notConnected() error {
	if msg := o.connErr.Load(); msg != nil {
		return fmt.Errorf("nats output: not connected to %s: %s", o.url, *msg)
	}
	if err := o.nc.LastError(); err != nil {
		return fmt.Errorf("nats output: not connected to %s: %w", o.url, err)
	}
	return fmt.Errorf("nats output: not connected to %s (%s)", o.url, o.nc.Status())
}

// publish sends msgs and waits for all their acknowledgements, so a RETRY
// never leaves a later publish in flight that could land after the retry.
func (o *Output) publish(ctx context.Context, subject string, msgs []*nats.Msg) error {
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	var first error
	for _, m := range msgs {
		f, err := o.js.PublishMsgAsync(m)
		if err != nil {
			first = err
			break
		}
		futs = append(futs, f)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout+time.Second)
	defer cancel()
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				o.duplicates.Add(1)
			}
		case err := <-f.Err():
			if first == nil || plugin.IsPermanent(o.classify(subject, err)) {
				first = err
			}
		case <-ctx.Done():
			if first == nil {
				first = ctx.Err()
			}
		}
	}
	if first != nil {
		return o.classify(subject, first)
	}
	return nil
}

func (o *Output) classify(subject string, err error) error {
	var api *jetstream.APIError
	switch {
	case errors.As(err, &api) && api.ErrorCode == errCodeMsgTooBig:
		return plugin.Permanent(fmt.Errorf("nats publish %s: the stream refuses a message this large (set max_message_size or message_per_record): %w", subject, err))
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		if !o.noStream.Swap(true) {
			o.log.Warn("nats output: no JetStream stream stores subject "+subject+"; retrying", "error", err)
		}
		return fmt.Errorf("nats publish %s: no JetStream stream stores this subject: %w", subject, err)
	}
	return fmt.Errorf("nats publish %s: %w", subject, err)
}

// messages renders c as one or more messages with stable ids.
func (o *Output) messages(c *chunk.Chunk, subject string) ([]*nats.Msg, error) {
	maxSize := o.maxSize
	if mp := int(o.nc.MaxPayload()); mp > 0 && (maxSize == 0 || maxSize > mp) {
		maxSize = mp - 1024 // headers
	}
	maxRecords := 0
	if o.perRecord {
		maxRecords = 1
	}
	var size func(*event.RawEvent) (int, error)
	if o.json != nil {
		var buf []byte
		size = func(r *event.RawEvent) (int, error) {
			var err error
			buf, err = o.json.AppendRecord(buf[:0], &format.Record{RawEvent: r})
			return len(buf) + 1, err
		}
	}
	pieces, err := sinkutil.Split(c.Data, maxRecords, maxSize, size)
	if err != nil {
		return nil, err
	}
	key := sinkutil.ChunkKey(c)
	msgs := make([]*nats.Msg, 0, len(pieces))
	for _, pc := range pieces {
		m := nats.NewMsg(subject)
		if o.json == nil {
			m.Data = pc.Data
		} else if m.Data, err = o.json.AppendChunk(nil, pc.Data); err != nil {
			return nil, err
		}
		m.Header.Set(jetstream.MsgIDHeader, sinkutil.RecordID(key, pc.First))
		m.Header.Set(chunk.HeaderTag, c.Tag)
		m.Header.Set(chunk.HeaderRecords, strconv.Itoa(pc.Records))
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// validSubject reports whether s can be published on: non-empty tokens, no
// wildcards, no white space.
func validSubject(s string) bool {
	if s == "" {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
	}
	return !strings.ContainsAny(s, " \t\r\n\x00")
}
