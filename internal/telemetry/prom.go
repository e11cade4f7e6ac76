package telemetry

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metric names.
//
// The fluentbit_* per-instance counters follow Fluent Bit's v1 exporter
// (src/http_server/api/v1/metrics.c), which names every value
// "fluentbit_<section>_<json key>_total" with the label name="<instance>".
// fluentbit_uptime, fluentbit_process_start_time_seconds and
// fluentbit_build_info follow the v2 (cmetrics) exporter and carry a
// hostname label. floe_* metrics are Floe's own.
const (
	MetricInputRecords = "fluentbit_input_records_total"
	MetricInputBytes   = "fluentbit_input_bytes_total"

	MetricFilterRecords     = "fluentbit_filter_records_total"
	MetricFilterBytes       = "fluentbit_filter_bytes_total"
	MetricFilterAddRecords  = "fluentbit_filter_add_records_total"
	MetricFilterDropRecords = "fluentbit_filter_drop_records_total"
	MetricFilterDropBytes   = "fluentbit_filter_drop_bytes_total"

	MetricOutputProcRecords    = "fluentbit_output_proc_records_total"
	MetricOutputProcBytes      = "fluentbit_output_proc_bytes_total"
	MetricOutputErrors         = "fluentbit_output_errors_total"
	MetricOutputRetries        = "fluentbit_output_retries_total"
	MetricOutputRetriesFailed  = "fluentbit_output_retries_failed_total"
	MetricOutputDroppedRecords = "fluentbit_output_dropped_records_total"
	MetricOutputRetriedRecords = "fluentbit_output_retried_records_total"

	MetricUptime           = "fluentbit_uptime"
	MetricProcessStartTime = "fluentbit_process_start_time_seconds"
	MetricBuildInfo        = "fluentbit_build_info"

	MetricFilterErrors      = "floe_filter_errors_total"
	MetricOutputDeadLetters = "floe_output_dead_letters_total"

	MetricStageChunksIn         = "floe_stage_chunks_in_total"
	MetricStageChunksOut        = "floe_stage_chunks_out_total"
	MetricStageRecordsIn        = "floe_stage_records_in_total"
	MetricStageRedeliveries     = "floe_stage_redeliveries_total"
	MetricStageDeadLetters      = "floe_stage_dead_letters_total"
	MetricStageUnmatched        = "floe_stage_unmatched_total"
	MetricStageUnmatchedRecords = "floe_stage_unmatched_records_total"
	MetricStagePending          = "floe_stage_pending"
	MetricStageDuplicates       = "floe_stage_duplicates_total"
	MetricStagePaused           = "floe_stage_paused_inputs"
	MetricStageStorageFull      = "floe_stage_storage_full"
	MetricStageDepth            = "floe_stage_stream_depth"
	MetricStageDLQDepth         = "floe_dlq_depth"
)

type counterDesc[T any] struct {
	d   *prometheus.Desc
	get func(*T) *Counter
}

func cdesc[T any](name, help, label string, get func(*T) *Counter) counterDesc[T] {
	return counterDesc[T]{d: prometheus.NewDesc(name, help, []string{label}, nil), get: get}
}

type collector struct {
	r       *Registry
	inputs  []counterDesc[InputMetrics]
	filters []counterDesc[FilterMetrics]
	outputs []counterDesc[OutputMetrics]
	stages  []counterDesc[StageMetrics]
	wasm    wasmCollector
	goplug  []counterDesc[GoPluginMetrics]
	netin   netInputCollector
	dropped *prometheus.Desc
	pending *prometheus.Desc
	gauges  []gaugeDesc
	uptime  *prometheus.Desc
	startT  *prometheus.Desc
	build   *prometheus.Desc
}

// Collector returns a prometheus.Collector exposing the registry (see the
// Metric* constants for the names). Instances registered after the collector
// was created are included; every call returns a new, independent collector.
func (r *Registry) Collector() prometheus.Collector {
	const n, s = "name", "stage"
	return &collector{
		r:       r,
		wasm:    newWasmCollector(),
		goplug:  goPluginCounters(),
		netin:   newNetInputCollector(),
		dropped: newDropDesc(),
		inputs: []counterDesc[InputMetrics]{
			cdesc(MetricInputRecords, "Number of input records.", n, func(m *InputMetrics) *Counter { return &m.Records }),
			cdesc(MetricInputBytes, "Number of input bytes.", n, func(m *InputMetrics) *Counter { return &m.Bytes }),
		},
		filters: []counterDesc[FilterMetrics]{
			cdesc(MetricFilterRecords, "Number of records processed by the filter.", n, func(m *FilterMetrics) *Counter { return &m.Records }),
			cdesc(MetricFilterBytes, "Number of bytes processed by the filter.", n, func(m *FilterMetrics) *Counter { return &m.Bytes }),
			cdesc(MetricFilterAddRecords, "Number of records added by the filter.", n, func(m *FilterMetrics) *Counter { return &m.AddRecords }),
			cdesc(MetricFilterDropRecords, "Number of records dropped by the filter.", n, func(m *FilterMetrics) *Counter { return &m.DropRecords }),
			cdesc(MetricFilterDropBytes, "Number of bytes dropped by the filter.", n, func(m *FilterMetrics) *Counter { return &m.DropBytes }),
			cdesc(MetricFilterErrors, "Number of filter errors.", n, func(m *FilterMetrics) *Counter { return &m.Errors }),
		},
		outputs: []counterDesc[OutputMetrics]{
			cdesc(MetricOutputProcRecords, "Number of processed output records.", n, func(m *OutputMetrics) *Counter { return &m.ProcRecords }),
			cdesc(MetricOutputProcBytes, "Number of processed output bytes.", n, func(m *OutputMetrics) *Counter { return &m.ProcBytes }),
			cdesc(MetricOutputErrors, "Number of output errors.", n, func(m *OutputMetrics) *Counter { return &m.Errors }),
			cdesc(MetricOutputRetries, "Number of output retries.", n, func(m *OutputMetrics) *Counter { return &m.Retries }),
			cdesc(MetricOutputRetriesFailed, "Number of output retries failed.", n, func(m *OutputMetrics) *Counter { return &m.RetriesFailed }),
			cdesc(MetricOutputDroppedRecords, "Number of dropped records.", n, func(m *OutputMetrics) *Counter { return &m.DroppedRecords }),
			cdesc(MetricOutputRetriedRecords, "Number of retried records.", n, func(m *OutputMetrics) *Counter { return &m.RetriedRecords }),
			cdesc(MetricOutputDeadLetters, "Number of chunks sent to the dead-letter store by the output.", n, func(m *OutputMetrics) *Counter { return &m.DeadLetters }),
		},
		stages: []counterDesc[StageMetrics]{
			cdesc(MetricStageChunksIn, "Number of chunks received by the stage.", s, func(m *StageMetrics) *Counter { return &m.ChunksIn }),
			cdesc(MetricStageChunksOut, "Number of chunks emitted by the stage.", s, func(m *StageMetrics) *Counter { return &m.ChunksOut }),
			cdesc(MetricStageRecordsIn, "Number of records received by the stage.", s, func(m *StageMetrics) *Counter { return &m.RecordsIn }),
			cdesc(MetricStageRedeliveries, "Number of redelivered messages seen by the stage.", s, func(m *StageMetrics) *Counter { return &m.Redeliveries }),
			cdesc(MetricStageDeadLetters, "Number of messages dead-lettered by the stage.", s, func(m *StageMetrics) *Counter { return &m.DeadLetters }),
			cdesc(MetricStageUnmatched, "Number of chunks that matched no route.", s, func(m *StageMetrics) *Counter { return &m.Unmatched }),
			cdesc(MetricStageUnmatchedRecords, "Number of records in chunks that matched no route.", s, func(m *StageMetrics) *Counter { return &m.UnmatchedRecords }),
			cdesc(MetricStageDuplicates, "Number of publishes JetStream dropped as duplicates.", s, func(m *StageMetrics) *Counter { return &m.Duplicates }),
		},
		gauges: []gaugeDesc{
			{prometheus.NewDesc(MetricStagePaused, "Number of inputs paused by backpressure.", []string{s}, nil), func(m *StageMetrics) *Gauge { return &m.Paused }},
			{prometheus.NewDesc(MetricStageStorageFull, "1 while inputs are paused because JetStream's store is full.", []string{s}, nil), func(m *StageMetrics) *Gauge { return &m.StorageFull }},
			{prometheus.NewDesc(MetricStageDepth, "Number of messages waiting in the stage's input stream.", []string{s}, nil), func(m *StageMetrics) *Gauge { return &m.Depth }},
			{prometheus.NewDesc(MetricStageDLQDepth, "Number of messages on the dead-letter stream.", []string{s}, nil), func(m *StageMetrics) *Gauge { return &m.DLQDepth }},
		},
		pending: prometheus.NewDesc(MetricStagePending, "Number of messages pending in the stage.", []string{s}, nil),
		uptime:  prometheus.NewDesc(MetricUptime, "Number of seconds that Floe has been running.", []string{"hostname"}, nil),
		startT:  prometheus.NewDesc(MetricProcessStartTime, "Start time of the process since unix epoch in seconds.", []string{"hostname"}, nil),
		build:   prometheus.NewDesc(MetricBuildInfo, "Build version information; the value is the start time in unix seconds.", []string{"hostname", "version", "os", "edition"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.inputs {
		ch <- d.d
	}
	for _, d := range c.filters {
		ch <- d.d
	}
	for _, d := range c.outputs {
		ch <- d.d
	}
	for _, d := range c.stages {
		ch <- d.d
	}
	ch <- c.pending
	for _, g := range c.gauges {
		ch <- g.d
	}
	c.wasm.describe(ch)
	for _, d := range c.goplug {
		ch <- d.d
	}
	c.netin.describe(ch)
	ch <- c.dropped
	ch <- c.uptime
	ch <- c.startT
	ch <- c.build
}

func emit[T any](ch chan<- prometheus.Metric, descs []counterDesc[T], list []entry[T]) {
	for _, d := range descs {
		for _, e := range list {
			ch <- prometheus.MustNewConstMetric(d.d, prometheus.CounterValue, float64(d.get(e.m).Load()), e.name)
		}
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	l := c.r.lists()
	emit(ch, c.inputs, l.inputs)
	emit(ch, c.filters, l.filters)
	emit(ch, c.outputs, l.outputs)
	emit(ch, c.stages, l.stages)
	c.wasm.collect(ch, c.r.wasmList())
	emit(ch, c.goplug, c.r.goPluginList())
	c.netin.collect(ch, c.r.netInputList())
	collectDrops(ch, c.dropped, c.r.dropList())
	for _, e := range l.stages {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(e.m.Pending.Load()), e.name)
		for _, g := range c.gauges {
			ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, float64(g.get(e.m).Load()), e.name)
		}
	}
	host := c.r.hostname
	start := float64(c.r.start.Unix())
	ch <- prometheus.MustNewConstMetric(c.uptime, prometheus.CounterValue, float64(int64(c.r.Uptime().Seconds())), host)
	ch <- prometheus.MustNewConstMetric(c.startT, prometheus.GaugeValue, start, host)
	ch <- prometheus.MustNewConstMetric(c.build, prometheus.GaugeValue, start, host, c.r.version, runtime.GOOS, edition)
}

type gaugeDesc struct {
	d   *prometheus.Desc
	get func(*StageMetrics) *Gauge
}
