package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
    Flush     0.2
    nats.url  %s

[INPUT]
    Name  stdin
    Tag   seq

[OUTPUT]
    Name     nats
    Match    seq
    url      %s
    subject  user.logs.$TAG
    format   json_lines
    timeout  5s
`, meshURL, sink.URL()))

	start := func(name, stage string) *proc {
		p := startFloe(t, name, nil, "run", "--stage="+stage, "-c", cfg)
		p.waitLog(`floe started`, 30*time.Second)
		return p
	}
	start("filter", "filter")
	start("router", "router")
	output := start("output", "output")
	ingest := startFloe(t, "ingest", in.Bytes(), "run", "--stage=ingest", "-c", cfg)

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
			sc := bufio.NewScanner(bytes.NewReader(m.Data))
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				var rec struct {
					Seq     int    `json:"seq"`
					Payload string `json:"payload"`
				}
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Seq < 0 || rec.Seq >= total ||
					rec.Payload != fmt.Sprintf("event-%d", rec.Seq) {
					corrupt++
					continue
				}
				seen[rec.Seq]++
				records++
			}
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
	// Kill the output whenever more records arrived since the last kill (so
	// it was delivering), at least 4 times and until a kill has landed
	// between a publish and its acknowledgement: then the mesh redelivers
	// messages the user's stream already holds, which is what is tested.
	kills := 0
	var atKill []int
	deadline := time.Now().Add(5 * time.Minute)
	for read() < total {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records in the user's stream after %d kills", records, total, kills)
		}
		time.Sleep(50 * time.Millisecond)
		if (kills < 4 || republished() == 0) && kills < 30 && records > (kills+1)*total/40 && (kills == 0 || records > atKill[kills-1]) {
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
	read()
	if kills < 4 {
		t.Fatalf("only %d kills landed before the stream was complete", kills)
	}
	for i, n := range atKill {
		if n <= 0 || n >= total {
			t.Fatalf("kill %d landed with %d of %d records delivered: not mid-stream", i+1, n, total)
		}
	}

	if republished() == 0 {
		t.Fatalf("no kill of %d landed between a publish and its acknowledgement: nothing was redelivered, the deduplication was not exercised", kills)
	}
	var missing, dups []int
	for seq, n := range seen {
		switch {
		case n == 0:
			missing = append(missing, seq)
		case n > 1:
			dups = append(dups, seq)
		}
	}
	t.Logf("%d kills with %v records delivered at each; %d records stored; %d messages republished after kills and dropped by JetStream as duplicates",
		kills, atKill, records, republished())
	if corrupt > 0 || len(missing) > 0 || len(dups) > 0 {
		t.Fatalf("user's stream: %d corrupt lines, %d missing (first %v), %d duplicated (first %v)",
			corrupt, len(missing), firstSeqs(missing), len(dups), firstSeqs(dups))
	}
}

func firstSeqs(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
