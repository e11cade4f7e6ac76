package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A real floe process tails a file that a writer appends to without pause,
// while the file is rotated by rename (once with Floe running, once while it
// is down), by copytruncate, and Floe is SIGKILLed mid-stream and restarted
// on the same storage: every line arrives. Duplicates are counted and
// reported. They are expected from the output stage, whose file sink may
// have written a chunk that its SIGKILLed process had not yet acknowledged
// (JetStream redelivers it: at-least-once at the sink). Lines tail re-reads
// after the restart are republished under the Msg-Ids of their first
// publication and dropped by JetStream (internal/plugins/input/tail's
// TestRestartAgainstJetStreamDeduplicates shows it against a real server).
func TestTailRotationAndKillLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const total = 40000
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	out := filepath.Join(dir, "out")
	store := filepath.Join(dir, "store")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(logs, "app.log")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush     0.2
    Log_Level info

[INPUT]
    Name              tail
    Path              %s
    Tag               app.*
    Read_From_Head    on
    Refresh_Interval  1
    Rotate_Wait       3

[OUTPUT]
    Name    file
    Match   app.*
    Path    %s
    File    lines.jsonl
    Format  plain
    Mkdir   on
`, app, out))
	if err := os.WriteFile(app, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	startTail := func(name string) *proc {
		p := startFloe(t, name, nil, "run", "-c", cfg, "--storage-path", store)
		p.waitLog(`floe started`, 60*time.Second)
		return p
	}
	floe := startTail("floe-1")
	outFile := filepath.Join(out, "lines.jsonl")

	f, err := os.OpenFile(app, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	reopen := func() {
		w.Flush()
		f.Close()
		if f, err = os.OpenFile(app, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			t.Fatal(err)
		}
		w.Reset(f)
	}
	pad := strings.Repeat("p", 80)
	seen := make([]int, total)
	var missing, dups, lines int
	count := func() {
		for i := range seen {
			seen[i] = 0
		}
		missing, dups, lines = 0, 0, 0
		fo, err := os.Open(outFile)
		if err != nil {
			missing = total
			return
		}
		defer fo.Close()
		sc := bufio.NewScanner(fo)
		for sc.Scan() {
			lines++
			var rec struct {
				Log string `json:"log"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("output line %d is not a record: %q", lines, sc.Text())
			}
			num, rest, _ := strings.Cut(strings.TrimPrefix(rec.Log, "line-"), " ")
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || n >= total || rest != pad {
				t.Fatalf("output line %d changed: %q", lines, rec.Log)
			}
			if seen[n] > 0 {
				dups++
			}
			seen[n]++
		}
		for _, s := range seen {
			if s == 0 {
				missing++
			}
		}
	}
	var killedAt, killedDelivered int
	for i := 0; i < total; i++ {
		fmt.Fprintf(w, "line-%d %s\n", i, pad)
		if i%100 == 99 {
			w.Flush()
			time.Sleep(25 * time.Millisecond)
		}
		switch i {
		case total / 4: // rename while Floe runs
			w.Flush()
			if err := os.Rename(app, app+".1"); err != nil {
				t.Fatal(err)
			}
			reopen()
		case 45 * total / 100:
			w.Flush()
			killedAt, killedDelivered = i+1, countLines(outFile)
			floe.kill()
		case total / 2: // rename while Floe is down
			w.Flush()
			if err := os.Rename(app, app+".2"); err != nil {
				t.Fatal(err)
			}
			reopen()
		case 55 * total / 100:
			floe = startTail("floe-2")
		case 3 * total / 4: // copytruncate: copy, then truncate under the writer's O_APPEND descriptor
			w.Flush()
			// Lines not read before the truncation exist only in the copy, which
			// is not followed (Fluent Bit loses them too): truncate once Floe has
			// delivered everything written, as a careful rotation would.
			caught := time.Now().Add(2 * time.Minute)
			for count(); total-missing < i+1; count() {
				if time.Now().After(caught) {
					t.Fatalf("Floe did not catch up before the copytruncate: %d of %d lines", total-missing, i+1)
				}
				time.Sleep(50 * time.Millisecond)
			}
			data, err := os.ReadFile(app)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(app+".3", data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(app, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Flush()
	f.Close()
	if killedDelivered >= killedAt {
		t.Fatalf("the kill landed after everything written was delivered (%d of %d); it proves nothing", killedDelivered, killedAt)
	}
	t.Logf("SIGKILL landed with %d lines written, %d delivered, %d still to be written", killedAt, killedDelivered, total-killedAt)

	deadline := time.Now().Add(3 * time.Minute)
	for count(); missing > 0; count() {
		if time.Now().After(deadline) {
			first := -1
			for i, s := range seen {
				if s == 0 {
					first = i
					break
				}
			}
			t.Fatalf("%d of %d lines never arrived (first: line-%d); %d duplicates", missing, total, first, dups)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // let a late redelivery land before the final count
	count()
	if err := floe.stop(30 * time.Second); err != nil {
		t.Errorf("floe: %v", err)
	}
	t.Logf("%d lines written, %d delivered, %d duplicates", total, lines, dups)
	// A duplicate needs a chunk written by the file sink and not acknowledged
	// when the process died: at most the chunks in flight at one SIGKILL.
	if dups > total/20 {
		t.Fatalf("%d duplicates: more than the output's in-flight chunks at one kill could explain", dups)
	}
}
