// Package s3out is the s3 output (Fluent Bit's out_s3 keys) on the AWS SDK
// for Go v2: every chunk is stored as one object, or several when it is
// larger than total_file_size, and Flush answers OK only once S3 holds them.
//
// Keys: s3_key_format (default /fluent-bit-logs/$TAG/%Y/%m/%d/%H/%M/%S)
// takes $TAG, $TAG[n] (parts split on s3_key_format_tag_delimiters), $INDEX,
// $UUID and strftime sequences. Objects are JSON lines (json_date_key and
// json_date_format, iso8601 by default), or the values of log_key one a line;
// compression gzip compresses them (Content-Encoding: gzip). Objects larger
// than upload_chunk_size are sent by multipart upload unless use_put_object
// is on.
//
// Exactly once: an object's key depends only on the chunk and the records it
// holds, never on the clock or a counter: the strftime sequences take the time
// of the object's first record, $INDEX is the object's number within its
// chunk, and $UUID (appended as "-$UUID" when the format has no $UUID) is a
// digest of the chunk's Msg-Id and the first record's index.
// A chunk redelivered after a crash overwrites its objects with the same
// bytes instead of adding copies.
//
// Deviations: Floe does not keep records in store_dir to build objects of
// total_file_size over several flushes, because a chunk is acknowledged only
// once S3 holds it; objects are at most total_file_size and are written at
// every flush, so upload_timeout is accepted and has no effect (an object
// is never older than a flush interval when it is written). Answers: 5xx,
// throttling, timeouts and connection errors are RETRY (the SDK's own retries
// are off: the mesh retries); other 4xx (no such bucket, access denied, a
// refused argument) are ERROR. role_arn, arrow and parquet are refused.
package s3out

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	"github.com/floe-io/floe/internal/plugins/output/sinkutil"
)

const minPart = 5 << 20 // S3's smallest part but the last

// Spec describes the s3 output plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindOutput,
		Name: "s3",
		Desc: "Send to S3",
		Keys: []plugin.Key{
			{Name: "bucket", Desc: "S3 bucket name (required)"},
			{Name: "region", Default: "us-east-1", Desc: "AWS region"},
			{Name: "endpoint", Desc: "custom endpoint (MinIO, a test server); path-style addressing"},
			{Name: "s3_key_format", Default: "/fluent-bit-logs/$TAG/%Y/%m/%d/%H/%M/%S", Desc: "object key template"},
			{Name: "s3_key_format_tag_delimiters", Default: ".", Desc: "characters splitting the tag for $TAG[n]"},
			{Name: "total_file_size", Type: plugin.Size, Default: "100M", Desc: "largest object; a bigger chunk becomes several"},
			{Name: "upload_chunk_size", Type: plugin.Size, Default: "5242880", Desc: "part size of multipart uploads (at least 5M)"},
			{Name: "upload_timeout", Type: plugin.Seconds, Default: "10m", Desc: "accepted, no effect: every flush is uploaded before it is acked"},
			{Name: "use_put_object", Type: plugin.Bool, Default: "off", Desc: "always send objects with PutObject"},
			{Name: "compression", Enum: []string{"gzip", "arrow", "parquet"}, Desc: "gzip compresses objects"},
			{Name: "content_type", Desc: "Content-Type of objects"},
			{Name: "canned_acl", Desc: "canned ACL of objects"},
			{Name: "storage_class", Desc: "storage class of objects"},
			{Name: "log_key", Desc: "write only this key's value, one a line"},
			{Name: "json_date_key", Default: "date", Desc: "key of the record time; false disables it"},
			{Name: "json_date_format", Default: "iso8601", Enum: format.DateFormatValues, Desc: "format of the record time"},
			{Name: "send_content_md5", Type: plugin.Bool, Default: "false", Desc: "accepted; the SDK sends checksums"},
			{Name: "store_dir", Default: "/tmp/fluent-bit/s3", Desc: "accepted; Floe buffers in JetStream"},
			{Name: "preserve_data_ordering", Type: plugin.Bool, Default: "true", Desc: "accepted"},
			{Name: "auto_retry_requests", Type: plugin.Bool, Default: "true", Desc: "accepted; the mesh retries"},
			{Name: "role_arn", Desc: "not supported: use the SDK's credential chain (AWS_ROLE_ARN with web identity)"},
			{Name: "profile", Desc: "shared config profile"},
			{Name: "access_key_id", Desc: "Floe: static access key (else the SDK's default chain)"},
			{Name: "secret_access_key", Desc: "Floe: static secret key"},
			{Name: "timeout", Type: plugin.Seconds, Default: "60s", Desc: "Floe: bound of one chunk's upload"},
		},
		NewOutput: New,
	}
}

// Output writes chunks as S3 objects. It is safe for concurrent flushes.
type Output struct {
	log       *slog.Logger
	cl        *s3.Client
	bucket    string
	keyFormat string
	delims    string
	maxObject int
	partSize  int
	putOnly   bool
	gzip      bool
	ctype     string
	acl       string
	class     string
	logKey    string
	json      *format.JSON
	jsonOpts  event.JSONOptions
	timeout   time.Duration
}

// New builds an s3 output.
func New(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	o := &Output{log: set.Logger, bucket: strings.TrimSpace(p.String("bucket")), keyFormat: p.String("s3_key_format"),
		delims: p.String("s3_key_format_tag_delimiters"), maxObject: int(p.Size("total_file_size")),
		partSize: int(p.Size("upload_chunk_size")), putOnly: p.Bool("use_put_object"), ctype: p.String("content_type"),
		acl: p.String("canned_acl"), class: p.String("storage_class"), logKey: p.String("log_key"), jsonOpts: set.Service.JSON}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.bucket == "" {
		return nil, p.Errorf("bucket", "bucket is required")
	}
	if p.Has("role_arn") {
		return nil, p.Errorf("role_arn", "role_arn is not supported by Floe's s3 output; use the AWS SDK's credential chain (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, or a profile with role_arn)")
	}
	switch c := strings.ToLower(p.String("compression")); c {
	case "":
	case "gzip":
		o.gzip = true
	default:
		return nil, p.Errorf("compression", "compression %s is not supported by Floe's s3 output (gzip)", c)
	}
	if o.partSize < 5000000 {
		return nil, p.Errorf("upload_chunk_size", "upload_chunk_size must be at least 5M (S3's smallest part)")
	}
	o.partSize = max(o.partSize, minPart) // "5M" is 5,000,000 bytes, S3 wants 5 MiB
	if o.maxObject <= 0 {
		return nil, p.Errorf("total_file_size", "total_file_size must be positive")
	}
	if o.delims == "" {
		o.delims = "."
	}
	if _, err := o.objectKey("a.b", event.Time{}, "x", 0); err != nil {
		return nil, p.Errorf("s3_key_format", "%v", err)
	}
	var err error
	if o.json, err = format.NewJSON(format.JSONLines, p.String("json_date_key"), p.String("json_date_format"), set.Service.JSON); err != nil {
		return nil, p.Errorf("json_date_format", "%v", err)
	}
	o.timeout = time.Duration(p.Seconds("timeout") * float64(time.Second))
	if o.timeout <= 0 {
		return nil, p.Errorf("timeout", "timeout must be positive")
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(p.String("region")), config.WithRetryMaxAttempts(1)}
	if prof := p.String("profile"); prof != "" {
		opts = append(opts, config.WithSharedConfigProfile(prof))
	}
	if id := p.String("access_key_id"); id != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, p.String("secret_access_key"), "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, p.Errorf("region", "aws config: %v", err)
	}
	endpoint := strings.TrimSpace(p.String("endpoint"))
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	o.cl = s3.NewFromConfig(cfg, func(so *s3.Options) {
		if endpoint != "" {
			so.BaseEndpoint = aws.String(endpoint)
			so.UsePathStyle = true
		}
	})
	return o, nil
}

// Flush stores c as one or more objects.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	pieces, err := sinkutil.Split(c.Data, 0, o.maxObject, func(r *event.RawEvent) (int, error) {
		b, err := o.appendRecord(nil, &format.Record{RawEvent: r})
		return len(b), err
	})
	if err != nil {
		return plugin.Permanent(fmt.Errorf("s3 chunk %s: %w", c.ID, err))
	}
	ck := sinkutil.ChunkKey(c)
	for i, pc := range pieces {
		var body []byte
		var first event.Time
		err := format.EachRecord(pc.Data, func(r *format.Record) error {
			if len(body) == 0 {
				first = r.Time
			}
			var err error
			body, err = o.appendRecord(body, r)
			return err
		})
		if err != nil {
			return plugin.Permanent(fmt.Errorf("s3 chunk %s: %w", c.ID, err))
		}
		key, err := o.objectKey(c.Tag, first, sinkutil.RecordID(ck, pc.First), i)
		if err != nil {
			return plugin.Permanent(fmt.Errorf("s3 key: %w", err))
		}
		if o.gzip {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
		}
		if err := o.upload(ctx, key, body); err != nil {
			return classify(o.bucket, key, err)
		}
	}
	return nil
}

func (o *Output) appendRecord(dst []byte, r *format.Record) ([]byte, error) {
	if o.logKey == "" {
		b, err := o.json.AppendRecord(dst, r)
		if err != nil {
			return dst, err
		}
		return append(b, '\n'), nil
	}
	var val []byte
	_ = format.Pairs(r.Body, func(k, v []byte) bool {
		if ks, ok := format.Str(k); ok && string(ks) == o.logKey {
			val = v
			return false
		}
		return true
	})
	if val == nil {
		return dst, nil // out_s3 skips records without log_key
	}
	if s, ok := format.Str(val); ok {
		dst = append(dst, s...)
	} else {
		var err error
		if dst, err = format.AppendJSON(dst, val, o.jsonOpts); err != nil {
			return dst, err
		}
	}
	return append(dst, '\n'), nil
}

func (o *Output) upload(ctx context.Context, key string, body []byte) error {
	var enc, ctype, acl *string
	if o.gzip {
		enc = aws.String("gzip")
	}
	if o.ctype != "" {
		ctype = aws.String(o.ctype)
	}
	if o.acl != "" {
		acl = aws.String(o.acl)
	}
	if o.putOnly || len(body) <= o.partSize {
		in := &s3.PutObjectInput{Bucket: &o.bucket, Key: &key, Body: bytes.NewReader(body), ContentEncoding: enc, ContentType: ctype}
		if acl != nil {
			in.ACL = types.ObjectCannedACL(*acl)
		}
		if o.class != "" {
			in.StorageClass = types.StorageClass(o.class)
		}
		_, err := o.cl.PutObject(ctx, in)
		return err
	}
	in := &s3.CreateMultipartUploadInput{Bucket: &o.bucket, Key: &key, ContentEncoding: enc, ContentType: ctype}
	if acl != nil {
		in.ACL = types.ObjectCannedACL(*acl)
	}
	if o.class != "" {
		in.StorageClass = types.StorageClass(o.class)
	}
	mu, err := o.cl.CreateMultipartUpload(ctx, in)
	if err != nil {
		return err
	}
	abort := func() {
		// A failed upload's parts cost storage until aborted.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := o.cl.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &o.bucket, Key: &key, UploadId: mu.UploadId}); err != nil {
			o.log.Warn("s3: abort multipart upload", "key", key, "error", err)
		}
	}
	var parts []types.CompletedPart
	for n, off := int32(1), 0; off < len(body); n++ {
		end := min(off+o.partSize, len(body))
		if len(body)-end < minPart && end < len(body) && len(body)-off <= 2*o.partSize {
			end = len(body) // fold a short tail into the last part
		}
		out, err := o.cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: &o.bucket, Key: &key, UploadId: mu.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(body[off:end])})
		if err != nil {
			abort()
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
		off = end
	}
	if _, err := o.cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &o.bucket, Key: &key,
		UploadId: mu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		abort()
		return err
	}
	return nil
}

// classify maps S3's answer: 5xx, throttling and transport errors are RETRY,
// other 4xx ERROR.
func classify(bucket, key string, err error) error {
	err = fmt.Errorf("s3 put s3://%s%s: %w", bucket, prefixSlash(key), err)
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		st := re.HTTPStatusCode()
		var api smithy.APIError
		throttled := errors.As(err, &api) && (api.ErrorCode() == "SlowDown" || api.ErrorCode() == "RequestTimeout")
		if st >= 400 && st < 500 && st != http.StatusRequestTimeout && st != http.StatusTooManyRequests && !throttled {
			return plugin.Permanent(err)
		}
	}
	return err
}

func prefixSlash(k string) string {
	if strings.HasPrefix(k, "/") {
		return k
	}
	return "/" + k
}

// objectKey expands s3_key_format for one object.
func (o *Output) objectKey(tag string, t event.Time, id string, index int) (string, error) {
	sum := sha256.Sum256([]byte(id))
	uuid := hex.EncodeToString(sum[:8])
	f := o.keyFormat
	if !strings.Contains(f, "$UUID") {
		// $INDEX numbers objects within one chunk only (upstream's runs
		// across uploads), so it does not keep two chunks apart: without
		// $UUID, /$TAG/$INDEX would overwrite the previous chunk's object.
		f += "-$UUID"
	}
	parts := strings.FieldsFunc(tag, func(r rune) bool { return strings.ContainsRune(o.delims, r) })
	var b strings.Builder
	tm := time.Unix(t.Sec, int64(t.Nsec)).UTC()
	for i := 0; i < len(f); i++ {
		ch := f[i]
		switch {
		case strings.HasPrefix(f[i:], "$TAG["):
			end := strings.IndexByte(f[i:], ']')
			if end < 0 {
				return "", fmt.Errorf("$TAG[ without a closing ]")
			}
			n, err := strconv.Atoi(f[i+5 : i+end])
			if err != nil || n < 0 {
				return "", fmt.Errorf("$TAG[%s]: the index must be a number from 0", f[i+5:i+end])
			}
			if n >= len(parts) {
				return "", fmt.Errorf("tag %q has no part $TAG[%d]", tag, n)
			}
			b.WriteString(parts[n])
			i += end
		case strings.HasPrefix(f[i:], "$TAG"):
			b.WriteString(tag)
			i += 3
		case strings.HasPrefix(f[i:], "$UUID"):
			b.WriteString(uuid)
			i += 4
		case strings.HasPrefix(f[i:], "$INDEX"):
			b.WriteString(strconv.Itoa(index))
			i += 5
		case ch == '%' && i+1 < len(f):
			i++
			switch f[i] {
			case 'Y':
				fmt.Fprintf(&b, "%04d", tm.Year())
			case 'y':
				fmt.Fprintf(&b, "%02d", tm.Year()%100)
			case 'm':
				fmt.Fprintf(&b, "%02d", int(tm.Month()))
			case 'd':
				fmt.Fprintf(&b, "%02d", tm.Day())
			case 'H':
				fmt.Fprintf(&b, "%02d", tm.Hour())
			case 'M':
				fmt.Fprintf(&b, "%02d", tm.Minute())
			case 'S':
				fmt.Fprintf(&b, "%02d", tm.Second())
			case 'j':
				fmt.Fprintf(&b, "%03d", tm.YearDay())
			case 's':
				b.WriteString(strconv.FormatInt(t.Sec, 10))
			case '%':
				b.WriteByte('%')
			default:
				b.WriteByte('%')
				b.WriteByte(f[i])
			}
		default:
			b.WriteByte(ch)
		}
	}
	return strings.TrimPrefix(b.String(), "/"), nil
}
