// Package telemetry holds Floe's internal metrics and the Fluent Bit–compatible
// monitoring HTTP server (service keys http_server, http_listen, http_port,
// health_check, hc_errors_count, hc_retry_failure_count, hc_period).
//
// Hot path: pipeline stages look up their *InputMetrics / *FilterMetrics /
// *OutputMetrics / *StageMetrics once at setup (Registry.Input etc. take a
// mutex) and then only call Counter.Add / Gauge.Set on every chunk; those are
// single lock-free atomic operations.
//
// Exposition:
//   - Registry.MetricsJSON: Fluent Bit's /api/v1/metrics JSON shape plus a
//     "floe" object with Floe-only metrics.
//   - Registry.Collector: a prometheus.Collector with Fluent Bit's metric names
//     (fluentbit_input_records_total{name="dummy.0"}, ...) and floe_* extras.
//   - Server: the HTTP endpoints (/, /api/v1/uptime, /api/v1/metrics,
//     /api/v1/metrics/prometheus, /api/v2/metrics/prometheus, /api/v1/health,
//     /api/v1/ready, /api/v2/reload).
package telemetry

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Counter is a monotonically increasing lock-free counter. The zero value is
// ready to use. It must not be copied after first use.
type Counter struct{ v atomic.Uint64 }

// Add adds n to the counter.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load returns the current value.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Gauge is a lock-free integer gauge. The zero value is ready to use. It must
// not be copied after first use.
type Gauge struct{ v atomic.Int64 }

// Set sets the gauge to n.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Add adds n (which may be negative) to the gauge.
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Load returns the current value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// InputMetrics are the per-input-instance metrics of Fluent Bit
// (JSON keys "records", "bytes").
type InputMetrics struct {
	Records Counter // records successfully ingested
	Bytes   Counter // bytes of records successfully ingested
	// Floe's own, for network inputs (floe_input_*_total in Prometheus):
}

// FilterMetrics are the per-filter-instance metrics. Records, Bytes,
// AddRecords, DropRecords and DropBytes are Fluent Bit's ("records", "bytes",
// "add_records", "drop_records", "drop_bytes"); Errors is Floe's own and is
// exported under "floe" / floe_filter_errors_total.
type FilterMetrics struct {
	Records     Counter
	Bytes       Counter
	AddRecords  Counter
	DropRecords Counter
	DropBytes   Counter
	Errors      Counter
}

// OutputMetrics are the per-output-instance metrics. All but DeadLetters are
// Fluent Bit's; DeadLetters is Floe's own (floe_output_dead_letters_total).
//
// Fluent Bit semantics: ProcRecords/ProcBytes count successfully delivered
// records/bytes; Errors counts chunk flush failures (retriable or not);
// Retries counts retry requests (chunks); RetriesFailed counts chunks whose
// retries were exhausted; DroppedRecords counts records discarded after an
// unrecoverable error or exhausted retries; RetriedRecords counts records in
// chunks that were scheduled for a retry. Errors and RetriesFailed drive the
// health check.
type OutputMetrics struct {
	ProcRecords    Counter
	ProcBytes      Counter
	Errors         Counter
	Retries        Counter
	RetriesFailed  Counter
	DroppedRecords Counter
	RetriedRecords Counter
	DeadLetters    Counter
}

// StageMetrics are Floe's own per-stage metrics (stage names such as
// "ingest", "filter", "router", "output").
type StageMetrics struct {
	ChunksIn         Counter
	ChunksOut        Counter
	RecordsIn        Counter
	Redeliveries     Counter
	DeadLetters      Counter
	Unmatched        Counter // chunks that matched no route
	UnmatchedRecords Counter // records in those chunks
	Pending          Gauge   // messages/chunks currently in flight or queued
	Duplicates       Counter // publishes JetStream dropped as duplicates (redelivered work)
	Paused           Gauge   // inputs currently paused by backpressure (ingest)
	StorageFull      Gauge   // 1 while ingest is paused because JetStream's store is full
	Depth            Gauge   // messages waiting in the stage's input stream
	DLQDepth         Gauge   // messages on the dead-letter stream

	// Set by Registry.Stage, for StageMetrics.Dropper.
	reg  *Registry
	name string
}

type entry[T any] struct {
	name string
	m    *T
}

// instances is an insertion-ordered get-or-create set of metric blocks.
// Guarded by Registry.mu. Entries are only ever appended, so a slice header
// taken under the lock stays valid afterwards.
type instances[T any] struct {
	byName map[string]*T
	order  []entry[T]
}

func (l *instances[T]) get(name string) *T {
	if m, ok := l.byName[name]; ok {
		return m
	}
	if l.byName == nil {
		l.byName = make(map[string]*T)
	}
	m := new(T)
	l.byName[name] = m
	l.order = append(l.order, entry[T]{name: name, m: m})
	return m
}

func (l *instances[T]) list() []entry[T] { return l.order[:len(l.order):len(l.order)] }

// Registry holds all metrics of one Floe process. It is safe for concurrent
// use.
type Registry struct {
	version  string
	start    time.Time
	hostname string
	now      func() time.Time // replaced in tests

	mu        sync.Mutex
	inputs    instances[InputMetrics]
	filters   instances[FilterMetrics]
	outputs   instances[OutputMetrics]
	stages    instances[StageMetrics]
	wasms     instances[WasmMetrics]
	goplugins instances[GoPluginMetrics]
	netins    instances[NetInputMetrics]
	drops     drops

	health healthRing
}

// NewRegistry returns an empty registry; its creation time is the start time
// used for uptime.
func NewRegistry(version string) *Registry {
	return newRegistryAt(version, time.Now)
}

func newRegistryAt(version string, now func() time.Time) *Registry {
	host, _ := os.Hostname()
	r := &Registry{version: version, start: now(), hostname: host, now: now}
	r.health.init(r.start)
	return r
}

// Version returns the version given to NewRegistry.
func (r *Registry) Version() string { return r.version }

// StartTime returns the time the registry was created.
func (r *Registry) StartTime() time.Time { return r.start }

// Uptime returns the time elapsed since the registry was created.
func (r *Registry) Uptime() time.Duration { return r.now().Sub(r.start) }

// Input returns the metrics of the input instance with the given display name
// (alias or "<plugin>.<id>"), creating them on first use. Call it once at
// setup and keep the pointer.
func (r *Registry) Input(name string) *InputMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inputs.get(name)
}

// Filter returns the metrics of the filter instance with the given display
// name, creating them on first use.
func (r *Registry) Filter(name string) *FilterMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.filters.get(name)
}

// Output returns the metrics of the output instance with the given display
// name, creating them on first use.
func (r *Registry) Output(name string) *OutputMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outputs.get(name)
}

// Stage returns the metrics of the named Floe stage, creating them on first
// use.
func (r *Registry) Stage(name string) *StageMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.stages.get(name)
	if m.reg == nil {
		m.reg, m.name = r, name
	}
	return m
}

type snapshotLists struct {
	inputs  []entry[InputMetrics]
	filters []entry[FilterMetrics]
	outputs []entry[OutputMetrics]
	stages  []entry[StageMetrics]
}

func (r *Registry) lists() snapshotLists {
	r.mu.Lock()
	defer r.mu.Unlock()
	return snapshotLists{
		inputs:  r.inputs.list(),
		filters: r.filters.list(),
		outputs: r.outputs.list(),
		stages:  r.stages.list(),
	}
}

func (r *Registry) outputList() []entry[OutputMetrics] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outputs.list()
}
