package telemetry

import (
	"testing"
	"time"
)

func TestHealthFlipsWithinPeriod(t *testing.T) {
	clk := newFakeClock()
	r := newRegistryAt("v", clk.Now)
	o := HealthOptions{ErrorsCount: 2, RetryFailureCount: 1, Period: 10 * time.Second}
	out := r.Output("es.0")

	if !r.Healthy(o) {
		t.Fatal("fresh registry unhealthy")
	}
	clk.Advance(time.Second)
	out.Errors.Add(2) // == limit: still healthy (Fluent Bit uses ">")
	if !r.Healthy(o) {
		t.Fatal("errors == limit should be healthy")
	}
	// Errors are summed over outputs.
	r.Output("s3.0").Errors.Add(1)
	if r.Healthy(o) {
		t.Fatal("3 errors > 2 within period should be unhealthy")
	}
	// Probe every second: stays unhealthy while the errors are inside the window.
	for i := 0; i < 8; i++ {
		clk.Advance(time.Second)
		if r.Healthy(o) {
			t.Fatalf("healthy again after %ds, errors still within the 10s period", i+1)
		}
	}
	// After the period has passed without new errors it is healthy again.
	clk.Advance(3 * time.Second)
	if !r.Healthy(o) {
		t.Fatal("still unhealthy after the period elapsed")
	}

	// Retry failures have their own threshold.
	out.RetriesFailed.Add(2)
	if r.Healthy(o) {
		t.Fatal("2 retries_failed > 1 should be unhealthy")
	}
	for i := 1; i <= 11; i++ {
		clk.Advance(time.Second)
		healthy := r.Healthy(o)
		if i < 10 && healthy {
			t.Fatalf("healthy %ds after retry failures (period 10s)", i)
		}
		if i == 11 && !healthy {
			t.Fatal("still unhealthy after retry failures left the window")
		}
	}
}

func TestHealthSparseProbesCountWholeWindow(t *testing.T) {
	clk := newFakeClock()
	r := newRegistryAt("v", clk.Now)
	o := HealthOptions{ErrorsCount: 0, RetryFailureCount: 0, Period: 60 * time.Second}
	clk.Advance(30 * time.Second)
	r.Output("x").Errors.Add(1)
	clk.Advance(20 * time.Second)
	// First probe at t=50s: the error at t=30s is inside the 60s window.
	if r.Healthy(o) {
		t.Fatal("error inside the window not counted on first probe")
	}
}

func TestHealthRingBounded(t *testing.T) {
	clk := newFakeClock()
	r := newRegistryAt("v", clk.Now)
	o := HealthOptions{ErrorsCount: 5, RetryFailureCount: 5, Period: 5 * time.Second}
	for i := 0; i < 1000; i++ {
		clk.Advance(time.Second)
		r.Healthy(o)
	}
	r.health.mu.Lock()
	n := len(r.health.samples)
	r.health.mu.Unlock()
	if n > 7 {
		t.Fatalf("ring holds %d samples for a 5s period", n)
	}
	if iv := (HealthOptions{Period: 24 * time.Hour}).sampleInterval(); iv < 24*time.Hour/1024 {
		t.Fatalf("interval %v too small for a day-long period", iv)
	}
}

func TestHealthDefaults(t *testing.T) {
	d := DefaultHealthOptions()
	if d.ErrorsCount != 5 || d.RetryFailureCount != 5 || d.Period != 60*time.Second {
		t.Fatalf("defaults = %+v", d)
	}
	if (HealthOptions{}).period() != 60*time.Second {
		t.Fatal("zero period should default to 60s")
	}
}
