package s3out

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

const bucket = "logs"

// fakeS3 is gofakes3 (an S3 implementation over an in-memory backend)
// behind a listener that can be restarted, with one-shot fault answers.
type fakeS3 struct {
	t       testing.TB
	backend *s3mem.Backend
	handler http.Handler
	addr    string
	srv     *http.Server
	extra   []string
	mu      sync.Mutex
	fault   *outputtest.Fault
	puts    int // PutObject and CompleteMultipartUpload requests served
	parts   int // UploadPart requests served
}

func newFakeS3(t testing.TB, extra ...string) *fakeS3 {
	s := &fakeS3{t: t, backend: s3mem.New(), extra: extra}
	s.handler = gofakes3.New(s.backend).Server()
	if err := s.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s.listen(t, freeport.Addr(t))
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *fakeS3) listen(t testing.TB, addr string) {
	ln, err := freeport.Listen(addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go s.srv.Serve(ln)
}

func (s *fakeS3) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.fault
	s.fault = nil
	if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
		s.parts++
	} else if r.Method == http.MethodPut || (r.Method == http.MethodPost && r.URL.Query().Has("uploadId")) {
		s.puts++
	}
	s.mu.Unlock()
	if f != nil {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		if *f == outputtest.Permanent {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>refused</Message></Error>`)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
		}
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *fakeS3) Config() []string {
	return append([]string{"bucket " + bucket, "endpoint http://" + s.addr, "region us-east-1",
		"access_key_id test", "secret_access_key test", "timeout 10s"}, s.extra...)
}

func (s *fakeS3) client() *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + s.addr), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}})
}

// Objects returns every object's key and (decompressed) body.
func (s *fakeS3) Objects(t testing.TB) map[string][]byte {
	ctx := context.Background()
	out := map[string][]byte{}
	cl := s.client()
	list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, o := range list.Contents {
		g, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			t.Fatalf("get %s: %v", *o.Key, err)
		}
		b, _ := io.ReadAll(g.Body)
		g.Body.Close()
		if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("gunzip %s: %v", *o.Key, err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatalf("gunzip %s: %v", *o.Key, err)
			}
		}
		out[*o.Key] = b
	}
	return out
}

func (s *fakeS3) Seqs(t testing.TB) []int64 {
	objs := s.Objects(t)
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var seqs []int64
	for _, k := range keys {
		sc := bufio.NewScanner(bytes.NewReader(objs[k]))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var rec struct {
				Seq *int64 `json:"seq"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Seq == nil {
				t.Fatalf("object %s line %q is not a record with a seq: %v", k, sc.Bytes(), err)
			}
			seqs = append(seqs, *rec.Seq)
		}
	}
	return seqs
}

func (s *fakeS3) Inject(f outputtest.Fault) bool {
	s.mu.Lock()
	s.fault = &f
	s.mu.Unlock()
	return true
}

func (s *fakeS3) Restart(t testing.TB) {
	addr := s.addr
	s.srv.Close()
	s.listen(t, addr)
}

func TestContract(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newFakeS3(t) }, outputtest.Options{})
}

func TestContractGzip(t *testing.T) {
	outputtest.Run(t, Spec(), func(t *testing.T) outputtest.Sink { return newFakeS3(t, "compression gzip") }, outputtest.Options{})
}
