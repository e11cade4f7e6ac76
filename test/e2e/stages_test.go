package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The acceptance test of the stage mesh: NATS, ingest, filter, router and
// output as five separate processes; 100,000 events through a grep filter
// to a file output; every expected event arrives exactly once, intact.
func TestFiveProcessPipelineDeliversEveryEventOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	const keep = 100000
	const dropped = 5000
	dir := t.TempDir()
	outDir := filepath.Join(dir, "out")
	_, natsURL := startNATS(t, filepath.Join(dir, "nats"))

	// Ingest publishes its chunks uncompressed, the others with S2 (the
	// default): stages read either, so a mesh may mix them.
	cfg := filepath.Join(dir, "floe.conf")
	plainCfg := filepath.Join(dir, "floe-plain.conf")
	conf := fmt.Sprintf(`[SERVICE]
    Flush      0.2
    Log_Level  info
    nats.url   %s

[INPUT]
    Name     dummy
    Tag      app.keep
    Dummy    {"message":"keep me","level":"info","nested":{"n":1,"pi":3.25,"list":[1,"two",null]},"utf8":"żółw ☃"}
    Rate     50000
    Samples  %d

[INPUT]
    Name     dummy
    Tag      app.noise
    Dummy    {"message":"drop me","level":"debug"}
    Rate     5000
    Samples  %d

[FILTER]
    Name     grep
    Match    app.*
    Exclude  level ^debug$

[OUTPUT]
    Name   file
    Match  app.*
    Path   %s
    File   events.log
    Mkdir  on
`, natsURL, keep, dropped, outDir)
	writeFile(t, cfg, conf)
	writeFile(t, plainCfg, strings.Replace(conf, "[SERVICE]\n", "[SERVICE]\n    storage.compression none\n", 1))

	// Downstream first is not required: every process declares the topology.
	var procs []*proc
	for _, stage := range []string{"ingest", "filter", "router", "output"} {
		c := cfg
		if stage == "ingest" {
			c = plainCfg
		}
		p := startFloe(t, stage, nil, "run", "--stage="+stage, "-c", c)
		p.waitLog(`floe started`, 30*time.Second)
		procs = append(procs, p)
	}
	outFile := filepath.Join(outDir, "events.log")
	eventually(t, 3*time.Minute, "100,000 events in the output file", func() (bool, string) {
		n := countLines(outFile)
		return n >= keep, fmt.Sprintf("%d lines", n)
	})
	// Give any duplicate a chance to show up before counting.
	time.Sleep(2 * time.Second)
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(30 * time.Second); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", procs[i].name, err)
		}
	}

	const wantBody = `{"message":"keep me","level":"info","nested":{"n":1,"pi":3.25,"list":[1,"two",null]},"utf8":"\u017c\u00f3\u0142w \u2603"}`
	requireOnce(t, "five processes", compareDistinct(keep, fileIDs(t, outFile, outFileEvent("app.keep", wantBody))))
	if strings.Contains(procs[0].stderr.String(), "level=ERROR") {
		t.Errorf("ingest logged errors:\n%s", tail(procs[0].stderr.String(), 2000))
	}
}
