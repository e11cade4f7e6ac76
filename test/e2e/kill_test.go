package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// 1,000,000 events with sequence numbers through ingest → filter ×2 →
// router → output while filter, router and output are SIGKILLed on a seeded
// random schedule (FLOE_KILL_SEED replays one) and restarted: every event
// arrives, intact; duplicates are bounded by what killed outputs held.
func TestKillStagesMidStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 1000000
	// Fed at a pace, so the stream lasts long enough (10 s and more) for the
	// schedule's first kills to land while it flows.
	const rate = 100000
	dir := t.TempDir()
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    nats.ack_wait 3
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
	ingest := startFloePipe(t, "ingest", "run", "--stage=ingest", "-c", cfg)
	ingest.waitLog(`floe started`, 30*time.Second)
	src := feed(ingest.stdin, total, rate)

	outFile := filepath.Join(outDir, "events.jsonl")
	schedule, seed := killSchedule(t, []string{"filter-a", "filter-b", "router", "output"})
	outputKills := 0
	for i, k := range schedule {
		time.Sleep(k.after)
		if n := countLines(outFile); n >= total {
			if i < 3 {
				t.Fatalf("the stream finished (%d events) after %d of the kills: filter, router and output were not each killed mid-stream (seed %d)", n, i, seed)
			}
			t.Logf("the stream finished after %d kills", i)
			schedule = schedule[:i]
			break
		} else {
			t.Logf("kill %d: %s at %d events produced, %d delivered", i+1, k.victim, src.written.Load(), n)
		}
		procs[k.victim].kill()
		if k.victim == "output" {
			outputKills++
		}
		time.Sleep(k.down)
		procs[k.victim] = start(k.victim, stages[k.victim])
	}
	eventually(t, 4*time.Minute, fmt.Sprintf("every event after %d kills (seed %d)", len(schedule), seed), func() (bool, string) {
		n := countLines(outFile)
		return n >= total, fmt.Sprint(n)
	})
	src.wait(t, time.Minute)
	ingest.stdin.Close()
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
	ids := make([]string, 0, total)
	sc := bufio.NewScanner(f)
	for lines := 1; sc.Scan(); lines++ {
		var rec struct {
			Seq     int    `json:"seq"`
			Payload string `json:"payload"`
			Checked string `json:"checked"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d corrupted: %q: %v", lines, sc.Text(), err)
		}
		if rec.Payload != fmt.Sprintf("event-%d", rec.Seq) || rec.Checked != "yes" {
			t.Fatalf("line %d content changed: %q", lines, sc.Text())
		}
		ids = append(ids, strconv.Itoa(rec.Seq))
	}
	// A killed filter or router republishes what it had in hand with the
	// same Nats-Msg-Id, which the server drops; but the file output writes a
	// chunk before acknowledging it, so a chunk written by an output killed
	// before its ack is redelivered and written again. Per output kill that
	// is at most the chunks it held (MaxAckPending, 4) of at most 512 KiB,
	// each event taking over 50 bytes of MessagePack.
	maxDups := outputKills * 4 * (512 << 10) / 50
	requireAtLeastOnce(t, fmt.Sprintf("after %d kills, %d of the output (seed %d)", len(schedule), outputKills, seed),
		compareIDs(seqIDs(0, total), ids), maxDups, "an output killed between writing a chunk and its ack writes it again")
}

// kill is one step of the kill test's schedule: wait after, SIGKILL victim,
// restart it down later.
type kill struct {
	victim      string
	after, down time.Duration
}

// killSchedule draws twelve kills from a seed taken from FLOE_KILL_SEED or
// the clock, and logs both, so a failing run can be replayed. The first
// three kill a filter, the router and the output in a random order, so each
// dies at least once while the stream flows.
func killSchedule(t *testing.T, names []string) ([]kill, uint64) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FLOE_KILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FLOE_KILL_SEED=%q: %v", s, err)
		}
		seed = v
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var filters []string
	for _, n := range names {
		if strings.HasPrefix(n, "filter") {
			filters = append(filters, n)
		}
	}
	victims := []string{filters[rng.IntN(len(filters))], "router", "output"}
	rng.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	for len(victims) < 12 {
		victims = append(victims, names[rng.IntN(len(names))])
	}
	var s []kill
	var desc []string
	for _, v := range victims {
		k := kill{victim: v, after: time.Duration(300+rng.IntN(900)) * time.Millisecond, down: time.Duration(rng.IntN(400)) * time.Millisecond}
		if len(s) < 3 { // the kills that must land while the stream flows come quickly
			k.after = time.Duration(100+rng.IntN(400)) * time.Millisecond
		}
		s = append(s, k)
		desc = append(desc, fmt.Sprintf("%s+%s/%s", k.victim, k.after, k.down))
	}
	t.Logf("kill schedule (seed %d; replay with FLOE_KILL_SEED=%d): %s", seed, seed, strings.Join(desc, " "))
	return s, seed
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
	const total, rate = 40000, 4000
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
    nats.ack_wait 3
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
		// Soon after the first events arrive, so the fault lands with most
		// of the stream still to come even when the start is slow.
		n := countLines(outFile)
		return n >= total/40, fmt.Sprint(n)
	})
	fault := "stopping NATS (SIGTERM)"
	if crash {
		fault = "killing NATS (SIGKILL)"
	}
	requireFlowing(t, fault, int(src.written.Load()), countLines(outFile), total)
	if crash {
		server.kill()
	} else if err := server.stop(30 * time.Second); err != nil {
		t.Fatalf("nats: %v", err)
	}
	atFault := countLines(outFile)
	time.Sleep(time.Second)
	startServer()
	src.wait(t, 2*time.Minute)
	waitForAll(t, 2*time.Minute, "every event delivered after the restart", outFile, seqIDs(0, total), seqLine)
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
