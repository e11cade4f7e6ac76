package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A CPU-heavy filter chain: several regular expressions over every record.
const heavyFilters = `
[FILTER]
    Name   grep
    Match  *
    Regex  message ^(GET|POST|PUT|DELETE) /api/v[0-9]+/(orders|users|items|carts)/[0-9]+ (200|201|204|404)$

[FILTER]
    Name    grep
    Match   *
    Exclude service ^(billing|search|auth)-(canary|shadow)[0-9]*$

[FILTER]
    Name   modify
    Match  *
    Condition Key_value_matches message ^(GET|POST)\s.*/orders/.*$
    Add    kind order

[FILTER]
    Name   grep
    Match  *
    Exclude message (\d+\.){3}\d+:(\d{2,5})\s+(timeout|refused|reset)
`

// replicas runs nats, ingest, router+output and N filter processes (one
// worker each) from the floe binary and measures how long the workload
// takes to reach the output.
func replicas(bin, dir, input string, events, n int) (result, error) {
	name := fmt.Sprintf("filter_replicas_%d", n)
	work := filepath.Join(dir, name)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return result{}, err
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_, _ = p.Process.Wait()
		}
	}()
	var logs []*strings.Builder
	start := func(stdin string, args ...string) (*exec.Cmd, *strings.Builder, error) {
		cmd := exec.Command(bin, args...)
		var log strings.Builder
		cmd.Stderr = &syncWriter{w: &log}
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				return nil, nil, err
			}
			cmd.Stdin = f
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		procs = append(procs, cmd)
		logs = append(logs, &log)
		return cmd, &log, nil
	}
	natsAddr, httpAddr := freeAddr(), freeAddr()
	if _, _, err := start("", "run", "--stage=nats", "--nats-listen="+natsAddr, "--storage-path="+filepath.Join(work, "nats")); err != nil {
		return result{}, err
	}
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	cfg := filepath.Join(work, "floe.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[SERVICE]
    Flush           0.2
    Log_Level       warn
    nats.url        nats://%s
    filter.workers  1

[INPUT]
    Name  stdin
    Tag   bench
%s
[OUTPUT]
    Name   null
    Match  *
`, natsAddr, heavyFilters)), 0o644); err != nil {
		return result{}, err
	}
	// Fill FLOE_IN first, so the figure is the filters' throughput alone.
	ing, _, err := start(input, "run", "--stage=ingest", "-c", cfg)
	if err != nil {
		return result{}, err
	}
	if err := ing.Wait(); err != nil {
		return result{}, fmt.Errorf("ingest: %w", err)
	}
	procs = procs[:1]
	if _, _, err := start("", "run", "--stage=router,output", "-c", cfg, "--http-port", httpPort); err != nil {
		return result{}, err
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if _, _, err := start("", "run", "--stage=filter", "-c", cfg); err != nil {
			return result{}, err
		}
	}
	want := uint64(events)
	for {
		if time.Since(t0) > 90*time.Second {
			var all strings.Builder
			for _, l := range logs {
				all.WriteString(l.String())
			}
			return result{}, fmt.Errorf("%s: timed out at %d records; logs:\n%s", name, nullRecords(httpAddr), all.String())
		}
		if got := nullRecords(httpAddr); got >= want*3/4 {
			// The chain keeps about three in four records of the workload.
			if got == nullRecordsAfter(httpAddr, 300*time.Millisecond) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return result{Name: name, Seconds: time.Since(t0).Seconds()}, nil
}

func nullRecords(addr string) uint64 {
	resp, err := http.Get("http://" + addr + "/api/v1/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var m struct {
		Output map[string]map[string]uint64 `json:"output"`
	}
	body, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(body, &m) != nil {
		return 0
	}
	return m.Output["null.0"]["proc_records"]
}

func nullRecordsAfter(addr string, d time.Duration) uint64 {
	time.Sleep(d)
	return nullRecords(addr)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncWriter struct{ w io.Writer }

func (s *syncWriter) Write(p []byte) (int, error) { return s.w.Write(p) }
