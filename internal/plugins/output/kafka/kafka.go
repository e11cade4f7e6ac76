// Package kafka is the kafka output (Fluent Bit's out_kafka keys) on the
// pure-Go franz-go client: every record of a chunk becomes one Kafka record,
// and Flush answers OK only once every broker in the partition's ISR holds it
// (acks=all).
//
// Topic: the first of topics, or, with topic_key, the record's value of that
// key when it is one of topics (any value with dynamic_topic on). Key:
// message_key (a fixed string) or the record's message_key_field value. Value:
// format json (default; the record with the time under timestamp_key in
// timestamp_format) or msgpack (the same map in MessagePack). Every record
// carries a "floe-id" header: the chunk's Msg-Id and the record's index.
//
// Delivery: the producer is idempotent (franz-go's default, kept on), so the
// broker drops the copies its own retries create, within one producer
// session. That does not cover a chunk Floe retries or redelivers: when one
// partition refuses a chunk after another took its share, the RETRY writes
// that share again; and a chunk redelivered after the output stage died
// between the broker's ack and Floe's is written again by a new producer
// (Kafka has no per-record dedup across producer ids).
//
// With transactional_id set (unique per output process: two processes with
// one id fence each other), every chunk is one Kafka transaction, aborted
// when any part fails, so read_committed consumers never see a chunk's part
// twice from a RETRY, nor a part of a chunk whose producer was killed
// mid-chunk (the next producer with the id aborts it).
//
// Exactly once (exactly_once, on by default with transactional_id): each
// transaction also writes the chunk's marker to exactly_once_topic (default
// __floe_chunks, created when missing: compacted, deleted after
// exactly_once_retention), keyed by the transactional id and the chunk's
// stable key (its Msg-Id, the same on every redelivery). Before its first
// chunk, and after a commit whose outcome it could not learn, the output
// gets a new producer epoch for the id, which fences any earlier producer
// (a SIGKILLed output's open transaction is aborted, one it was committing
// completes), then reads the marker topic with read_committed up to its
// high watermark. A chunk whose marker it knows is answered OK without
// being written. Guarantee: with one output process per transactional_id
// at a time (a restart reuses it), a consumer reading with
// isolation.level=read_committed sees each record of a chunk exactly once,
// for chunks redelivered within exactly_once_retention of their commit.
// Not covered: read_uncommitted consumers (they see the records of aborted
// transactions), a chunk redelivered to an output with another
// transactional_id (output replicas need ids of their own, and then a chunk
// that moves between them may be written by both), or after its marker
// expired. Two live processes with one id fence each other back and forth. Memory: about 100
// bytes per chunk committed within the retention. Another transactional
// id's markers are skipped when reading, but read: a marker topic per
// pipeline keeps the start short. The floe-id header stays, for consumers
// that deduplicate themselves.
//
// Answers: a record the broker will never accept (too large, invalid, a topic
// name Kafka refuses) is ERROR; anything else not written within timeout is
// RETRY. compression: none, gzip, snappy, lz4, zstd (also taken from
// rdkafka.compression.codec). TLS through tls and tls.*; SASL PLAIN and
// SCRAM through rdkafka.sasl.*.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	"github.com/floe-io/floe/internal/plugins/output/sinkutil"
)

// HeaderID is the Kafka record header holding the record's stable id.
const HeaderID = "floe-id"

// Spec describes the kafka output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput,
		Name: "kafka",
		Desc: "Kafka",
		Keys: []plugin.Key{
			{Name: "brokers", Default: "127.0.0.1:9092", Desc: "comma-separated host:port list of bootstrap brokers"},
			{Name: "topics", Default: "fluent-bit", Desc: "comma-separated topics; the first is the default"},
			{Name: "topic_key", Desc: "record key whose value selects the topic"},
			{Name: "dynamic_topic", Type: plugin.Bool, Default: "off", Desc: "use the topic_key value even when it is not in topics"},
			{Name: "message_key", Desc: "fixed key of every Kafka record"},
			{Name: "message_key_field", Desc: "record key whose value is the Kafka record's key"},
			{Name: "format", Default: "json", Enum: []string{"json", "msgpack"}, Desc: "record value: json or msgpack"},
			{Name: "timestamp_key", Default: "@timestamp", Desc: "key of the record time"},
			{Name: "timestamp_format", Default: "double", Enum: format.DateFormatValues, Desc: "format of the record time"},
			{Name: "compression", Default: "none", Enum: []string{"none", "gzip", "snappy", "lz4", "zstd"}, Desc: "batch compression"},
			{Name: "timeout", Type: plugin.Seconds, Default: "30s", Desc: "how long a chunk may take to be acknowledged before RETRY"},
			{Name: "transactional_id", Desc: "Floe: write each chunk in one Kafka transaction under this id (unique per output process)"},
			{Name: "exactly_once", Type: plugin.Bool, Default: "on", Desc: "Floe: with transactional_id, commit a marker per chunk and skip redelivered chunks already committed"},
			{Name: "exactly_once_topic", Default: "__floe_chunks", Desc: "Floe: topic of the chunk markers (created if missing, compacted, with exactly_once_retention)"},
			{Name: "exactly_once_retention", Type: plugin.Seconds, Default: "7d", Desc: "Floe: how long a chunk's marker is kept: a chunk redelivered later is written again"},
			{Name: "client_id", Default: "floe", Desc: "Kafka client id"},
			{Name: "queue_full_retries", Type: plugin.Int, Default: "10", Desc: "accepted for compatibility; franz-go blocks instead of failing on a full queue"},
			{Name: "rdkafka.compression.codec", Enum: []string{"none", "gzip", "snappy", "lz4", "zstd"}, Desc: "same as compression"},
			{Name: "rdkafka.client.id", Desc: "same as client_id"},
			{Name: "rdkafka.request.required.acks", Enum: []string{"-1", "all"}, Desc: "Floe always waits for all in-sync replicas"},
			{Name: "rdkafka.enable.idempotence", Type: plugin.Bool, Default: "true", Desc: "Floe's producer is always idempotent"},
			{Name: "rdkafka.security.protocol", Enum: []string{"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"}, Desc: "transport security; ssl turns tls on"},
			{Name: "rdkafka.sasl.mechanism", Enum: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, Desc: "SASL mechanism"},
			{Name: "rdkafka.sasl.username", Desc: "SASL user"},
			{Name: "rdkafka.sasl.password", Desc: "SASL password"},
		},
		NewOutput: New,
	}
}

// Output produces chunks to Kafka. It is safe for concurrent flushes.
type Output struct {
	log        *slog.Logger
	cl         *kgo.Client
	topics     []string
	topicKey   string
	dynamic    bool
	key        []byte
	keyField   string
	msgpack    bool
	json       *format.JSON
	tsKey      string
	dateFormat format.DateFormat
	timeout    time.Duration
	txn        bool
	txnMu      sync.Mutex // one transaction at a time per producer
	opts       []kgo.Opt  // to rebuild the producer after a failed abort
	clMu       sync.Mutex // guards replacing cl against Close, which must not wait for a flush
	eo         *markers   // nil unless exactly once is on; guarded by txnMu
}

// New builds a kafka output; brokers are reached lazily, so a cluster that is
// not up yet makes flushes RETRY rather than failing the start.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	o := &Output{log: set.Logger, topicKey: p.String("topic_key"), dynamic: p.Bool("dynamic_topic"),
		keyField: p.String("message_key_field"), tsKey: p.String("timestamp_key")}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	for t := range strings.SplitSeq(p.String("topics"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.topics = append(o.topics, t)
		}
	}
	if len(o.topics) == 0 {
		return nil, p.Errorf("topics", "topics is empty")
	}
	for _, t := range o.topics {
		if err := checkTopic(t); err != nil {
			return nil, p.Errorf("topics", "%v", err)
		}
	}
	var brokers []string
	for b := range strings.SplitSeq(p.String("brokers"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return nil, p.Errorf("brokers", "brokers is empty")
	}
	if p.Has("message_key") {
		o.key = []byte(p.String("message_key"))
	}
	df, ok := format.ParseDateFormat(p.String("timestamp_format"))
	if !ok {
		return nil, p.Errorf("timestamp_format", "unknown timestamp_format %q", p.String("timestamp_format"))
	}
	o.dateFormat = df
	o.msgpack = strings.EqualFold(p.String("format"), "msgpack")
	var err error
	if o.json, err = format.NewJSON(format.JSONStream, o.tsKey, p.String("timestamp_format"), set.Service.JSON); err != nil {
		return nil, p.Errorf("timestamp_format", "%v", err)
	}
	o.timeout = time.Duration(p.Seconds("timeout") * float64(time.Second))
	if o.timeout <= 0 {
		return nil, p.Errorf("timeout", "timeout must be positive")
	}
	comp := p.String("compression")
	if p.Has("rdkafka.compression.codec") {
		comp = p.String("rdkafka.compression.codec")
	}
	codec := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[strings.ToLower(comp)]
	if !p.Bool("rdkafka.enable.idempotence") {
		return nil, p.Errorf("rdkafka.enable.idempotence", "Floe's kafka producer is always idempotent; remove this key")
	}
	clientID := p.String("client_id")
	if p.Has("rdkafka.client.id") {
		clientID = p.String("rdkafka.client.id")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(o.timeout),
		kgo.WithLogger(slogLogger{o.log}),
	}
	txnID := strings.TrimSpace(p.String("transactional_id"))
	o.txn = txnID != ""
	proto := strings.ToLower(p.String("rdkafka.security.protocol"))
	tp := p
	if (proto == "ssl" || proto == "sasl_ssl") && !p.Bool("tls") {
		// ssl turns tls on, and with it the tls.* keys (tls.ca_file of a
		// private CA would otherwise be ignored for the system roots).
		sec := *p.Section
		sec.Props = append([]config.Prop{{Key: "tls", Value: "on", File: sec.File, Line: sec.Line}}, sec.Props...)
		tp = plugin.NewProps(Spec(), &sec)
	}
	tc, err := sinkutil.TLSConfig(tp)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if mech := p.String("rdkafka.sasl.mechanism"); mech != "" || strings.HasPrefix(proto, "sasl") {
		user, pass := p.String("rdkafka.sasl.username"), p.String("rdkafka.sasl.password")
		if user == "" {
			return nil, p.Errorf("rdkafka.sasl.username", "SASL needs rdkafka.sasl.username and rdkafka.sasl.password")
		}
		switch strings.ToUpper(mech) {
		case "", "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		}
	}
	if o.txn && p.Bool("exactly_once") {
		topic := strings.TrimSpace(p.String("exactly_once_topic"))
		if err := checkTopic(topic); err != nil {
			return nil, p.Errorf("exactly_once_topic", "%v", err)
		}
		if slices.Contains(o.topics, topic) {
			return nil, p.Errorf("exactly_once_topic", "%s is also in topics; the markers need a topic of their own", topic)
		}
		retention := time.Duration(p.Seconds("exactly_once_retention") * float64(time.Second))
		if retention <= 0 {
			return nil, p.Errorf("exactly_once_retention", "exactly_once_retention must be positive")
		}
		// The consumer of the markers shares the producer's connection
		// settings (TLS, SASL) but none of its transactional state.
		mk, err := kgo.NewClient(append(slices.Clone(opts), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
		if err != nil {
			return nil, p.Errorf("brokers", "kafka client: %v", err)
		}
		o.eo = newMarkers(topic, txnID, retention, mk, o.log)
	}
	if o.txn {
		opts = append(opts, kgo.TransactionalID(txnID), kgo.TransactionTimeout(o.timeout+10*time.Second))
	}
	o.opts = opts
	if o.cl, err = kgo.NewClient(opts...); err != nil {
		if o.eo != nil {
			o.eo.cl.Close()
		}
		return nil, p.Errorf("brokers", "kafka client: %v", err)
	}
	return o, nil
}

// Close releases the clients; every flush already waited for its records.
func (o *Output) Close(context.Context) error {
	o.clMu.Lock()
	defer o.clMu.Unlock()
	o.cl.Close()
	if o.eo != nil {
		o.eo.cl.Close()
	}
	return nil
}

// Skipped is how many chunks were answered OK without being written because
// their marker showed them committed already (redeliveries).
func (o *Output) Skipped() int64 {
	if o.eo == nil {
		return 0
	}
	return o.eo.skipped.Load()
}

// Flush produces every record of c and waits until all are acknowledged.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	recs, err := o.records(c)
	if err != nil {
		return plugin.Permanent(fmt.Errorf("kafka chunk %s: %w", c.ID, err))
	}
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout+5*time.Second)
	defer cancel()
	if o.txn {
		return o.flushTxn(ctx, c, recs)
	}
	return o.produce(ctx, recs)
}

// flushTxn writes recs in one transaction: a chunk that fails on one
// partition after others took their records is aborted as a whole, so
// read_committed consumers never see the part that the retry writes again.
// With exactly once, the chunk's marker is in the same transaction, and a
// chunk whose marker is committed already is not written again.
func (o *Output) flushTxn(ctx context.Context, c *chunk.Chunk, recs []*kgo.Record) error {
	o.txnMu.Lock()
	defer o.txnMu.Unlock()
	var key string
	if o.eo != nil {
		if o.eo.stale {
			if err := o.eo.load(ctx, o.cl); err != nil {
				if errors.Is(err, errProducerID) && ctx.Err() == nil {
					o.rebuild(err)
				}
				return err
			}
		}
		key = sinkutil.ChunkKey(c)
		if o.eo.has(key) {
			o.eo.skipped.Add(1)
			o.log.Info("kafka: chunk already committed, not written again", "chunk", key, "records", len(recs))
			return nil
		}
		recs = append(recs, o.eo.record(key, len(recs)))
	}
	if err := o.cl.BeginTransaction(); err != nil {
		o.rebuild(fmt.Errorf("begin transaction: %w", err))
		return fmt.Errorf("kafka begin transaction: %w", err)
	}
	if err := o.produce(ctx, recs); err != nil {
		// Abort under a fresh deadline: an abort cut short leaves the
		// producer unusable for the next chunk.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.timeout+5*time.Second)
		defer cancel()
		if aerr := o.cl.AbortBufferedRecords(actx); aerr != nil {
			o.log.Warn("kafka: abort buffered records", "error", aerr)
		}
		if aerr := o.cl.EndTransaction(actx, kgo.TryAbort); aerr != nil {
			o.log.Warn("kafka: abort transaction", "error", aerr)
			o.rebuild(aerr)
		}
		return err
	}
	if err := o.cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryCommit); err != nil {
		// The commit may have happened even so (its answer was lost): the
		// abort retry bumps the producer epoch, which settles the
		// transaction either way, and the markers are read again before
		// this chunk is decided on.
		if o.eo != nil {
			o.eo.stale = true
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.timeout+5*time.Second)
		defer cancel()
		if aerr := o.cl.EndTransaction(actx, kgo.TryAbort); aerr != nil {
			o.log.Warn("kafka: abort transaction after a failed commit", "error", aerr)
			o.rebuild(aerr)
		}
		return fmt.Errorf("kafka commit transaction: %w", err)
	}
	if o.eo != nil {
		o.eo.add(key, time.Now())
	}
	return nil
}

// rebuild replaces a producer whose transaction could not be ended with a
// new one under the same transactional id: the new producer's epoch fences
// the old one and settles its transaction, exactly as after a crash. Called
// with txnMu held.
func (o *Output) rebuild(cause error) {
	cl, err := kgo.NewClient(o.opts...)
	if err != nil {
		o.log.Warn("kafka: new producer after a failed transaction", "error", err, "cause", cause)
		return
	}
	o.clMu.Lock()
	o.cl.Close()
	o.cl = cl
	o.clMu.Unlock()
	if o.eo != nil {
		o.eo.stale = true
	}
}

func (o *Output) produce(ctx context.Context, recs []*kgo.Record) error {
	var first error
	for _, r := range o.cl.ProduceSync(ctx, recs...) {
		if r.Err != nil && (first == nil || permanent(r.Err)) {
			first = fmt.Errorf("kafka produce to %s: %w", r.Record.Topic, r.Err)
		}
	}
	if first == nil {
		return nil
	}
	if permanent(first) {
		return plugin.Permanent(first)
	}
	return first
}

// permanent reports answers that no retry can change.
func permanent(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.CorruptMessage, kerr.InvalidTopicException, kerr.InvalidRequiredAcks} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (o *Output) records(c *chunk.Chunk) ([]*kgo.Record, error) {
	key := sinkutil.ChunkKey(c)
	recs := make([]*kgo.Record, 0, c.Records)
	index := 0
	err := format.EachRecord(c.Data, func(r *format.Record) error {
		topic := o.topics[0]
		if o.topicKey != "" {
			if v, ok := field(r.Body, o.topicKey); ok && (o.dynamic || slices.Contains(o.topics, v)) {
				if err := checkTopic(v); err != nil {
					return fmt.Errorf("record %d: topic_key %s: %w", index, o.topicKey, err)
				}
				topic = v
			}
		}
		rec := &kgo.Record{Topic: topic, Key: o.key,
			Headers: []kgo.RecordHeader{{Key: HeaderID, Value: []byte(sinkutil.RecordID(key, index))}}}
		if o.keyField != "" {
			if v, ok := field(r.Body, o.keyField); ok {
				rec.Key = []byte(v)
			}
		}
		var err error
		if o.msgpack {
			rec.Value, err = o.appendMsgpack(nil, r)
		} else {
			rec.Value, err = o.json.AppendRecord(nil, r)
		}
		if err != nil {
			return fmt.Errorf("record %d at byte offset %d: %w", index, r.Offset, err)
		}
		recs = append(recs, rec)
		index++
		return nil
	})
	return recs, err
}

// appendMsgpack writes the record's body as a map with the time first under
// timestamp_key, as out_kafka's msgpack format does.
func (o *Output) appendMsgpack(dst []byte, r *format.Record) ([]byte, error) {
	dst = event.AppendMapHeader(dst, format.MapLen(r.Body)+1)
	dst = event.AppendString(dst, o.tsKey)
	dst = event.AppendFloat64(dst, float64(r.Time.Sec)+float64(r.Time.Nsec)/1e9)
	err := format.Pairs(r.Body, func(k, v []byte) bool {
		dst = append(dst, k...)
		dst = append(dst, v...)
		return true
	})
	return dst, err
}

// field returns the string value of key in a MessagePack map.
func field(body []byte, key string) (string, bool) {
	var out string
	var found bool
	_ = format.Pairs(body, func(k, v []byte) bool {
		if ks, ok := format.Str(k); ok && string(ks) == key {
			if vs, ok := format.Str(v); ok {
				out, found = string(vs), true
			}
			return false
		}
		return true
	})
	return out, found
}

// checkTopic applies Kafka's topic name rules, so a bad name is refused
// before the broker sees it.
func checkTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("%q is not a valid Kafka topic name", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q is not a valid Kafka topic name (letters, digits, '.', '_' and '-' only)", t)
		}
	}
	return nil
}

// slogLogger passes the client's warnings and errors to Floe's log; its
// per-request chatter stays out.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l slogLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	l.log.Log(context.Background(), lv, "kafka: "+msg, kv...)
}
