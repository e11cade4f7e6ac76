package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

// The output stage delivering to a user's NATS JetStream stream is SIGKILLed
// several times while events flow; the mesh redelivers the chunks it had not
// acked, the output republishes them with the same Nats-Msg-Ids, and the
// user's stream ends up with every event exactly once.
func TestExactlyOnceNATSSinkAcrossOutputKills(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 400000
	dir := t.TempDir()
	var in bytes.Buffer
	for i := range total {
		fmt.Fprintf(&in, `{"seq":%d,"payload":"event-%d"}`+"\n", i, i)
	}

	// The user's NATS server, separate from Floe's mesh.
	sink := natstest.Run(t)
	snc, sjs := sink.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stream, err := sjs.CreateStream(ctx, jetstream.StreamConfig{Name: "USER_LOGS", Subjects: []string{"user.logs.>"},
		Storage: jetstream.FileStorage, Duplicates: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Every publish, duplicates included, seen on core NATS: shows that
	// redelivered messages did reach the server and were dropped there.
	var pubMu sync.Mutex
	published := map[string]int{}
	if _, err := snc.Subscribe("user.logs.>", func(m *nats.Msg) {
		pubMu.Lock()
		published[m.Header.Get(jetstream.MsgIDHeader)]++
		pubMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}

	_, meshURL := startNATS(t, filepath.Join(dir, "mesh"))
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    nats.ack_wait 3
    Flush     0.2
    nats.url  %s

[INPUT]
    Name  stdin
    Tag   seq

[OUTPUT]
    Name     nats
    Match    seq
    url      nats://%s
    subject  user.logs.$TAG
    format   json_lines
    timeout  5s
    max_message_size 64K
`, meshURL, delayingProxy(t, sink.Srv.Addr().String(), 150*time.Millisecond)))

	// Read the stream as it grows: seqs seen and how often.
	seen := make([]int, total)
	var next uint64 = 1
	records, corrupt := 0, 0
	read := func() int {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		for ; next <= info.State.LastSeq; next++ {
			m, err := stream.GetMsg(ctx, next)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("get %d: %v", next, err)
			}
			if m.Data, err = chunk.Payload(m.Header, m.Data); err != nil {
				t.Fatal(err)
			}
			n, bad := countSeqs(m.Data, seen)
			records += n
			corrupt += bad
		}
		return records
	}
	republished := func() int {
		pubMu.Lock()
		defer pubMu.Unlock()
		n := 0
		for _, c := range published {
			n += c - 1
		}
		return n
	}
	kills, atKill := killOutputMidStream(t, cfg, in.Bytes(), total, read, republished)
	t.Logf("%d kills with %v records delivered at each; %d records stored; %d messages republished after kills and dropped by JetStream as duplicates",
		kills, atKill, records, republished())
	checkOnce(t, seen, corrupt)
}

// killOutputMidStream runs the stages of cfg on in and SIGKILLs the output
// stage whenever more records arrived since the last kill (so it was
// delivering), at least 4 times and until redone reports that a kill landed
// between a write to the sink and its acknowledgement, so that the mesh
// redelivered records the sink already held, which is what is tested.
func killOutputMidStream(t *testing.T, cfg string, in []byte, total int, delivered, redone func() int) (int, []int) {
	start := func(name, stage string) *proc {
		p := startFloe(t, name, nil, "run", "--stage="+stage, "-c", cfg)
		p.waitLog(`floe started`, 30*time.Second)
		return p
	}
	start("filter", "filter")
	start("router", "router")
	output := start("output", "output")
	ingest := startFloe(t, "ingest", in, "run", "--stage=ingest", "-c", cfg)
	kills := 0
	var atKill []int
	deadline := time.Now().Add(5 * time.Minute)
	for records := delivered(); records < total; records = delivered() {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records in the sink after %d kills", records, total, kills)
		}
		time.Sleep(50 * time.Millisecond)
		if (kills < 4 || redone() == 0) && kills < 30 && records > (kills+1)*total/40 && (kills == 0 || records > atKill[kills-1]) {
			output.kill()
			kills++
			atKill = append(atKill, records)
			time.Sleep(300 * time.Millisecond)
			output = start("output", "output")
		}
	}
	if err := ingest.wait(60 * time.Second); err != nil {
		t.Fatalf("ingest did not finish at end of stdin: %v", err)
	}
	time.Sleep(3 * time.Second) // let any late redelivery land before the final count
	delivered()
	if kills < 4 {
		t.Fatalf("only %d kills landed before the sink was complete", kills)
	}
	for i, n := range atKill {
		if n <= 0 || n >= total {
			t.Fatalf("kill %d landed with %d of %d records delivered: not mid-stream", i+1, n, total)
		}
	}
	if redone() == 0 {
		t.Fatalf("no kill of %d landed between a write and its acknowledgement: nothing was redelivered, the deduplication was not exercised", kills)
	}
	return kills, atKill
}

// countSeqs adds the seq of every JSON line of data to seen and returns how
// many lines it counted and how many were not the events sent.
func countSeqs(data []byte, seen []int) (n, corrupt int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec struct {
			Seq     int    `json:"seq"`
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Seq < 0 || rec.Seq >= len(seen) ||
			rec.Payload != fmt.Sprintf("event-%d", rec.Seq) {
			corrupt++
			continue
		}
		seen[rec.Seq]++
		n++
	}
	return n, corrupt
}

func checkOnce(t *testing.T, seen []int, corrupt int) {
	t.Helper()
	var missing, dups []int
	for seq, n := range seen {
		switch {
		case n == 0:
			missing = append(missing, seq)
		case n > 1:
			dups = append(dups, seq)
		}
	}
	if corrupt > 0 || len(missing) > 0 || len(dups) > 0 {
		t.Fatalf("sink: %d corrupt lines, %d missing (first %v), %d duplicated (first %v)",
			corrupt, len(missing), firstSeqs(missing), len(dups), firstSeqs(dups))
	}
}

func firstSeqs(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// The same with an S3 bucket (gofakes3 in this process): object keys depend
// only on the chunk, so a chunk redelivered after the output stage was killed
// overwrites its objects, and every event is in exactly one object. Small
// objects make a chunk several uploads, so kills land inside a chunk.
func TestExactlyOnceS3SinkAcrossOutputKills(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 200000 // 4+ kills still land inside chunks; the fake S3 sets the pace
	dir := t.TempDir()
	var in bytes.Buffer
	for i := range total {
		fmt.Fprintf(&in, `{"seq":%d,"payload":"event-%d"}`+"\n", i, i)
	}
	backend := s3mem.New()
	if err := backend.CreateBucket("logs"); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	var putMu sync.Mutex
	puts := map[string]int{} // PUTs of each object path: more than one is a rewrite
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			putMu.Lock()
			puts[r.URL.Path]++
			putMu.Unlock()
		}
		fake.ServeHTTP(w, r)
		if r.Method == http.MethodPut {
			// The object is stored; its answer (still buffered) comes late,
			// widening the window a kill must hit to test a rewrite.
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer srv.Close()

	_, meshURL := startNATS(t, filepath.Join(dir, "mesh"))
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    nats.ack_wait 3
    Flush     0.2
    nats.url  %s

[INPUT]
    Name  stdin
    Tag   seq

[OUTPUT]
    Name               s3
    Match              seq
    bucket             logs
    endpoint           %s
    access_key_id      test
    secret_access_key  test
    s3_key_format      /floe/$TAG/%%Y/%%m/%%d/$UUID.jsonl
    total_file_size    64K
`, meshURL, srv.URL))

	cl := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}})
	ctx := context.Background()
	seen := make([]int, total)
	read := map[string]bool{}
	records, corrupt := 0, 0
	delivered := func() int {
		var token *string
		for {
			list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("logs"), ContinuationToken: token})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			for _, o := range list.Contents {
				if read[*o.Key] {
					continue // a rewrite holds the same records
				}
				g, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs"), Key: o.Key})
				if err != nil {
					t.Fatalf("get %s: %v", *o.Key, err)
				}
				b, err := io.ReadAll(g.Body)
				g.Body.Close()
				if err != nil {
					t.Fatalf("read %s: %v", *o.Key, err)
				}
				read[*o.Key] = true
				n, bad := countSeqs(b, seen)
				records += n
				corrupt += bad
			}
			if list.NextContinuationToken == nil {
				return records
			}
			token = list.NextContinuationToken
		}
	}
	rewritten := func() int {
		putMu.Lock()
		defer putMu.Unlock()
		n := 0
		for _, c := range puts {
			n += c - 1
		}
		return n
	}
	kills, atKill := killOutputMidStream(t, cfg, in.Bytes(), total, delivered, rewritten)
	t.Logf("%d kills with %v records delivered at each; %d records in %d objects; %d objects rewritten by redelivered chunks",
		kills, atKill, records, len(read), rewritten())
	checkOnce(t, seen, corrupt)
}

// delayingProxy forwards TCP connections to target, passing what the server
// sends back only after d: JetStream has stored a message well before its
// PubAck reaches the output, so kills often land in between.
func delayingProxy(t *testing.T, target string, d time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				s, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				go func() { io.Copy(s, c); s.Close() }()
				type piece struct {
					at   time.Time
					data []byte
				}
				ch := make(chan piece, 1024)
				go func() {
					for p := range ch {
						time.Sleep(time.Until(p.at.Add(d)))
						if _, err := c.Write(p.data); err != nil {
							break
						}
					}
					c.Close()
				}()
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						ch <- piece{time.Now(), append([]byte(nil), buf[:n]...)}
					}
					if err != nil {
						close(ch)
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
