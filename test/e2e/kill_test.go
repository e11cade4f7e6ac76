package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// 1,000,000 events with sequence numbers through ingest → filter ×2 →
// router → output while filter, router and output are SIGKILLed at random
// moments and restarted: every event arrives, intact; duplicates are counted.
func TestKillStagesMidStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 1000000
	dir := t.TempDir()
	input := filepath.Join(dir, "input.jsonl")
	func() {
		f, err := os.Create(input)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for i := 0; i < total; i++ {
			fmt.Fprintf(w, `{"seq":%d,"payload":"event-%d-%s"}`+"\n", i, i, "abcdefghij")
		}
		w.Flush()
		f.Close()
	}()
	stdin, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush     0.2
    nats.url  %s

[INPUT]
    Name  stdin
    Tag   seq

[FILTER]
    Name    record_modifier
    Match   seq
    Record  checked yes

[OUTPUT]
    Name    file
    Match   seq
    Path    %s
    File    events.jsonl
    Format  plain
    Mkdir   on
`, natsURL, outDir))

	start := func(name, stage string) *proc {
		p := startFloe(t, name, nil, "run", "--stage="+stage, "-c", cfg)
		p.waitLog(`floe started`, 30*time.Second)
		return p
	}
	procs := map[string]*proc{
		"filter-a": start("filter-a", "filter"),
		"filter-b": start("filter-b", "filter"),
		"router":   start("router", "router"),
		"output":   start("output", "output"),
	}
	stages := map[string]string{"filter-a": "filter", "filter-b": "filter", "router": "router", "output": "output"}
	ingest := startFloe(t, "ingest", stdin, "run", "--stage=ingest", "-c", cfg)

	outFile := filepath.Join(outDir, "events.jsonl")
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	names := []string{"filter-a", "filter-b", "router", "output"}
	kills := 0
	deadline := time.Now().Add(4 * time.Minute)
	for countLines(outFile) < total {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events after %d kills", countLines(outFile), total, kills)
		}
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		if kills < 12 {
			name := names[rng.IntN(len(names))]
			procs[name].kill()
			kills++
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			procs[name] = start(name, stages[name])
		}
	}
	if err := ingest.wait(60 * time.Second); err != nil {
		t.Fatalf("ingest did not finish at end of stdin: %v", err)
	}
	time.Sleep(2 * time.Second) // let any redelivery land before counting
	for _, p := range procs {
		if err := p.stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}

	f, err := os.Open(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := make([]uint8, total)
	dups, lines := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines++
		var rec struct {
			Seq     int    `json:"seq"`
			Payload string `json:"payload"`
			Checked string `json:"checked"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d corrupted: %q: %v", lines, sc.Text(), err)
		}
		if rec.Seq < 0 || rec.Seq >= total || rec.Payload != fmt.Sprintf("event-%d-abcdefghij", rec.Seq) || rec.Checked != "yes" {
			t.Fatalf("line %d content changed: %q", lines, sc.Text())
		}
		if seen[rec.Seq] > 0 {
			dups++
		}
		seen[rec.Seq]++
	}
	missing := 0
	for _, s := range seen {
		if s == 0 {
			missing++
		}
	}
	t.Logf("%d kills; %d events delivered, %d duplicates (sink writes repeated after an output was killed before its ack)", kills, lines, dups)
	if missing != 0 {
		t.Fatalf("%d events lost", missing)
	}
}

// The NATS server is stopped (SIGTERM) or crashes (SIGKILL) and is
// restarted on the same file storage while numbered events are still being
// produced and delivered: every event arrives, and only a bounded number
// twice.
func TestNATSRestartMidStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	for _, crash := range []bool{false, true} {
		name := "SIGTERM"
		if crash {
			name = "SIGKILL"
		}
		t.Run(name, func(t *testing.T) { natsRestart(t, crash) })
	}
}

func natsRestart(t *testing.T, crash bool) {
	const total, rate = 40000, 5000
	dir := t.TempDir()
	addr := freePort(t)
	storage := filepath.Join(dir, "nats")
	startServer := func() *proc {
		p := startFloe(t, "nats", nil, "run", "--stage=nats", "--nats-listen="+addr, "--storage-path="+storage)
		p.waitLog(`nats server listening`, 30*time.Second)
		return p
	}
	server := startServer()
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush     0.2
    nats.url  nats://%s

[INPUT]
    Name  stdin
    Tag   seq

[OUTPUT]
    Name   file
    Match  *
    Path   %s
    File   events.log
    Format plain
    Mkdir  on
`, addr, outDir))
	pipeline := startFloePipe(t, "pipeline", "run", "--stage=ingest,filter,router,output", "-c", cfg)
	pipeline.waitLog(`floe started`, 30*time.Second)
	src := feed(pipeline.stdin, total, rate)
	outFile := filepath.Join(outDir, "events.log")
	eventually(t, 60*time.Second, "events flowing", func() (bool, string) {
		n := countLines(outFile)
		return n >= total/8, fmt.Sprint(n)
	})
	requireFlowing(t, "stopping NATS", int(src.written.Load()), countLines(outFile), total)
	if crash {
		server.kill()
	} else if err := server.stop(30 * time.Second); err != nil {
		t.Fatalf("nats: %v", err)
	}
	atFault := countLines(outFile)
	time.Sleep(time.Second)
	startServer()
	src.wait(t, 2*time.Minute)
	eventually(t, 2*time.Minute, "every event delivered after the restart", func() (bool, string) {
		n := countLines(outFile)
		return n >= total, fmt.Sprint(n)
	})
	if n := countLines(outFile); n <= atFault {
		t.Fatalf("no event arrived after the restart (%d at the fault, %d now)", atFault, n)
	}
	time.Sleep(2 * time.Second) // room for a redelivered chunk to show
	pipeline.stdin.Close()
	if err := pipeline.stop(30 * time.Second); err != nil {
		t.Errorf("pipeline exit: %v", err)
	}
	// The file output writes a chunk, then acknowledges it; an ack the
	// server never received (it went away in between, or, killed, had not
	// yet written the consumer's state) redelivers chunks the file already
	// holds. A file cannot be deduplicated, so those repeat; they are at most
	// the chunks the output held unacknowledged: MaxAckPending (4) chunks of
	// one flush interval at the feed rate, with room for a backlog chunk.
	const maxDups = 4 * rate
	requireAtLeastOnce(t, "after the NATS restart", compareIDs(seqIDs(0, total), fileIDs(t, outFile, seqLine)), maxDups,
		"chunks written to the file whose ack the server lost are redelivered")
}
