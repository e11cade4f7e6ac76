// Package app is Floe's composition root: it validates a configuration,
// starts the embedded NATS server when needed, declares the JetStream
// topology and runs the requested stages, stopping them upstream first.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/memlimit"
	"github.com/floe-io/floe/internal/natsembed"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/positions"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/services/filter"
	"github.com/floe-io/floe/services/ingest"
	"github.com/floe-io/floe/services/output"
	"github.com/floe-io/floe/services/router"
	"github.com/floe-io/floe/services/vivo"
)

// Version is set at build time.
var Version = "0.1.0-dev"

// Stage names accepted by --stage.
const (
	StageAll    = "all"
	StageNATS   = "nats"
	StageIngest = "ingest"
	StageFilter = "filter"
	StageRouter = "router"
	StageOutput = "output"
	StageVivo   = "vivo"
)

var pipelineStages = []string{StageIngest, StageFilter, StageRouter, StageOutput}

// Options control one Floe process.
type Options struct {
	Config      *config.Config
	Plan        *Plan // Check's result for Config; nil: Run checks Config itself
	Registry    *plugin.Registry
	Stages      []string // empty or ["all"] = every stage plus embedded NATS unless a URL is set
	NATSURL     string   // overrides [SERVICE] nats.url
	NATSListen  string   // overrides [SERVICE] nats.listen
	StoragePath string   // overrides [SERVICE] storage.path
	Output      string   // output stage: run only this output
	HTTPPort    string   // overrides [SERVICE] http_port (and turns the server on)
	LogLevel    string   // overrides [SERVICE] log_level
	Stderr      io.Writer
	// Reload re-reads the configuration for hot reload (SIGHUP, POST
	// /api/v2/reload with hot_reload on); nil when it cannot be re-read.
	Reload func() (*config.Config, error)
}

// StageSet is the parsed --stage value.
type StageSet map[string]bool

// ParseStages validates a --stage list.
func ParseStages(list []string) (StageSet, error) {
	set := StageSet{}
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.ToLower(strings.TrimSpace(s))
			switch s {
			case "":
			case StageAll:
				set[StageAll] = true
				for _, p := range pipelineStages {
					set[p] = true
				}
				set[StageVivo] = true
			case StageNATS, StageIngest, StageFilter, StageRouter, StageOutput, StageVivo:
				set[s] = true
			default:
				return nil, fmt.Errorf("unknown stage %q (want all, nats, ingest, filter, router, output, vivo)", s)
			}
		}
	}
	if len(set) == 0 {
		return ParseStages([]string{StageAll})
	}
	return set, nil
}

// NewLogger builds the process logger from the service settings.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "off":
		l = slog.LevelError + 100
	case "error":
		l = slog.LevelError
	case "warn", "warning":
		l = slog.LevelWarn
	case "debug", "trace":
		l = slog.LevelDebug
	default:
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run runs the process until ctx ends or, when every input finished by
// itself (stdin at end of file), until the pipeline has delivered everything.
func Run(ctx context.Context, o Options) error {
	plan := o.Plan
	if plan == nil {
		var err error
		if plan, err = Validate(o.Config, o.Registry); err != nil {
			return err
		}
	}
	svc := plan.Service
	if o.NATSURL != "" {
		svc.NATS.URL = o.NATSURL
	}
	if o.NATSListen != "" {
		svc.NATSListen = o.NATSListen
	}
	if o.StoragePath != "" {
		svc.StoragePath = o.StoragePath
	}
	if o.HTTPPort != "" {
		svc.HTTPServer, svc.HTTPPort = true, o.HTTPPort
	}
	if o.LogLevel != "" {
		svc.LogLevel = o.LogLevel
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	if svc.LogFile != "" {
		f, err := os.OpenFile(svc.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("log_file %s: %w", svc.LogFile, err)
		}
		defer f.Close()
		stderr = f
	}
	log := NewLogger(stderr, svc.LogLevel, svc.LogFormat)
	stages, err := ParseStages(o.Stages)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings() {
		log.Warn(w)
	}
	p := &process{plan: plan, svc: svc, stages: stages, log: log, opts: o,
		metrics: telemetry.NewRegistry(Version), reloadCh: make(chan *Plan, 1)}
	plan.Telemetry = p.metrics
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := p.requestReload(); err != nil {
					p.log.Error("reload refused; the running configuration stays", "error", err)
				}
			}
		}
	}()
	return p.run(ctx)
}

type process struct {
	plan    *Plan
	svc     *Service
	stages  StageSet
	log     *slog.Logger
	opts    Options
	metrics *telemetry.Registry

	srv *natsembed.Server
	nc  *nats.Conn
	js  jetstream.JetStream

	readyMu sync.Mutex
	ready   error
	ingest  *ingest.Service // the running ingest stage, whose paused inputs make the process not ready

	reloadCh chan *Plan
	// forced: a stop ran out of its grace period, so NATS may not be
	// answering; closing the connection and the embedded server is then
	// bounded tightly rather than waited for.
	forced bool
	// exiters are the inputs that name the process's exit status once
	// they have ended (exec with propagate_exit_code).
	exiters []exiter
}

// exiter is an input that, once it has ended, has an exit status for the
// process (Fluent Bit's propagate_exit_code).
type exiter struct {
	name string
	in   interface{ ExitCode() int }
}

// ExitCodeError ends a run whose inputs finished with a status to pass on:
// the command of an exec input with propagate_exit_code failed. Everything
// was delivered; the caller exits with Code.
type ExitCodeError struct {
	Input string
	Code  int
}

func (e *ExitCodeError) Error() string {
	return fmt.Sprintf("input %s ended with exit status %d (propagate_exit_code)", e.Input, e.Code)
}

// requestReload validates the configuration anew and, when it is good, has
// the stages restart with it. A bad configuration is refused and the
// running one stays.
func (p *process) requestReload() error {
	if !p.svc.HotReload {
		return errors.New("hot_reload is off in [SERVICE]")
	}
	if p.opts.Reload == nil {
		return errors.New("the configuration was not read from a file")
	}
	cfg, err := p.opts.Reload()
	plan, err := Check(cfg, err, p.opts.Registry)
	if err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	plan.Telemetry = p.metrics
	select {
	case <-p.reloadCh: // a newer request replaces one not yet applied
	default:
	}
	p.reloadCh <- plan
	p.log.Info("reload accepted", "inputs", len(plan.Inputs), "filters", len(plan.Filters), "outputs", len(plan.Outputs))
	return nil
}

// applyPlan switches to a reloaded plan. The NATS connection, embedded
// server and HTTP server keep running; their settings change only on restart.
func (p *process) applyPlan(plan *Plan) {
	old := p.svc
	svc := plan.Service
	svc.NATS, svc.NATSListen, svc.StoragePath = old.NATS, old.NATSListen, old.StoragePath
	svc.HTTPServer, svc.HTTPListen, svc.HTTPPort, svc.HotReload = old.HTTPServer, old.HTTPListen, old.HTTPPort, old.HotReload
	svc.LogLevel, svc.LogFile, svc.LogFormat = old.LogLevel, old.LogFile, old.LogFormat
	p.plan, p.svc = plan, svc
	for _, w := range plan.Warnings() {
		p.log.Warn(w)
	}
}

func (p *process) setReady(err error) {
	p.readyMu.Lock()
	p.ready = err
	p.readyMu.Unlock()
}

func (p *process) readiness() error {
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	if p.ready != nil {
		return p.ready
	}
	if p.ingest != nil {
		if why := p.ingest.Paused(); why != "" {
			return errors.New("inputs paused: " + why)
		}
	}
	if p.nc != nil && !p.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if p.srv != nil {
		return p.srv.JetStreamReady()
	}
	return nil
}

func (p *process) run(ctx context.Context) (err error) {
	p.setReady(errors.New("starting"))
	memCtx, stopMem := context.WithCancel(ctx)
	defer stopMem()
	go memlimit.Run(memCtx, p.svc.MemorySoftLimit, time.Second)
	if err := chunk.SetCompression(p.svc.Compression); err != nil {
		return fmt.Errorf("storage.compression: %w", err)
	}
	embedded := p.stages[StageNATS] || (p.stages[StageAll] && p.svc.NATS.URL == "")
	if embedded {
		if err := p.startNATS(); err != nil {
			return err
		}
		defer func() {
			d := 30 * time.Second
			if p.forced {
				d = cutWait
			}
			sctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			err = errors.Join(err, p.srv.Shutdown(sctx))
		}()
	}
	var httpSrv *telemetry.Server
	if p.svc.HTTPServer {
		opts := telemetry.ServerOptions{
			Listen: p.svc.HTTPListen, Port: p.svc.HTTPPort, HealthCheck: p.svc.HealthCheck,
			Health: p.svc.Health, Ready: p.readiness, Logger: p.log,
			Pprof: p.svc.Pprof,
		}
		if p.svc.HotReload {
			opts.Reload = p.requestReload
		}
		httpSrv = telemetry.NewServer(p.metrics, opts)
		if _, err := httpSrv.Start(); err != nil {
			return fmt.Errorf("http_server: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = httpSrv.Shutdown(sctx)
		}()
	}
	if !p.anyPipelineStage() {
		p.setReady(nil)
		<-ctx.Done()
		return nil
	}
	if err := p.connect(ctx); err != nil {
		return err
	}
	defer func() {
		// Close flushes what is buffered; against a server that stopped
		// answering that could take the client's write timeout (a minute).
		closed := make(chan struct{})
		go func() { p.nc.Close(); close(closed) }()
		bound := 30 * time.Second
		if p.forced {
			bound = cutWait
		}
		select {
		case <-closed:
		case <-time.After(bound):
			p.log.Warn("NATS connection did not close in time; exiting anyway")
		}
	}()
	for {
		if err := jsx.EnsureTopology(ctx, p.js, p.topology()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		next, err := p.runStages(ctx)
		if next == nil || err != nil {
			return err
		}
		p.applyPlan(next)
		p.log.Info("configuration reloaded")
	}
}

func (p *process) anyPipelineStage() bool {
	for _, s := range append([]string{StageVivo}, pipelineStages...) {
		if p.stages[s] {
			return true
		}
	}
	return false
}

func (p *process) startNATS() error {
	dir := p.svc.StoragePath
	if dir == "" {
		dir = natsembed.DefaultStoreDir()
	} else {
		dir = dir + string(os.PathSeparator) + "jetstream"
	}
	listen := ""
	if p.stages[StageNATS] {
		listen = p.svc.NATSListen
	} else if _, set := p.plan.Config.Service.Get("nats.listen"); set || p.opts.NATSListen != "" {
		listen = p.svc.NATSListen
	}
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir, Listen: listen, Logger: p.log, MaxFileStore: p.svc.MaxFileStore,
		ServerName: p.svc.ServerName, ClusterName: p.svc.ClusterName, ClusterListen: p.svc.ClusterListen, Routes: p.svc.Routes})
	if err != nil {
		return err
	}
	p.srv = srv
	if listen != "" {
		p.log.Info("nats server listening", "addr", srv.Addr(), "storage", dir, "cluster", p.svc.ClusterListen)
	} else {
		p.log.Info("embedded nats server started", "storage", dir)
	}
	return nil
}

func (p *process) connect(ctx context.Context) error {
	co := p.svc.NATS
	co.Logger = p.log
	co.Name = "floe-" + strings.Join(p.stageList(), ",")
	if co.URL == "" && p.srv != nil {
		co.ExtraOpts = append(co.ExtraOpts, p.srv.ConnectOption())
	}
	nc, err := jsx.Connect(co)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	p.nc, p.js = nc, js
	return nil
}

func (p *process) stageList() []string {
	var out []string
	for _, s := range append(append([]string{StageNATS}, pipelineStages...), StageVivo) {
		if p.stages[s] {
			out = append(out, s)
		}
	}
	return out
}

func (p *process) topology() jsx.Topology {
	t := jsx.Topology{Replicas: p.svc.Replicas, Duplicates: p.svc.DedupWindow, InMaxBytes: p.svc.StorageTotalLimit}
	if m := p.svc.MaxFileStore; m > 0 {
		// With one store for every stream, the inner hops must never be able
		// to fill it: a filter or router can only move a chunk on when there
		// is room for its copy, so a store full of FLOE_IN or FLOE_FILTERED
		// would never drain. Bounding each to a quarter keeps half the store
		// for the output streams: when those are empty there is always room
		// to move on, and a full store always drains once an output delivers.
		if t.InMaxBytes <= 0 || t.InMaxBytes > m/4 {
			t.InMaxBytes = m / 4
		}
		t.FilteredMaxBytes = m / 4
	}
	for _, o := range p.plan.Outputs {
		if o.Spec.ServedBy == StageVivo {
			t.Vivo = append(t.Vivo, jsx.VivoStream{ID: o.ID, MaxBytes: o.Props.Size("stream_queue_size")})
			continue
		}
		t.Outputs = append(t.Outputs, jsx.OutputStream{
			ID:        o.ID,
			MaxBytes:  o.Props.Size("storage.total_limit_size"),
			BlockFull: strings.EqualFold(o.Props.String("storage.on_full"), "block"),
		})
	}
	return t
}

type stageRun struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// runStages starts the stages downstream first and stops them upstream
// first. It returns a new plan when a reload stopped them.
func (p *process) runStages(ctx context.Context) (*Plan, error) {
	// work outlives the stop signal so chunks already being processed finish;
	// it is cut after the grace period.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var runs []*stageRun
	start := func(name string, fn func(ctx context.Context) error) *stageRun {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &stageRun{name: name, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			r.err = fn(sctx)
		}()
		runs = append(runs, r)
		return r
	}
	failed := make(chan *stageRun, 8)
	watch := func(r *stageRun) {
		go func() {
			<-r.done
			if r.err != nil {
				failed <- r
			}
		}()
	}

	if p.stages[StageVivo] {
		var exps []vivo.Exporter
		for _, o := range p.plan.Outputs {
			if o.Spec.ServedBy == StageVivo {
				exps = append(exps, vivo.Exporter{Name: o.Display(), ID: o.ID, Props: o.Props})
			}
		}
		if len(exps) > 0 {
			svc, err := vivo.New(p.js, vivo.Config{Exporters: exps, Logger: p.log.With("stage", StageVivo),
				JSON: p.svc.JSON, Telemetry: p.metrics})
			if err != nil {
				return nil, err
			}
			watch(start(StageVivo, svc.Run))
		}
	}
	if p.stages[StageOutput] {
		svc, err := p.outputStage(ctx)
		if err != nil {
			return nil, err
		}
		watch(start(StageOutput, func(c context.Context) error { return svc.Run(c, work) }))
	}
	var rt *router.Service
	if p.stages[StageRouter] {
		// It runs even when fused: it moves on what FLOE_FILTERED holds from
		// an unfused run or from filter processes elsewhere in the mesh.
		rt = p.routerStage()
		watch(start(StageRouter, func(c context.Context) error { return rt.Run(c, work) }))
	}
	if p.stages[StageFilter] {
		var fwd filter.Forwarder
		if rt != nil && p.svc.Fuse {
			// Filter and router share this process: the hop through
			// FLOE_FILTERED would store, acknowledge and remove every chunk
			// once more for nothing. FLOE_IN stays the durable point before,
			// the output streams the one after.
			fwd = rt
		}
		svc, err := p.filterStage(ctx, fwd)
		if err != nil {
			return nil, errors.Join(err, p.stopAll(runs, cancelWork))
		}
		watch(start(StageFilter, func(c context.Context) error { return svc.Run(c, work) }))
	}
	var ing *ingest.Service
	if p.stages[StageIngest] {
		svc, err := p.ingestStage(ctx)
		if err != nil {
			return nil, errors.Join(err, p.stopAll(runs, cancelWork))
		}
		ing = svc
		watch(start(StageIngest, svc.Run))
	}
	p.readyMu.Lock()
	p.ingest = ing
	p.readyMu.Unlock()
	p.setReady(nil)
	p.log.Info("floe started", "version", Version, "stages", strings.Join(p.stageList(), ","))
	depthCtx, stopDepth := context.WithCancel(ctx)
	defer stopDepth()
	go p.pollDepth(depthCtx)

	var finished <-chan struct{}
	if ing != nil && p.exitsWhenInputsEnd() {
		finished = ing.Done()
	}
	var runErr error
	var next *Plan
	inputsEnded := false
	select {
	case <-ctx.Done():
	case next = <-p.reloadCh:
		p.log.Info("reloading: stopping stages, in-flight chunks stay in their streams")
	case r := <-failed:
		runErr = fmt.Errorf("stage %s: %w", r.name, r.err)
	case <-finished:
		inputsEnded = true
		if p.stages[StageFilter] && p.stages[StageRouter] && p.stages[StageOutput] {
			p.log.Info("inputs finished; waiting for the pipeline to deliver everything")
			p.waitDrained(ctx)
		}
	}
	p.setReady(errors.New("stopping"))
	if ctx.Err() != nil {
		p.log.Info("stopping; a second signal exits at once", "grace", p.svc.Grace.String())
	}
	if err := p.stopAll(runs, cancelWork); err != nil {
		return nil, errors.Join(runErr, err)
	}
	for _, r := range runs {
		if r.err != nil && runErr == nil && r.name != StageIngest {
			runErr = fmt.Errorf("stage %s: %w", r.name, r.err)
		}
	}
	if inputsEnded && runErr == nil {
		for _, e := range p.exiters {
			if code := e.in.ExitCode(); code != 0 {
				return next, &ExitCodeError{Input: e.name, Code: code}
			}
		}
	}
	return next, runErr
}

// cutWait is how long stages get to leave once the grace period is over
// and their in-flight work has been cut.
const cutWait = 2 * time.Second

// stopAll stops stages in reverse start order (upstream first). The grace
// period bounds the whole stop, not each stage: when it runs out, in-flight
// work is cut, every stage is told to stop, and after cutWait stopAll
// returns an error naming what was still in flight, whether or not every
// stage has returned. Nothing unacknowledged is lost: it stays in its
// stream (or, for ingest, unacknowledged to its source).
func (p *process) stopAll(runs []*stageRun, cancelWork context.CancelFunc) error {
	grace := p.svc.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	var busy []string // the stage the grace period ran out on
	for i := len(runs) - 1; i >= 0 && busy == nil; i-- {
		r := runs[i]
		r.cancel()
		select {
		case <-r.done:
		case <-deadline.C:
			busy = []string{r.name}
		}
	}
	if busy == nil {
		cancelWork()
		return nil
	}
	p.forced = true
	inflight := p.inFlight()
	p.log.Error("grace period over with work in flight; cutting it short (unacknowledged chunks stay in their streams and are redelivered)",
		"grace", grace.String(), "stage", busy[0], "in_flight", inflight)
	cancelWork()
	for _, r := range runs {
		r.cancel()
	}
	cut := time.NewTimer(cutWait)
	defer cut.Stop()
	var stuck []string
	for i := len(runs) - 1; i >= 0; i-- {
		select {
		case <-runs[i].done:
		case <-cut.C:
			// Expired: check the rest without waiting.
			cut.Reset(0)
			stuck = append(stuck, runs[i].name)
		}
	}
	if len(stuck) > 0 {
		p.log.Error("stages still not stopped after their work was cut; exiting without them", "stages", strings.Join(stuck, ","))
	}
	msg := fmt.Sprintf("stop: grace period %s over; stage %s had not stopped", grace, busy[0])
	if inflight != "" {
		msg += "; in flight: " + inflight
	}
	if len(stuck) > 0 {
		msg += "; still running when abandoned: " + strings.Join(stuck, ", ")
	}
	return errors.New(msg + " (nothing unacknowledged is lost: it stays upstream)")
}

// inFlight describes the work this process holds unacknowledged: chunks
// ingest has not had stored yet and messages the consumers are processing.
func (p *process) inFlight() string {
	var parts []string
	if p.stages[StageIngest] {
		if n := p.metrics.Stage(StageIngest).Pending.Load(); n > 0 {
			parts = append(parts, fmt.Sprintf("%d chunk(s) not yet stored by ingest", n))
		}
	}
	un := jsx.Unacked()
	streams := make([]string, 0, len(un))
	for s := range un {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	for _, s := range streams {
		parts = append(parts, fmt.Sprintf("%d unacked from %s", un[s], s))
	}
	return strings.Join(parts, ", ")
}

// exitsWhenInputsEnd: Fluent Bit exits when stdin closes; Floe does the same
// when every input is one that ends (stdin), once everything is delivered.
func (p *process) exitsWhenInputsEnd() bool {
	if len(p.plan.Inputs) == 0 {
		return false
	}
	for _, in := range p.plan.Inputs {
		// stdin at EOF, exec with exit_after_oneshot after its one run and tail
		// with exit_on_eof at the end of its files are the inputs that end.
		finite := in.Spec.Name == "stdin" ||
			in.Spec.Name == "exec" && in.Props.Bool("exit_after_oneshot") ||
			in.Spec.Name == "tail" && in.Props.Bool("exit_on_eof")
		if !finite {
			return false
		}
	}
	return true
}

// pollDepth keeps the stream-depth gauges of the local stages current.
func (p *process) pollDepth(ctx context.Context) {
	msgs := func(name string) int64 {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := p.js.Stream(cctx, name)
		if err != nil {
			return 0
		}
		return int64(st.CachedInfo().State.Msgs)
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		dlq := msgs(jsx.StreamDLQ)
		for _, s := range pipelineStages {
			if p.stages[s] {
				p.metrics.Stage(s).DLQDepth.Set(dlq)
			}
		}
		if p.stages[StageFilter] {
			p.metrics.Stage(StageFilter).Depth.Set(msgs(jsx.StreamIn))
		}
		if p.stages[StageRouter] {
			p.metrics.Stage(StageRouter).Depth.Set(msgs(jsx.StreamFiltered))
		}
		if p.stages[StageOutput] {
			var sum int64
			for _, o := range p.plan.sinkOutputs() {
				sum += msgs(jsx.OutputStreamName(o.ID))
			}
			p.metrics.Stage(StageOutput).Depth.Set(sum)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitDrained waits until every stream of the pipeline is empty.
func (p *process) waitDrained(ctx context.Context) {
	names := []string{jsx.StreamIn, jsx.StreamFiltered}
	for _, o := range p.plan.sinkOutputs() {
		names = append(names, jsx.OutputStreamName(o.ID))
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		empty := true
		for _, n := range names {
			st, err := p.js.Stream(ctx, n)
			if err != nil {
				empty = false
				break
			}
			if st.CachedInfo().State.Msgs > 0 {
				empty = false
				break
			}
		}
		if empty {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *process) ingestStage(ctx context.Context) (*ingest.Service, error) {
	var inputs []ingest.Input
	store, err := positions.Open(ctx, p.js, p.svc.Replicas)
	if err != nil {
		return nil, err
	}
	p.plan.Positions = store
	p.exiters = nil
	for _, i := range p.plan.Inputs {
		in, err := p.plan.NewInput(ctx, i, p.log)
		if err != nil {
			return nil, err
		}
		if ec, ok := in.(interface{ ExitCode() int }); ok {
			p.exiters = append(p.exiters, exiter{name: i.Display(), in: ec})
		}
		inputs = append(inputs, ingest.Input{Name: i.Display(), Tag: i.Tag, Input: in, Metrics: p.metrics.Input(i.Display()),
			MemBufLimit: i.Props.Size("mem_buf_limit")})
	}
	return ingest.New(p.js, ingest.Config{
		// Ingest keeps trying to store its chunks until stopAll gives up on
		// the process, so that stopAll can count what is left.
		Inputs: inputs, Flush: p.svc.Flush, Grace: p.svc.Grace + cutWait, Logger: p.log.With("stage", StageIngest),
		MaxPayload: int(p.nc.MaxPayload()), Metrics: p.metrics.Stage(StageIngest), Ordered: p.svc.Ordered,
	}), nil
}

func (p *process) filterStage(ctx context.Context, fwd filter.Forwarder) (*filter.Service, error) {
	var fs []filter.Filter
	for _, i := range p.plan.Filters {
		f, err := p.plan.NewFilter(ctx, i, p.log)
		if err != nil {
			// The stage never runs, so it cannot close those built so far.
			for _, b := range fs {
				_ = plugin.Close(context.WithoutCancel(ctx), b.Filter)
			}
			return nil, err
		}
		fs = append(fs, filter.Filter{Name: i.Display(), Matcher: i.Matcher, Filter: f, Metrics: p.metrics.Filter(i.Display())})
	}
	return filter.New(p.js, filter.Config{Filters: fs, Workers: p.svc.FilterWorkers, Ordered: p.svc.Ordered, AckWait: p.svc.AckWait, Forward: fwd,
		Logger: p.log.With("stage", StageFilter), Metrics: p.metrics.Stage(StageFilter)}), nil
}

func (p *process) routerStage() *router.Service {
	var routes []router.Route
	for _, o := range p.plan.Outputs {
		routes = append(routes, router.Route{Name: o.Display(), ID: o.ID, Matcher: o.Matcher, Vivo: o.Spec.ServedBy == StageVivo})
	}
	return router.New(p.js, router.Config{Routes: routes, Workers: p.svc.RouterWorkers, Ordered: p.svc.Ordered, AckWait: p.svc.AckWait,
		Logger: p.log.With("stage", StageRouter), Metrics: p.metrics.Stage(StageRouter)})
}

func (p *process) outputStage(ctx context.Context) (*output.Service, error) {
	selected := p.plan.sinkOutputs()
	if p.opts.Output != "" {
		o := p.plan.outputByName(p.opts.Output)
		if o == nil {
			return nil, fmt.Errorf("--output %q: no such output in the configuration", p.opts.Output)
		}
		selected = []*Instance{o}
	}
	var outs []output.Output
	for _, i := range selected {
		o, err := p.plan.NewOutput(ctx, i, p.log)
		if err != nil {
			return nil, err
		}
		limit, _ := RetryLimit(i.Props.String("retry_limit"))
		outs = append(outs, output.Output{Name: i.Display(), ID: i.ID, Output: o, Workers: i.Props.Int("workers"),
			RetryLimit: limit, Metrics: p.metrics.Output(i.Display())})
	}
	return output.New(p.js, output.Config{Outputs: outs, SchedulerBase: p.svc.SchedulerBase, SchedulerCap: p.svc.SchedulerCap, Ordered: p.svc.Ordered, AckWait: p.svc.AckWait,
		Logger: p.log.With("stage", StageOutput), Metrics: p.metrics.Stage(StageOutput)}), nil
}
