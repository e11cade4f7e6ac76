package s3out

import (
	"context"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

func openOut(t testing.TB, lines ...string) *Output {
	t.Helper()
	out, err := New(context.Background(), plugin.Settings{Name: "s3.0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return out.(*Output)
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// Keys come from the tag and the first record's time, never the clock; a
// redelivered chunk overwrites its own object instead of adding one.
func TestKeyFormatAndRedelivery(t *testing.T) {
	s := newFakeS3(t, "s3_key_format /logs/$TAG[1]/%Y/%m/%d/%H-%M-%S/$TAG-$UUID.jsonl")
	out := openOut(t, s.Config()...)
	c := outputtest.Chunk(0, 10) // first record at 1700000000 = 2023-11-14T22:13:20Z
	for range 3 {
		if err := out.Flush(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	objs := s.Objects(t)
	if len(objs) != 1 {
		t.Fatalf("got objects %v, want one (redeliveries overwrite it)", keys(objs))
	}
	k := keys(objs)[0]
	if !strings.HasPrefix(k, "logs/log/2023/11/14/22-13-20/app.log-") || !strings.HasSuffix(k, ".jsonl") {
		t.Errorf("key %q", k)
	}
	// Another output instance (a restarted stage) names it the same.
	if err := openOut(t, s.Config()...).Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := keys(s.Objects(t)); len(got) != 1 || got[0] != k {
		t.Errorf("after a new instance: %v, want [%s]", got, k)
	}
	if err := outputtest.Diff(seqRange(0, 10), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
	line := strings.SplitN(string(objs[k]), "\n", 2)[0]
	if want := `{"date":"2023-11-14T22:13:20.123456Z","seq":0,"message":"record 0"}`; line != want {
		t.Errorf("first line %s, want %s", line, want)
	}
}

func seqRange(first int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = first + int64(i)
	}
	return s
}

// total_file_size bounds objects: a bigger chunk becomes several, numbered by
// $INDEX within the chunk.
func TestTotalFileSizeSplits(t *testing.T) {
	s := newFakeS3(t, "s3_key_format /$TAG/$INDEX", "total_file_size 1K")
	out := openOut(t, s.Config()...)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 100)); err != nil {
		t.Fatal(err)
	}
	objs := s.Objects(t)
	if len(objs) < 5 {
		t.Fatalf("got %d objects, want the chunk split into objects of at most 1K", len(objs))
	}
	for k, b := range objs {
		if len(b) > 1000 {
			t.Errorf("object %s has %d bytes > total_file_size", k, len(b))
		}
		if !strings.HasPrefix(k, "app.log/") {
			t.Errorf("key %q", k)
		}
	}
	// $INDEX numbers the objects of the chunk; $UUID (appended) tells
	// this chunk's objects from another's.
	first := 0
	for _, k := range keys(objs) {
		if strings.HasPrefix(k, "app.log/0-") {
			first++
		}
	}
	if first != 1 {
		t.Errorf("want one object app.log/0-<uuid> among %v", keys(objs))
	}
	if err := outputtest.Diff(seqRange(0, 100), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
}

// Floe does not hold records back to fill total_file_size or wait for
// upload_timeout: a chunk is acked only once S3 holds it, so every flush
// stores its own objects before answering OK, however large
// total_file_size and long upload_timeout are, and two flushes are never
// merged into one object (nor, with $INDEX numbering objects within a
// chunk only, does the second overwrite the first).
func TestUploadTimeoutDoesNotHoldRecords(t *testing.T) {
	s := newFakeS3(t, "s3_key_format /$TAG/$INDEX", "total_file_size 100M", "upload_timeout 1h")
	out := openOut(t, s.Config()...)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 3)); err != nil {
		t.Fatal(err)
	}
	// No wait: Flush answered OK, so the records are in S3 now.
	if err := outputtest.Diff(seqRange(0, 3), s.Seqs(t)); err != nil {
		t.Fatalf("right after the first flush: %v", err)
	}
	if err := out.Flush(context.Background(), outputtest.Chunk(3, 4)); err != nil {
		t.Fatal(err)
	}
	if err := outputtest.Diff(seqRange(0, 7), s.Seqs(t)); err != nil {
		t.Fatalf("right after the second flush: %v", err)
	}
	objs := s.Objects(t)
	if len(objs) != 2 {
		t.Fatalf("%d objects for two flushes, want one each: %v", len(objs), keys(objs))
	}
	for k, b := range objs {
		if n := strings.Count(string(b), "\n"); n != 3 && n != 4 {
			t.Errorf("object %s holds %d records, want one flush's (3 or 4)", k, n)
		}
	}
}

// An object above upload_chunk_size goes up in parts; S3 reassembles it.
func TestMultipart(t *testing.T) {
	s := newFakeS3(t, "upload_chunk_size 5M", "s3_key_format /big/$TAG")
	out := openOut(t, s.Config()...)
	big := strings.Repeat("x", 1000)
	var data []byte
	const n = 12000 // ~12 MB of JSON: three parts
	for i := range n {
		ev := event.Event{Time: event.Time{Sec: 1700000000}, Body: plugintest.KV("seq", int64(i), "pad", big)}
		data = ev.AppendMsgpack(data)
	}
	c := &chunk.Chunk{ID: "big", Tag: "app.log", Records: n, Data: data}
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if s.parts < 2 {
		t.Errorf("%d parts uploaded, want a multipart upload", s.parts)
	}
	if err := outputtest.Diff(seqRange(0, n), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
	// use_put_object sends the same object in one request.
	s2 := newFakeS3(t, "use_put_object on")
	if err := openOut(t, s2.Config()...).Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if s2.parts != 0 {
		t.Errorf("use_put_object: %d parts", s2.parts)
	}
}

func TestLogKey(t *testing.T) {
	s := newFakeS3(t, "log_key message", "s3_key_format /k")
	out := openOut(t, s.Config()...)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 2)); err != nil {
		t.Fatal(err)
	}
	objs := s.Objects(t)
	if len(objs) != 1 || string(objs[keys(objs)[0]]) != "record 0\nrecord 1\n" {
		t.Fatalf("got %q", objs)
	}
}

func TestNoSuchBucketIsPermanent(t *testing.T) {
	s := newFakeS3(t)
	lines := append([]string{"bucket missing"}, s.Config()[1:]...)
	out := openOut(t, lines...)
	err := out.Flush(context.Background(), outputtest.Chunk(0, 1))
	if !plugin.IsPermanent(err) || !strings.Contains(err.Error(), "s3://missing/") {
		t.Fatalf("got %v; want ERROR naming the bucket", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ lines []string }{
		{[]string{"region us-east-1"}},
		{[]string{"bucket b", "compression parquet"}},
		{[]string{"bucket b", "upload_chunk_size 1M"}},
		{[]string{"bucket b", "role_arn arn:aws:iam::1:role/x"}},
		{[]string{"bucket b", "s3_key_format /$TAG[x]"}},
	} {
		key := strings.Fields(c.lines[len(c.lines)-1])[0]
		if key == "region" {
			key = "bucket"
		}
		_, err := New(context.Background(), plugin.Settings{Name: "s3.0"}, plugintest.Props(Spec(), c.lines...))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: got %v, want an error naming %s", c.lines, err, key)
		}
	}
}

func BenchmarkFlush(b *testing.B) {
	for _, mode := range [][]string{{"s3_key_format /$TAG/$UUID"}, {"s3_key_format /$TAG/$UUID", "compression gzip"}} {
		b.Run(strings.Join(mode, ","), func(b *testing.B) {
			s := newFakeS3(b, mode...)
			out := openOut(b, s.Config()...)
			const n = 500
			chunks := make([]*chunk.Chunk, 64)
			for i := range chunks {
				chunks[i] = outputtest.Chunk(int64(i*n), n)
			}
			var bytes int64
			for i := 0; b.Loop(); i++ {
				c := chunks[i%len(chunks)]
				if err := out.Flush(context.Background(), c); err != nil {
					b.Fatal(err)
				}
				bytes += int64(len(c.Data))
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*n)/sec, "records/s")
			b.ReportMetric(float64(bytes)/sec/1e6, "MB/s")
		})
	}
}
