package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func startServer(t *testing.T, r *Registry, o ServerOptions) (*Server, string) {
	t.Helper()
	o.Listen = "127.0.0.1"
	o.Port = "0"
	s := NewServer(r, o)
	addr, err := s.Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, "http://" + addr
}

type resp struct {
	code  int
	ctype string
	body  string
}

func do(t *testing.T, method, url string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header.Get("Content-Type"), string(b)}
}

func TestServerEndpoints(t *testing.T) {
	r := NewRegistry("0.1.0")
	r.Input("dummy.0").Records.Add(3)
	r.Output("stdout.0").ProcRecords.Add(3)
	_, base := startServer(t, r, ServerOptions{})

	// /
	res := do(t, "GET", base+"/")
	if res.code != 200 || res.ctype != "application/json" {
		t.Fatalf("/ = %+v", res)
	}
	var root struct {
		FB struct {
			Version string   `json:"version"`
			Edition string   `json:"edition"`
			Flags   []string `json:"flags"`
		} `json:"fluent-bit"`
		Floe struct {
			Version string `json:"version"`
		} `json:"floe"`
	}
	if err := json.Unmarshal([]byte(res.body), &root); err != nil {
		t.Fatalf("/ body %q: %v", res.body, err)
	}
	if root.FB.Version != "0.1.0" || root.FB.Edition != "Floe" || root.Floe.Version != "0.1.0" || root.FB.Flags == nil {
		t.Errorf("/ = %s", res.body)
	}

	// /api/v1/uptime
	res = do(t, "GET", base+"/api/v1/uptime")
	var up map[string]any
	if err := json.Unmarshal([]byte(res.body), &up); err != nil || res.code != 200 || res.ctype != "application/json" {
		t.Fatalf("uptime = %+v (%v)", res, err)
	}
	if _, ok := up["uptime_sec"].(float64); !ok {
		t.Errorf("uptime_sec missing: %s", res.body)
	}
	if hr, _ := up["uptime_hr"].(string); !strings.HasPrefix(hr, "Fluent Bit has been running:  0 day, 0 hour, 0 minute and ") {
		t.Errorf("uptime_hr = %q", hr)
	}

	// /api/v1/metrics
	res = do(t, "GET", base+"/api/v1/metrics")
	if res.code != 200 || res.ctype != "application/json" {
		t.Fatalf("metrics = %+v", res)
	}
	var m map[string]map[string]map[string]any
	if err := json.Unmarshal([]byte(res.body), &m); err != nil {
		t.Fatal(err)
	}
	if m["input"]["dummy.0"]["records"] != 3.0 || m["output"]["stdout.0"]["proc_records"] != 3.0 {
		t.Errorf("metrics = %s", res.body)
	}

	// Prometheus
	for _, p := range []string{"/api/v1/metrics/prometheus", "/api/v2/metrics/prometheus"} {
		res = do(t, "GET", base+p)
		if res.code != 200 || !strings.HasPrefix(res.ctype, "text/plain") ||
			!strings.Contains(res.body, `fluentbit_input_records_total{name="dummy.0"} 3`) {
			t.Errorf("%s = %d %q", p, res.code, res.ctype)
		}
	}

	// health disabled → 404; ready with nil func → ready; unknown → 404.
	if res = do(t, "GET", base+"/api/v1/health"); res.code != 404 {
		t.Errorf("health without health_check = %d", res.code)
	}
	if res = do(t, "GET", base+"/api/v1/ready"); res.code != 200 || res.body != "ready\n" || !strings.HasPrefix(res.ctype, "text/plain") {
		t.Errorf("ready = %+v", res)
	}
	for _, p := range []string{"/nope", "/api/v1/metricsx", "/api/v1", "/api/v1/uptime/x"} {
		if res = do(t, "GET", base+p); res.code != 404 {
			t.Errorf("%s = %d, want 404", p, res.code)
		}
	}
}

func TestServerHealthEnabled(t *testing.T) {
	r := NewRegistry("v")
	out := r.Output("es.0")
	_, base := startServer(t, r, ServerOptions{
		HealthCheck: true,
		Health:      HealthOptions{ErrorsCount: 1, RetryFailureCount: 1, Period: time.Minute},
	})
	res := do(t, "GET", base+"/api/v1/health")
	if res.code != 200 || res.body != "ok\n" || !strings.HasPrefix(res.ctype, "text/plain") {
		t.Fatalf("health = %+v", res)
	}
	out.RetriesFailed.Add(2)
	res = do(t, "GET", base+"/api/v1/health")
	if res.code != 500 || res.body != "error\n" {
		t.Fatalf("health after failures = %+v", res)
	}
}

func TestServerReady(t *testing.T) {
	var ready atomic.Bool
	_, base := startServer(t, NewRegistry("v"), ServerOptions{Ready: func() error {
		if ready.Load() {
			return nil
		}
		return errors.New("nats not connected")
	}})
	res := do(t, "GET", base+"/api/v1/ready")
	if res.code != 503 || !strings.Contains(res.body, "nats not connected") {
		t.Fatalf("ready = %+v", res)
	}
	ready.Store(true)
	if res = do(t, "GET", base+"/api/v1/ready"); res.code != 200 || res.body != "ready\n" {
		t.Fatalf("ready = %+v", res)
	}
}

func TestServerReload(t *testing.T) {
	var calls atomic.Int32
	var fail atomic.Bool
	_, base := startServer(t, NewRegistry("v"), ServerOptions{Reload: func() error {
		calls.Add(1)
		if fail.Load() {
			return errors.New("bad config: no outputs")
		}
		return nil
	}})
	for _, m := range []string{"POST", "PUT"} {
		res := do(t, m, base+"/api/v2/reload")
		if res.code != 200 || res.body != `{"reload":"done","status":0}` || res.ctype != "application/json" {
			t.Fatalf("%s reload = %+v", m, res)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("Reload called %d times", calls.Load())
	}
	fail.Store(true)
	res := do(t, "POST", base+"/api/v2/reload")
	if res.code != 400 || !strings.Contains(res.body, "bad config: no outputs") {
		t.Fatalf("failed reload = %+v", res)
	}
	res = do(t, "GET", base+"/api/v2/reload")
	if res.code != 200 || res.body != `{"hot_reload_count":2}` {
		t.Fatalf("GET reload = %+v", res)
	}
	if res = do(t, "DELETE", base+"/api/v2/reload"); res.code != 400 {
		t.Fatalf("DELETE reload = %+v", res)
	}
}

func TestServerReloadNotEnabled(t *testing.T) {
	_, base := startServer(t, NewRegistry("v"), ServerOptions{})
	res := do(t, "POST", base+"/api/v2/reload")
	if res.code != 200 || res.body != `{"reload":"not enabled","status":-1}` {
		t.Fatalf("reload without func = %+v", res)
	}
	if res = do(t, "GET", base+"/api/v2/reload"); res.body != `{"hot_reload_count":0}` {
		t.Fatalf("GET reload = %+v", res)
	}
}

func TestServerStartErrorNamesAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := NewServer(NewRegistry("v"), ServerOptions{Listen: "127.0.0.1", Port: port})
	_, err = s.Start()
	if err == nil {
		t.Fatal("Start on a used port succeeded")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:"+port) {
		t.Errorf("error %q does not name the address", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of unstarted server: %v", err)
	}
}

func TestServerShutdownStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	s := NewServer(NewRegistry("v"), ServerOptions{Listen: "127.0.0.1", Port: "0", HealthCheck: true})
	addr, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	// Keep-alive connection open across shutdown.
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	res, err := c.Get("http://" + addr + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	tr.CloseIdleConnections()
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting connections after Shutdown")
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after Shutdown\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestUptimeHR(t *testing.T) {
	for sec, want := range map[int64]string{
		5:       "Fluent Bit has been running:  0 day, 0 hour, 0 minute and 5 seconds",
		1:       "Fluent Bit has been running:  0 day, 0 hour, 0 minute and 1 second",
		3661:    "Fluent Bit has been running:  0 day, 1 hour, 1 minute and 1 second",
		8950000: "Fluent Bit has been running:  103 days, 14 hours, 6 minutes and 40 seconds",
	} {
		if got := UptimeHR(sec); got != want {
			t.Errorf("UptimeHR(%d) = %q, want %q", sec, got, want)
		}
	}
}

// http.pprof on serves Go's profiles; off, the paths do not exist.
func TestServerPprof(t *testing.T) {
	_, off := startServer(t, NewRegistry("0.1.0"), ServerOptions{})
	if got := do(t, "GET", off+"/debug/pprof/"); got.code != http.StatusNotFound {
		t.Errorf("pprof off: GET /debug/pprof/ = %d, want 404", got.code)
	}
	_, on := startServer(t, NewRegistry("0.1.0"), ServerOptions{Pprof: true})
	got := do(t, "GET", on+"/debug/pprof/")
	if got.code != http.StatusOK || !strings.Contains(got.body, "goroutine") {
		t.Errorf("pprof on: GET /debug/pprof/ = %d %.200q, want 200 listing profiles", got.code, got.body)
	}
	got = do(t, "GET", on+"/debug/pprof/heap?debug=1")
	if got.code != http.StatusOK || !strings.Contains(got.body, "heap profile") {
		t.Errorf("pprof on: GET /debug/pprof/heap = %d %.200q, want a heap profile", got.code, got.body)
	}
	// The monitoring endpoints stay as they were.
	if got := do(t, "GET", on+"/api/v1/uptime"); got.code != http.StatusOK {
		t.Errorf("pprof on: /api/v1/uptime = %d", got.code)
	}
}
