package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// edition is reported as Fluent Bit's "edition" in / and in
// fluentbit_build_info.
const edition = "Floe"

// buildFlags is the "flags" list of /. Fluent Bit lists its compile-time
// FLB_HAVE_* options; Floe reports the ones describing features it provides.
var buildFlags = []string{"FLB_HAVE_METRICS", "FLB_HAVE_HTTP_SERVER"}

const (
	contentTypeJSON = "application/json"
	contentTypeText = "text/plain; charset=utf-8"
)

// ServerOptions configure the monitoring HTTP server.
type ServerOptions struct {
	Listen      string // host, default "0.0.0.0"
	Port        string // default "2020"; "0" picks a free port
	HealthCheck bool   // serve /api/v1/health (404 otherwise)
	Health      HealthOptions
	// Ready reports readiness for /api/v1/ready (Floe's own endpoint): a nil
	// error is 200 "ready\n", an error is 503 "not ready: <err>\n". A nil
	// func means always ready.
	Ready func() error
	// Reload, when non-nil, is called by POST/PUT /api/v2/reload. When nil,
	// POST/PUT answer {"reload":"not enabled","status":-1} like Fluent Bit with
	// hot_reload off. It runs on the request goroutine and must not wait for
	// this Server's Shutdown (Shutdown waits for in-flight requests); a reload
	// that replaces the server should do so asynchronously.
	Reload func() error
	// Pprof serves Go's net/http/pprof under /debug/pprof/ ([SERVICE]
	// http.pprof on): CPU and heap profiles of a running stage, for
	// finding where its time goes. Off by default: a profile costs CPU and
	// shows internals, so the operator asks for it.
	Pprof  bool
	Logger *slog.Logger
}

// Server is the monitoring HTTP server. Create it with NewServer, then Start
// and finally Shutdown.
type Server struct {
	r   *Registry
	o   ServerOptions
	log *slog.Logger

	handler http.Handler

	reloads   atomic.Int64 // successful hot reloads, GET /api/v2/reload
	reloading atomic.Bool

	mu      sync.Mutex
	srv     *http.Server
	stop    chan struct{}
	wg      sync.WaitGroup
	started bool
}

// NewServer builds the server and its routes; nothing listens until Start.
// The Prometheus endpoints serve a private prometheus.Registry holding
// r.Collector(), the Go runtime and process collectors and
// fluentbit_hot_reloaded_times.
func NewServer(r *Registry, o ServerOptions) *Server {
	if o.Listen == "" {
		o.Listen = "0.0.0.0"
	}
	if o.Port == "" {
		o.Port = "2020"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{r: r, o: o, log: log}

	preg := prometheus.NewRegistry()
	preg.MustRegister(
		r.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "fluentbit_hot_reloaded_times",
			Help:        "Number of hot reloads.",
			ConstLabels: prometheus.Labels{"hostname": r.hostname},
		}, func() float64 { return float64(s.reloads.Load()) }),
	)
	prom := promhttp.HandlerFor(preg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})

	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", s.handleRoot)
	mux.HandleFunc("/api/v1/uptime", s.handleUptime)
	mux.HandleFunc("/api/v1/metrics", s.handleMetrics)
	mux.Handle("/api/v1/metrics/prometheus", prom)
	mux.Handle("/api/v2/metrics/prometheus", prom)
	if o.HealthCheck {
		mux.HandleFunc("/api/v1/health", s.handleHealth)
	}
	mux.HandleFunc("/api/v1/ready", s.handleReady)
	mux.HandleFunc("/api/v2/reload", s.handleReload)
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.handler = mux
	return s
}

// Handler returns the HTTP handler with all routes, for tests or embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Listen:Port and serves in the background. It returns the
// bound host:port (useful with Port "0"). The error names the address.
func (s *Server) Start() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr := net.JoinHostPort(s.o.Listen, s.o.Port)
	if s.started {
		return "", fmt.Errorf("telemetry: http server on %s already started", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("telemetry: http server listen on %s: %w", addr, err)
	}
	s.started = true
	s.stop = make(chan struct{})
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	bound := ln.Addr().String()

	s.wg.Add(1)
	go func(srv *http.Server) {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "addr", bound, "error", err)
		}
	}(s.srv)

	if s.o.HealthCheck {
		s.wg.Add(1)
		go s.sampleLoop(s.stop)
	}
	s.log.Info("http server listening", "addr", bound)
	return bound, nil
}

// sampleLoop records health snapshots every sample interval so that
// /api/v1/health has an accurate baseline even when probed rarely.
func (s *Server) sampleLoop(stop <-chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(s.o.Health.sampleInterval())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.r.sampleHealth(s.o.Health, s.r.now())
		}
	}
}

// Shutdown stops the sampler, gracefully shuts the HTTP server down (closing
// it forcibly if ctx expires first) and waits for its goroutines. It is a
// no-op when the server was never started or is already shut down.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, stop := s.srv, s.stop
	s.srv, s.stop = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	close(stop)
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	s.wg.Wait()
	return err
}

func writeBody(w http.ResponseWriter, status int, ctype string, body []byte) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, contentTypeJSON, b)
}

// handleRoot serves Fluent Bit's build information under its "fluent-bit" key
// (so existing tools work) plus a "floe" object.
func (s *Server) handleRoot(w http.ResponseWriter, _ *http.Request) {
	type fb struct {
		Version string   `json:"version"`
		Edition string   `json:"edition"`
		Flags   []string `json:"flags"`
	}
	type floe struct {
		Version string `json:"version"`
	}
	writeJSON(w, http.StatusOK, struct {
		FluentBit fb   `json:"fluent-bit"`
		Floe      floe `json:"floe"`
	}{fb{s.r.version, edition, buildFlags}, floe{s.r.version}})
}

func (s *Server) handleUptime(w http.ResponseWriter, _ *http.Request) {
	sec := int64(s.r.Uptime() / time.Second)
	if sec < 0 {
		sec = 0
	}
	writeJSON(w, http.StatusOK, struct {
		Sec int64  `json:"uptime_sec"`
		HR  string `json:"uptime_hr"`
	}{sec, UptimeHR(sec)})
}

// UptimeHR formats seconds exactly like Fluent Bit's /api/v1/uptime
// "uptime_hr" (src/http_server/api/v1/uptime.c), including its two spaces
// after the colon and its plural rule (a unit is plural only when > 1), e.g.
// "Fluent Bit has been running:  0 day, 0 hour, 0 minute and 5 seconds".
// The "Fluent Bit" wording is kept on purpose so tools that parse it work.
func UptimeHR(sec int64) string {
	days := sec / 86400
	rem := sec - days*86400
	hours := rem / 3600
	rem -= hours * 3600
	minutes := rem / 60
	seconds := rem - minutes*60
	pl := func(n int64) string {
		if n > 1 {
			return "s"
		}
		return ""
	}
	return fmt.Sprintf("Fluent Bit has been running:  %d day%s, %d hour%s, %d minute%s and %d second%s",
		days, pl(days), hours, pl(hours), minutes, pl(minutes), seconds, pl(seconds))
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	writeBody(w, http.StatusOK, contentTypeJSON, s.r.MetricsJSON())
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if s.r.Healthy(s.o.Health) {
		writeBody(w, http.StatusOK, contentTypeText, []byte("ok\n"))
		return
	}
	writeBody(w, http.StatusInternalServerError, contentTypeText, []byte("error\n"))
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if s.o.Ready != nil {
		if err := s.o.Ready(); err != nil {
			writeBody(w, http.StatusServiceUnavailable, contentTypeText, []byte("not ready: "+err.Error()+"\n"))
			return
		}
	}
	writeBody(w, http.StatusOK, contentTypeText, []byte("ready\n"))
}

type reloadResponse struct {
	Reload string `json:"reload"`
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

// handleReload mirrors Fluent Bit's /api/v2/reload: POST/PUT trigger a
// reload, GET returns {"hot_reload_count":N}, other methods get 400.
func (s *Server) handleReload(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, struct {
			Count int64 `json:"hot_reload_count"`
		}{s.reloads.Load()})
	case http.MethodPost, http.MethodPut:
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
		if s.o.Reload == nil {
			writeJSON(w, http.StatusOK, reloadResponse{Reload: "not enabled", Status: -1})
			return
		}
		if !s.reloading.CompareAndSwap(false, true) {
			writeJSON(w, http.StatusBadRequest, reloadResponse{Reload: "in progress", Status: -2})
			return
		}
		err := s.o.Reload()
		s.reloading.Store(false)
		if err != nil {
			s.log.Error("hot reload failed", "error", err)
			writeJSON(w, http.StatusBadRequest, reloadResponse{Reload: "failed", Status: -1, Error: err.Error()})
			return
		}
		s.reloads.Add(1)
		writeJSON(w, http.StatusOK, reloadResponse{Reload: "done", Status: 0})
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PUT")
		writeBody(w, http.StatusBadRequest, contentTypeText, []byte("bad request\n"))
	}
}
