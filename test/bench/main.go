// Command bench measures whole-pipeline throughput: it runs Floe in process
// (embedded NATS, every stage) over a fixed stdin workload per scenario and
// writes the figures as JSON. Run it with `make bench`.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/app"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugins/all"
)

type result struct {
	Name         string  `json:"name"`
	Events       int     `json:"events"`
	InputBytes   int64   `json:"input_bytes"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	MBPerSec     float64 `json:"mb_per_sec"`
}

type report struct {
	Date     string   `json:"date"`
	GoOS     string   `json:"goos"`
	GoArch   string   `json:"goarch"`
	CPUs     int      `json:"cpus"`
	Version  string   `json:"floe_version"`
	Results  []result `json:"results"`
	Workload string   `json:"workload"`
}

var scenarios = []struct {
	name string
	args []string
}{
	{"stdin_to_null", []string{"-i", "stdin", "-t", "bench", "-o", "null", "-m", "*"}},
	{"stdin_grep_modify_to_null", []string{"-i", "stdin", "-t", "bench",
		"-F", "grep", "-p", "regex=level ^(info|warn)$", "-m", "*",
		"-F", "modify", "-p", "add=pipeline floe", "-m", "*",
		"-o", "null", "-m", "*"}},
	{"stdin_to_file_json_lines", []string{"-i", "stdin", "-t", "bench", "-o", "file", "-m", "*", "-p", "format=plain"}},
}

func main() {
	out := flag.String("out", "bench/results.json", "where to write the JSON report")
	events := flag.Int("events", 300000, "events per scenario")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of all scenarios here")
	only := flag.String("scenario", "", "run only this scenario")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	dir, err := os.MkdirTemp("", "floe-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	input := filepath.Join(dir, "input.jsonl")
	size, err := writeWorkload(input, *events)
	if err != nil {
		log.Fatal(err)
	}
	rep := report{Date: time.Now().UTC().Format(time.RFC3339), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
		CPUs: runtime.NumCPU(), Version: app.Version,
		Workload: fmt.Sprintf("%d JSON lines of ~%d bytes (5 fields) on stdin", *events, size/int64(*events))}
	for _, sc := range scenarios {
		if *only != "" && sc.name != *only {
			continue
		}
		r, err := runScenario(dir, input, sc.name, sc.args)
		if err != nil {
			log.Printf("%s: %v", sc.name, err)
			return
		}
		r.Events, r.InputBytes = *events, size
		r.EventsPerSec = float64(*events) / r.Seconds
		r.MBPerSec = float64(size) / r.Seconds / 1e6
		rep.Results = append(rep.Results, r)
		fmt.Fprintf(os.Stderr, "%-28s %8.0f events/s %7.1f MB/s (%.2fs)\n", sc.name, r.EventsPerSec, r.MBPerSec, r.Seconds)
	}
	if *only == "" || strings.HasPrefix(*only, "isolation") {
		for _, stalled := range []bool{false, true} {
			r, err := isolation(dir, input, *events, stalled)
			if err != nil {
				log.Printf("isolation: %v", err)
				continue
			}
			r.Events, r.InputBytes = *events, size
			r.EventsPerSec = float64(*events) / r.Seconds
			r.MBPerSec = float64(size) / r.Seconds / 1e6
			rep.Results = append(rep.Results, r)
			fmt.Fprintf(os.Stderr, "%-28s %8.0f events/s %7.1f MB/s (%.2fs)\n", r.Name, r.EventsPerSec, r.MBPerSec, r.Seconds)
		}
	}
	if *only == "" || strings.HasPrefix(*only, "filter_replicas") {
		bin := filepath.Join(dir, "floe")
		build := exec.Command("go", "build", "-o", bin, "./cmd/floe")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("build floe: %v", err)
		}
		for _, n := range []int{1, 2} {
			r, err := replicas(bin, dir, input, *events, n)
			if err != nil {
				log.Printf("replicas: %v", err)
				continue
			}
			r.Events, r.InputBytes = *events, size
			r.EventsPerSec = float64(*events) / r.Seconds
			r.MBPerSec = float64(size) / r.Seconds / 1e6
			rep.Results = append(rep.Results, r)
			fmt.Fprintf(os.Stderr, "%-28s %8.0f events/s %7.1f MB/s (%.2fs)\n", r.Name, r.EventsPerSec, r.MBPerSec, r.Seconds)
		}
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}

func writeWorkload(path string, n int) (int64, error) {
	fh, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	f := bufio.NewWriter(fh)
	levels := []string{"info", "warn", "debug", "error"}
	for i := 0; i < n; i++ {
		if _, err := fmt.Fprintf(f, `{"seq":%d,"level":"%s","service":"checkout","latency_ms":%d.%d,"message":"GET /api/v1/orders/%d 200"}`+"\n",
			i, levels[i%4], i%500, i%10, i); err != nil {
			return 0, err
		}
	}
	if err := f.Flush(); err != nil {
		return 0, err
	}
	st, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func runScenario(dir, input, name string, args []string) (result, error) {
	cfg, err := config.FromArgs(args)
	if err != nil {
		return result{}, err
	}
	outDir := filepath.Join(dir, name+"-out")
	for _, o := range cfg.Outputs {
		if o.Plugin() == "file" {
			o.Props = append(o.Props, config.Prop{Key: "path", Value: outDir}, config.Prop{Key: "mkdir", Value: "on"})
		}
	}
	f, err := os.Open(input)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	start := time.Now()
	err = app.Run(context.Background(), app.Options{
		Config: cfg, Registry: all.Registry(), StoragePath: filepath.Join(dir, name+"-state"),
		LogLevel: "warn", Stderr: devnull,
	})
	return result{Name: name, Seconds: time.Since(start).Seconds()}, err
}

// countingSink is an HTTP endpoint counting json_lines records; a stalled
// one answers 503 to everything.
type countingSink struct {
	records atomic.Int64
	stalled bool
	addr    string
	srv     *http.Server
}

func newCountingSink(stalled bool) (*countingSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &countingSink{stalled: stalled, addr: l.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.stalled {
			http.Error(w, "stalled", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.records.Add(int64(bytes.Count(b, []byte("\n"))))
	})}
	go s.srv.Serve(l)
	return s, nil
}

// isolation measures how fast a healthy http output receives the workload
// while a second output is healthy too, or stalled (answering 503): each
// output has its own stream, so the figure should not move.
func isolation(dir, input string, events int, stalled bool) (result, error) {
	name := "isolation_both_healthy"
	if stalled {
		name = "isolation_other_stalled"
	}
	healthy, err := newCountingSink(false)
	if err != nil {
		return result{}, err
	}
	defer healthy.srv.Close()
	other, err := newCountingSink(stalled)
	if err != nil {
		return result{}, err
	}
	defer other.srv.Close()
	args := []string{"-i", "stdin", "-t", "bench"}
	for _, s := range []*countingSink{healthy, other} {
		host, port, _ := net.SplitHostPort(s.addr)
		args = append(args, "-o", "http", "-m", "*", "-p", "host="+host, "-p", "port="+port,
			"-p", "format=json_lines", "-p", "retry_limit=no_limits")
	}
	cfg, err := config.FromArgs(args)
	if err != nil {
		return result{}, err
	}
	f, err := os.Open(input)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Registry: all.Registry(),
			StoragePath: filepath.Join(dir, name+"-state"), LogLevel: "error", Stderr: devnull})
	}()
	for healthy.records.Load() < int64(events) {
		select {
		case err := <-done:
			cancel()
			return result{}, fmt.Errorf("floe stopped early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	cancel()
	<-done
	return result{Name: name, Seconds: elapsed.Seconds()}, nil
}
