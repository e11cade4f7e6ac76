package telemetry

import (
	"sync"
	"time"
)

// HealthOptions are Fluent Bit's health-check thresholds (service keys
// hc_errors_count, hc_retry_failure_count, hc_period).
type HealthOptions struct {
	ErrorsCount       int           // unhealthy when output errors in Period > ErrorsCount
	RetryFailureCount int           // unhealthy when output retries_failed in Period > RetryFailureCount
	Period            time.Duration // window; <= 0 means 60s
}

// DefaultHealthOptions returns Fluent Bit's defaults: 5 errors, 5 retry
// failures, 60 s.
func DefaultHealthOptions() HealthOptions {
	return HealthOptions{ErrorsCount: 5, RetryFailureCount: 5, Period: 60 * time.Second}
}

const defaultHealthPeriod = 60 * time.Second

func (o HealthOptions) period() time.Duration {
	if o.Period <= 0 {
		return defaultHealthPeriod
	}
	return o.Period
}

// sampleInterval is how often a snapshot is kept: every second (like Fluent
// Bit's metrics exporter), coarser for very long periods so that the ring never
// holds more than about 1024 samples.
func (o HealthOptions) sampleInterval() time.Duration {
	iv := o.period() / 1024
	if iv < time.Second {
		iv = time.Second
	}
	return iv
}

// healthSample is the sum over all outputs of errors and retries_failed at a
// point in time.
type healthSample struct {
	at            time.Time
	errors        uint64
	retriesFailed uint64
}

// healthRing keeps periodic snapshots of the output error totals. Like Fluent
// Bit (src/http_server/api/v1/health.c), the count "within the period" is the
// current total minus the total of a baseline snapshot taken about Period ago.
//
// Sampling design: a snapshot is recorded lazily whenever Healthy is called
// (at most one per sampleInterval) and, when the server runs with
// HealthCheck on, by a background goroutine every sampleInterval, so the
// baseline is at most one interval older than Period even when probes are
// sparse. The ring starts with an all-zero snapshot at registry creation.
// Without the goroutine and with sparse calls the window can only be longer
// (never shorter) than Period, i.e. it errs on the side of reporting errors.
type healthRing struct {
	mu      sync.Mutex
	samples []healthSample // ascending by time; samples[0] is the baseline
}

func (h *healthRing) init(start time.Time) {
	h.samples = []healthSample{{at: start}}
}

// outputTotals sums errors and retries_failed over all outputs.
func (r *Registry) outputTotals() (errs, retriesFailed uint64) {
	for _, e := range r.outputList() {
		errs += e.m.Errors.Load()
		retriesFailed += e.m.RetriesFailed.Load()
	}
	return errs, retriesFailed
}

// sampleHealth records a snapshot if the last one is at least one interval
// old, drops snapshots no longer needed, and returns the baseline snapshot
// together with the current totals.
func (r *Registry) sampleHealth(o HealthOptions, now time.Time) (base, cur healthSample) {
	errs, rf := r.outputTotals()
	cur = healthSample{at: now, errors: errs, retriesFailed: rf}

	h := &r.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.samples); n == 0 || now.Sub(h.samples[n-1].at) >= o.sampleInterval() {
		h.samples = append(h.samples, cur)
	}
	// Keep the newest sample at or before the window start as the baseline;
	// everything older is not needed any more.
	windowStart := now.Add(-o.period())
	drop := 0
	for drop+1 < len(h.samples) && !h.samples[drop+1].at.After(windowStart) {
		drop++
	}
	if drop > 0 {
		h.samples = append(h.samples[:0], h.samples[drop:]...)
	}
	return h.samples[0], cur
}

// Healthy reports Fluent Bit's health status: false when, within the last
// o.Period, the summed output errors exceed o.ErrorsCount or the summed
// output retries_failed exceed o.RetryFailureCount. See healthRing for the
// sampling design.
func (r *Registry) Healthy(o HealthOptions) bool {
	base, cur := r.sampleHealth(o, r.now())
	errs := sub(cur.errors, base.errors)
	rf := sub(cur.retriesFailed, base.retriesFailed)
	return !(exceeds(errs, o.ErrorsCount) || exceeds(rf, o.RetryFailureCount))
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func exceeds(n uint64, limit int) bool {
	if limit < 0 {
		return n > 0
	}
	return n > uint64(limit)
}
