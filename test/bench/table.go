package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// printTable prints one line per run and, where Fluent Bit ran the same
// scenario, the Floe (all-in-one) / Fluent Bit ratios.
func printTable(w io.Writer, rs []result) {
	fmt.Fprintf(w, "\n%-26s %-10s %-11s %10s %8s %8s %11s %9s %s\n",
		"scenario", "engine", "mode", "out events", "in ev/s", "MB/s", "CPU-s/Mev", "wall s", "peak RSS MiB (per process)")
	for _, r := range rs {
		if r.Error != "" {
			fmt.Fprintf(w, "%-26s %-10s %-11s ERROR %s\n", r.Scenario, r.Engine, r.Mode, firstLine(r.Error))
			continue
		}
		fmt.Fprintf(w, "%-26s %-10s %-11s %10d %8.0f %8.1f %11.2f %9.2f %s\n",
			r.Scenario, r.Engine, r.Mode, r.Events, r.EventsPerSec, r.MBPerSec, r.CPUSecPerMEvents, r.Seconds, rssList(r.PeakRSSMiB))
	}
	var lines []string
	for _, fb := range rs {
		if fb.Engine != "fluent-bit" || fb.Error != "" {
			continue
		}
		for _, f := range rs {
			if f.Engine != "floe" || f.Mode != "all-in-one" || f.Scenario != fb.Scenario || f.Error != "" {
				continue
			}
			lines = append(lines, fmt.Sprintf("%-26s %12.2f %14.2f %10.2f", f.Scenario,
				ratio(f.EventsPerSec, fb.EventsPerSec), ratio(f.CPUSecPerMEvents, fb.CPUSecPerMEvents),
				ratio(maxRSS(f.PeakRSSMiB), maxRSS(fb.PeakRSSMiB))))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nFloe all-in-one / Fluent Bit (events/s: higher is better; CPU per event, RSS: lower is better)\n")
		fmt.Fprintf(w, "%-26s %12s %14s %10s\n", "scenario", "events/s", "CPU per event", "peak RSS")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func maxRSS(m map[string]float64) float64 {
	var v float64
	for _, x := range m {
		v = max(v, x)
	}
	return v
}

func rssList(m map[string]float64) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f", n, m[n]))
	}
	return strings.Join(parts, ", ")
}
