// Command bench is Floe's whole-pipeline benchmark suite (issue 13): it
// builds floe, writes its input deterministically, runs each scenario as
// whole processes — all-in-one, and as separate stage processes on one NATS
// server — and, when FLUENT_BIT names a Fluent Bit binary, the same
// scenarios through it with equivalent configs. It writes one JSON report
// and prints a table. Run it with `make bench` (BENCH_SCALE=0.05 for a
// quick run); docs/performance.md explains the figures.
//
// CPU-seconds and peak RSS come from the kernel's accounting of each child
// process (wait4's rusage: utime+stime, ru_maxrss), so they include the
// process's start and shutdown; on a shared host they are steadier than
// wall time. A scenario is done when the output's proc_records in
// /api/v1/metrics (the same JSON shape in Floe and Fluent Bit) reaches the
// expected count.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// result is one scenario run by one engine in one mode.
type result struct {
	Scenario string `json:"scenario"`
	Engine   string `json:"engine"`       // floe or fluent-bit
	Mode     string `json:"mode"`         // all-in-one, stages, stages-fused, replicas-N
	Events   int64  `json:"events"`       // records reaching the output
	Input    int64  `json:"input_events"` // events/s and CPU per event count these
	// InputBytes is what the input plugin counted (its "bytes" metric).
	InputBytes        int64              `json:"input_bytes"`
	Seconds           float64            `json:"seconds"`
	EventsPerSec      float64            `json:"events_per_sec"`
	MBPerSec          float64            `json:"mb_per_sec"`
	CPUSeconds        float64            `json:"cpu_seconds"`
	CPUSecPerMEvents  float64            `json:"cpu_seconds_per_million_events"`
	PeakRSSMiB        map[string]float64 `json:"peak_rss_mib"` // per process
	ProcessCPUSeconds map[string]float64 `json:"process_cpu_seconds"`
	LatencyP50Ms      float64            `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms      float64            `json:"latency_p99_ms,omitempty"`
	ClientCPUSeconds  float64            `json:"client_cpu_seconds,omitempty"` // in-bench client (forward)
	Error             string             `json:"error,omitempty"`
}

type report struct {
	Date       string   `json:"date"`
	GoOS       string   `json:"goos"`
	GoArch     string   `json:"goarch"`
	CPUs       int      `json:"cpus"`
	CPUModel   string   `json:"cpu_model"`
	LoadAvg    string   `json:"loadavg_at_start"`
	Scale      float64  `json:"scale"`
	FluentBit  string   `json:"fluent_bit,omitempty"`
	Service    string   `json:"floe_service,omitempty"`
	Results    []result `json:"results"`
	WorkloadJS string   `json:"workload"`
}

type suite struct {
	dir      string
	floe     string
	fluent   string // Fluent Bit binary, "" when not given
	scale    float64
	only     string
	modes    []string
	lineSize int64
	repo     string
	warm     bool   // the current run is a warm-up, not reported
	service  string // extra [SERVICE] settings for Floe: "key value;key value"
	results  []result
}

func main() {
	out := flag.String("out", "bench/results.json", "where to write the JSON report")
	scale := flag.Float64("scale", envFloat("BENCH_SCALE", 1), "multiply every scenario's event count (env BENCH_SCALE)")
	only := flag.String("scenario", os.Getenv("BENCH_SCENARIO"), "run only scenarios whose name contains this (env BENCH_SCENARIO)")
	modes := flag.String("modes", envString("BENCH_MODES", "all-in-one,stages"), "floe modes to run (env BENCH_MODES)")
	floeBin := flag.String("floe", "", "use this floe binary instead of building one")
	fluent := flag.String("fluent-bit", os.Getenv("FLUENT_BIT"), "Fluent Bit binary to compare with (env FLUENT_BIT)")
	keep := flag.Bool("keep", false, "keep the work directory (configs, logs)")
	service := flag.String("service", os.Getenv("BENCH_SERVICE"), `extra [SERVICE] settings for Floe, "key value" pairs separated by ";" (env BENCH_SERVICE), e.g. "memory.soft_limit 64M"`)
	flag.Parse()

	dir, err := os.MkdirTemp("", "floe-bench-")
	if err != nil {
		log.Fatal(err)
	}
	if *keep {
		fmt.Fprintf(os.Stderr, "work directory: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	repo, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	s := &suite{dir: dir, floe: *floeBin, fluent: *fluent, scale: *scale, only: *only,
		modes: strings.Split(*modes, ","), repo: repo, service: *service}
	if s.floe == "" {
		s.floe = filepath.Join(dir, "floe")
		build := exec.Command("go", "build", "-o", s.floe, "./cmd/floe")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("build floe: %v", err)
		}
	}
	rep := report{Date: time.Now().UTC().Format(time.RFC3339), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
		CPUs: runtime.NumCPU(), CPUModel: cpuModel(), LoadAvg: loadAvg(), Scale: *scale, FluentBit: s.fluent,
		Service: *service}
	if err := s.run(); err != nil {
		log.Fatal(err)
	}
	rep.Results = s.results
	rep.WorkloadJS = fmt.Sprintf("%d JSON lines of ~%d bytes (5 fields) at scale 1 for tail and stdin", scaled(2_000_000, 1), s.lineSize)
	printTable(os.Stdout, s.results)
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}

func scaled(n int64, scale float64) int64 {
	v := int64(float64(n) * scale)
	if v < 1000 {
		v = 1000
	}
	return v
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
