// Package logtometrics is Fluent Bit's log_to_metrics filter
// (plugins/filter_log_to_metrics): it counts records, keeps the last value
// of a field as a gauge, or sorts a field's values into a histogram, and
// emits the metric as a metrics chunk (an OTLP ExportMetricsServiceRequest)
// under its own tag, so that Vivo and the metric outputs
// (prometheus_exporter, prometheus_remote_write, otelwasm) see it.
// Records pass through untouched unless discard_logs is on.
//
// Keys, as upstream:
//   - tag (required): the metrics chunk's tag;
//   - metric_mode counter (default), gauge or histogram;
//   - metric_name (default "a"), metric_namespace (default log_metric),
//     metric_subsystem (default: the mode's name): the metric is named
//     NAMESPACE_SUBSYSTEM_NAME, log_metric_counter_a by default;
//   - metric_description (required): the help text;
//   - value_field (required for gauge and histogram): a record accessor
//     naming the number; a string is read as C's sscanf("%lf") does (its
//     leading number, else 0); a missing value, a boolean, null or a
//     container skips the record, with a warning (rate-limited);
//   - label_field KEY (repeatable): a label named KEY with the value of the
//     record accessor KEY; add_label NAME KEY (repeatable): a label NAME with
//     the value of KEY; kubernetes_mode on: the labels namespace_name,
//     pod_name, container_name, docker_id and pod_id from
//     $kubernetes['...'] first. Labels are in that order, at most 32; a
//     string value is used as is (cut to 251 bytes), an integer in decimal,
//     a float as C's "%f" (6 decimals), anything else or a missing key as "";
//   - bucket (repeatable, histogram): the upper bounds, sorted; default
//     0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 (Prometheus's);
//   - regex KEY REGEX / exclude KEY REGEX (repeatable): which records
//     count, as the grep filter's legacy rules: in order, the first exclude
//     that matches or regex that does not match skips the record, the first
//     regex that matches counts it;
//   - flush_interval_sec / flush_interval_nsec: both 0 (default) emits the
//     metric after every chunk with a matching record; else the metric is
//     emitted at most once per interval, when it changed;
//   - discard_logs: drop every record after counting it;
//   - emitter_name (default emitter_for_<filter>): the source of the
//     metrics chunks; emitter_mem_buf_limit is accepted for compatibility
//     (metrics chunks are stored in JetStream).
//
// Each emission carries every series the filter has seen, with its
// cumulative value (a counter is an OTLP monotonic cumulative Sum starting
// when the filter was built, a histogram a cumulative Histogram), as
// cmetrics does in Fluent Bit.
//
// State is per filter instance, in memory: the filter stage's workers share
// it, but each filter replica (each process running the filter stage)
// counts only the records it was given, and a restart or reload starts from
// zero (Fluent Bit's counters reset on restart too). With several replicas
// their emissions carry the same metric and labels, so a prometheus_exporter
// shows the last one it received: run log_to_metrics on one replica, or
// sum the replicas' series downstream after labelling them apart. A chunk
// redelivered after a crash is counted again (at-least-once).
package logtometrics

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/onig"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// Name is the plugin name.
const Name = "log_to_metrics"

// ScopeName is the OTLP instrumentation scope of the emitted metrics.
const ScopeName = "floe/log_to_metrics"

// Limits from plugins/filter_log_to_metrics/log_to_metrics.h.
const (
	maxLabels      = 32
	maxLabelLength = 253
	// snprintf(buf, MAX_LABEL_LENGTH - 1, ...) keeps this many bytes.
	maxLabelValue = maxLabelLength - 2
)

// kubernetesLabels are the labels kubernetes_mode adds, in upstream's order.
var kubernetesLabels = []string{"namespace_name", "pod_name", "container_name", "docker_id", "pod_id"}

// defaultBuckets are cmetrics' default histogram buckets (Prometheus's).
var defaultBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0}

// Spec describes the log_to_metrics filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: Name,
		Desc: "generate log derived metrics",
		Keys: []plugin.Key{
			{Name: "tag", Desc: "tag of the generated metrics chunks (required)"},
			{Name: "metric_mode", Default: "counter", Desc: "counter, gauge or histogram"},
			{Name: "metric_name", Default: "a", Desc: "name of the metric"},
			{Name: "metric_namespace", Default: "log_metric", Desc: "namespace of the metric"},
			{Name: "metric_subsystem", Desc: "subsystem of the metric; default the metric_mode"},
			{Name: "metric_description", Desc: "help text of the metric (required)"},
			{Name: "value_field", Desc: "record accessor of the number, for gauge and histogram"},
			{Name: "label_field", Multi: true, Desc: "record accessor whose value is a label of the same name"},
			{Name: "add_label", Multi: true, Desc: "NAME KEY: a label NAME with the value of record accessor KEY"},
			{Name: "kubernetes_mode", Type: plugin.Bool, Default: "false", Desc: "add the pod_id, pod_name, namespace_name, docker_id and container_name labels from $kubernetes"},
			{Name: "bucket", Multi: true, Desc: "a histogram bucket's upper bound"},
			{Name: "regex", Multi: true, Desc: "KEY REGEX: count only records in which KEY matches REGEX"},
			{Name: "exclude", Multi: true, Desc: "KEY REGEX: do not count records in which KEY matches REGEX"},
			{Name: "flush_interval_sec", Type: plugin.Int, Default: "0", Desc: "emit the metric at this interval; 0 with flush_interval_nsec 0: after every chunk"},
			{Name: "flush_interval_nsec", Type: plugin.Int, Default: "0", Desc: "sub-second part of the emission interval"},
			{Name: "discard_logs", Type: plugin.Bool, Default: "false", Desc: "drop every record after counting it"},
			{Name: "emitter_name", Desc: "source name of the metrics chunks; default emitter_for_<filter>"},
			{Name: "emitter_mem_buf_limit", Type: plugin.Size, Default: "10M", Desc: "accepted for compatibility: metrics chunks are stored in JetStream"},
		},
		NewFilter: func(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
			return New(ctx, set, p)
		},
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := New(ctx, set, p)
			return err
		},
	}
}

type mode uint8

const (
	modeCounter mode = iota
	modeGauge
	modeHistogram
)

type rule struct {
	exclude bool
	ra      *recordaccessor.Accessor
	re      *onig.Regex
}

// series is one combination of label values.
type series struct {
	labels []string
	value  float64  // counter, gauge
	counts []uint64 // histogram: per bucket, the last one +Inf
	sum    float64
	count  uint64
	ts     time.Time // last update
}

// Filter is one log_to_metrics instance. It is safe for concurrent use.
type Filter struct {
	log     *slog.Logger
	tag     string
	emitter string
	mode    mode
	name    string
	desc    string
	rules   []rule
	keys    []string                   // label names
	ras     []*recordaccessor.Accessor // label accessors, parallel to keys
	value   *recordaccessor.Accessor
	// The label and value accessors resolved together: one pass over a
	// record's top-level keys finds every tops[i] (kubernetes_mode's five
	// labels share one), then each path follows its subkeys from there.
	tops      []string
	labelPath []path // parallel to keys
	valuePath path
	bounds    []float64
	interval  time.Duration
	discard   bool
	start     time.Time
	now       func() time.Time

	mu      sync.Mutex
	series  map[string]*series
	order   []*series // first-seen order, for stable output
	dirty   bool      // changed since the last emission (interval mode)
	last    time.Time // last emission (interval mode)
	scratch sync.Pool // *scratch

	warnAt atomic.Int64 // unix nanos of the last value warning
}

// New builds the filter from its configuration; every problem is reported
// at its key and line.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (*Filter, error) {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{log: log, tag: p.String("tag"), emitter: p.String("emitter_name"), discard: p.Bool("discard_logs"),
		start: time.Now(), now: time.Now, series: map[string]*series{}}
	if f.emitter == "" {
		f.emitter = "emitter_for_" + set.DisplayName()
	}
	var errs config.ErrorList
	add := func(err error) {
		if ce, ok := err.(*config.Error); ok {
			errs = append(errs, ce)
		}
	}
	if strings.TrimSpace(f.tag) == "" {
		add(p.Errorf("tag", "tag is required: the tag of the generated metrics chunks"))
	}
	modeName := strings.ToLower(strings.TrimSpace(p.String("metric_mode")))
	switch modeName {
	case "counter":
		f.mode = modeCounter
	case "gauge":
		f.mode = modeGauge
	case "histogram":
		f.mode = modeHistogram
	default:
		add(p.Errorf("metric_mode", "invalid metric_mode %q: only counter, gauge or histogram are allowed", p.String("metric_mode")))
	}
	f.desc = p.String("metric_description")
	if f.desc == "" {
		add(p.Errorf("metric_description", "metric_description is required: the help text of the metric"))
	}
	subsystem := p.String("metric_subsystem")
	if subsystem == "" {
		subsystem = modeName
	}
	f.name = joinName(p.String("metric_namespace"), subsystem, p.String("metric_name"))
	if f.mode != modeCounter {
		vf := p.String("value_field")
		if vf == "" {
			add(p.Errorf("value_field", "value_field is required for metric_mode %s", modeName))
		} else if ra, err := parseAccessor(vf); err != nil {
			add(p.Errorf("value_field", "invalid record accessor %q: %v", vf, err))
		} else {
			f.value = ra
		}
	}
	sec, nsec := p.Int("flush_interval_sec"), p.Int("flush_interval_nsec")
	f.interval = time.Duration(max(sec, 0))*time.Second + time.Duration(max(nsec, 0))
	if f.interval > 0 && f.interval < time.Millisecond {
		f.interval = time.Millisecond // Fluent Bit's timer precision
	}

	if p.Bool("kubernetes_mode") {
		for _, k := range kubernetesLabels {
			ra, _ := recordaccessor.Parse("$kubernetes['" + k + "']")
			f.keys, f.ras = append(f.keys, k), append(f.ras, ra)
		}
	}
	var bounds []float64
	for i := range p.Section.Props {
		pr := &p.Section.Props[i]
		key := strings.ToLower(pr.Key)
		switch key {
		case "regex", "exclude":
			parts := recordaccessor.Split(pr.Value, 1)
			if len(parts) != 2 {
				add(propErr(pr, "invalid rule %q: expected KEY REGEX", pr.Value))
				continue
			}
			ra, err := parseAccessor(parts[0])
			if err != nil {
				add(propErr(pr, "invalid record accessor %q: %v", parts[0], err))
				continue
			}
			re, err := onig.Compile(parts[1])
			if err != nil {
				add(propErr(pr, "could not compile regex pattern %q: %v", parts[1], err))
				continue
			}
			f.rules = append(f.rules, rule{exclude: key == "exclude", ra: ra, re: re})
		case "label_field":
			ra, err := parseAccessor(pr.Value)
			if err != nil {
				add(propErr(pr, "invalid record accessor %q: %v", pr.Value, err))
				continue
			}
			f.keys, f.ras = append(f.keys, pr.Value), append(f.ras, ra)
		case "add_label":
			parts := recordaccessor.Split(pr.Value, 1)
			if len(parts) != 2 {
				add(propErr(pr, "invalid label %q: expected NAME KEY", pr.Value))
				continue
			}
			ra, err := parseAccessor(parts[1])
			if err != nil {
				add(propErr(pr, "invalid record accessor %q: %v", parts[1], err))
				continue
			}
			f.keys, f.ras = append(f.keys, parts[0]), append(f.ras, ra)
		case "bucket":
			v, ok := parseBucket(pr.Value)
			if !ok {
				add(propErr(pr, "bucket %q is not a number", pr.Value))
				continue
			}
			bounds = append(bounds, v)
		}
	}
	if len(f.keys) > maxLabels {
		add(p.Errorf("label_field", "too many labels configured: %d (max=%d)", len(f.keys), maxLabels))
	}
	seen := map[string]bool{}
	for _, k := range f.keys {
		if seen[k] {
			add(p.Errorf("label_field", "label %q is configured twice", k))
		}
		seen[k] = true
	}
	if f.mode == modeHistogram {
		if len(bounds) == 0 {
			bounds = defaultBuckets
		}
		sort.Float64s(bounds)
		for i := 1; i < len(bounds); i++ {
			if bounds[i] == bounds[i-1] {
				add(p.Errorf("bucket", "bucket %v is given twice", bounds[i]))
				break
			}
		}
		f.bounds = bounds
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	for _, ra := range f.ras {
		f.labelPath = append(f.labelPath, f.pathOf(ra))
	}
	if f.value != nil {
		f.valuePath = f.pathOf(f.value)
	}
	f.scratch.New = func() any { return &scratch{topVals: make([][]byte, len(f.tops))} }
	return f, nil
}

// scratch is one FilterChunk call's working memory: records are read
// without the lock (the stage's workers share the filter), and only the
// series updates they produced are applied under it.
type scratch struct {
	topVals [][]byte // parallel to Filter.tops: this record's values
	keys    []byte   // the observations' series keys, back to back
	obs     []obs
	tmp     []byte
}

// obs is one counted record: its series key ends at keys[end], v is its value.
type obs struct {
	end int
	v   float64
}

// path is an accessor split for resolve: a top-level key and its subkeys.
type path struct {
	top  int // index in Filter.tops
	subs []recordaccessor.Subkey
}

func (f *Filter) pathOf(ra *recordaccessor.Accessor) path {
	for i, t := range f.tops {
		if t == ra.Key {
			return path{top: i, subs: ra.Subkeys}
		}
	}
	f.tops = append(f.tops, ra.Key)
	return path{top: len(f.tops) - 1, subs: ra.Subkeys}
}

// scanTops records the value of every top-level key the paths start from:
// the last pair whose key is a string equal to it, as
// recordaccessor.Accessor.Get finds it.
func (f *Filter) scanTops(sc *scratch, body []byte) {
	clear(sc.topVals)
	if len(f.tops) == 0 {
		return
	}
	n, off, ok := recordaccessor.MapHeader(body)
	if !ok {
		return
	}
	for range n {
		kEnd, err := event.Skip(body, off)
		if err != nil {
			clear(sc.topVals)
			return
		}
		vEnd, err := event.Skip(body, kEnd)
		if err != nil {
			clear(sc.topVals)
			return
		}
		if k, ok := recordaccessor.Str(body[off:kEnd]); ok {
			for i, t := range f.tops {
				if string(k) == t {
					sc.topVals[i] = body[kEnd:vEnd:vEnd]
				}
			}
		}
		off = vEnd
	}
}

// resolve finishes a lookup from the top-level value scanTops found, as
// recordaccessor.Accessor.Get would.
func (f *Filter) resolve(sc *scratch, p path) ([]byte, bool) {
	v := sc.topVals[p.top]
	if v == nil {
		return nil, false
	}
	return recordaccessor.Follow(v, p.subs)
}

func propErr(p *config.Prop, format string, args ...any) error {
	return &config.Error{File: p.File, Line: p.Line, Key: p.Key, Msg: fmt.Sprintf(format, args...)}
}

// parseAccessor compiles a record accessor as flb_ra_create does: a plain
// name ("duration") names that top-level key.
func parseAccessor(s string) (*recordaccessor.Accessor, error) {
	ra, err := recordaccessor.Parse(s)
	if err != nil {
		return nil, err
	}
	if !ra.Found {
		return nil, fmt.Errorf("%q names no record key", s)
	}
	return ra, nil
}

// parseBucket accepts what upstream's convert_double does in practice: a
// decimal number.
func parseBucket(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v, err == nil && !math.IsNaN(v)
}

// joinName is cmetrics' NAMESPACE_SUBSYSTEM_NAME, skipping empty parts.
func joinName(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "_")
}

// EmitterName is the source of the metrics chunks.
func (f *Filter) EmitterName() string { return f.emitter }

// FlushInterval tells the filter stage how often to call FlushPending.
func (f *Filter) FlushInterval() time.Duration {
	if f.interval == 0 {
		// Nothing is held between chunks: the stage's slowest tick will do.
		return time.Hour
	}
	return f.interval
}

// keep applies the regex/exclude rules as Fluent Bit's legacy grep does.
func (f *Filter) keep(body []byte) bool {
	for i := range f.rules {
		r := &f.rules[i]
		if r.ra.MatchString(body, r.re.Match) {
			return !r.exclude
		}
		if !r.exclude {
			return false
		}
	}
	return true
}

// FilterChunk updates the metric with every selected record and passes the
// chunk on (or nothing, with discard_logs). Without a flush interval, a
// metrics chunk with the metric's current series follows when any record
// was selected. A chunk that cannot be decoded changes nothing.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	sc := f.scratch.Get().(*scratch)
	defer f.scratch.Put(sc)
	sc.keys, sc.obs = sc.keys[:0], sc.obs[:0]
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		if raw.Kind() == event.KindRecord && f.keep(raw.Body) {
			f.read(sc, raw.Body)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	var mc *chunk.Chunk
	var err error
	if len(sc.obs) > 0 {
		now := f.now()
		f.mu.Lock()
		f.apply(sc, now)
		if f.interval > 0 {
			f.dirty = true
		} else {
			mc, err = f.snapshotLocked()
		}
		f.mu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("log_to_metrics: encode metrics: %w", err)
	}
	out := make([]*chunk.Chunk, 0, 2)
	if !f.discard {
		out = append(out, c)
	}
	if mc != nil {
		out = append(out, mc)
	}
	return out, nil
}

// FlushPending emits the metric when it changed and the interval has passed
// since the last emission (or at once when all is set: the stage stops).
func (f *Filter) FlushPending(_ context.Context, now time.Time, all bool) []*chunk.Chunk {
	if f.interval == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dirty || (!all && now.Sub(f.last) < f.interval) {
		return nil
	}
	mc, err := f.snapshotLocked()
	if err != nil {
		f.log.Error("log_to_metrics: encoding the metrics failed", "error", err)
		return nil
	}
	f.dirty, f.last = false, now
	return []*chunk.Chunk{mc}
}

// read notes the series key and value of one selected record, when it
// counts (a gauge or histogram needs a number).
func (f *Filter) read(sc *scratch, body []byte) {
	f.scanTops(sc, body)
	var v float64
	if f.mode != modeCounter {
		var ok bool
		if v, ok = f.number(sc); !ok {
			return
		}
	}
	for _, p := range f.labelPath {
		raw, ok := f.resolve(sc, p)
		sc.tmp = appendLabelValue(sc.tmp[:0], raw, ok)
		// Length-prefixed, so no two label value lists share a key.
		sc.keys = binary.AppendUvarint(sc.keys, uint64(len(sc.tmp)))
		sc.keys = append(sc.keys, sc.tmp...)
	}
	sc.obs = append(sc.obs, obs{end: len(sc.keys), v: v})
}

// apply updates the series with what read noted; f.mu is held.
func (f *Filter) apply(sc *scratch, now time.Time) {
	start := 0
	for _, o := range sc.obs {
		key := sc.keys[start:o.end]
		start = o.end
		s := f.series[string(key)]
		if s == nil {
			s = &series{labels: splitKey(key, len(f.keys))}
			if f.mode == modeHistogram {
				s.counts = make([]uint64, len(f.bounds)+1)
			}
			f.series[string(key)] = s
			f.order = append(f.order, s)
		}
		s.ts = now
		switch f.mode {
		case modeCounter:
			s.value++
		case modeGauge:
			s.value = o.v
		case modeHistogram:
			// cmt_histogram_observe: the first bucket whose bound is >= v.
			s.counts[sort.SearchFloat64s(f.bounds, o.v)]++
			s.sum += o.v
			s.count++
		}
	}
}

// splitKey is the label values a series key was made of.
func splitKey(key []byte, n int) []string {
	out := make([]string, 0, n)
	for len(key) > 0 {
		l, w := binary.Uvarint(key)
		out = append(out, string(key[w:w+int(l)]))
		key = key[w+int(l):]
	}
	return out
}

// number reads value_field as flb_ra_get_value_object and the mode's switch
// in cb_log_to_metrics_filter do.
func (f *Filter) number(sc *scratch) (float64, bool) {
	raw, ok := f.resolve(sc, f.valuePath)
	if !ok {
		f.warn("given value field is empty or not existent")
		return 0, false
	}
	if s, ok := recordaccessor.StrOrBin(raw); ok {
		return scanFloat(string(s)), true
	}
	v, _, err := event.Value(raw, 0)
	if err == nil {
		switch n := v.(type) {
		case int64:
			return float64(n), true
		case uint64:
			return float64(n), true
		case float64:
			return n, true
		case float32:
			return float64(n), true
		}
	}
	f.warn("cannot convert given value to metric")
	return 0, false
}

// warn logs a problem with a record's value at most once every 10 seconds:
// it would otherwise repeat for every record.
func (f *Filter) warn(msg string) {
	now := time.Now().UnixNano()
	last := f.warnAt.Load()
	if now-last < int64(10*time.Second) || !f.warnAt.CompareAndSwap(last, now) {
		return
	}
	f.log.Warn("log_to_metrics: "+msg+"; the record is not counted", "value_field", f.value.Pattern, "metric", f.name)
}

// appendLabelValue appends a label's value as upstream formats it.
func appendLabelValue(dst, raw []byte, ok bool) []byte {
	if !ok {
		return dst
	}
	if s, ok := recordaccessor.StrOrBin(raw); ok {
		if len(s) > maxLabelValue {
			s = s[:maxLabelValue]
		}
		return append(dst, s...)
	}
	v, _, err := event.Value(raw, 0)
	if err != nil {
		return dst
	}
	switch n := v.(type) {
	case int64:
		return strconv.AppendInt(dst, n, 10)
	case uint64:
		return strconv.AppendInt(dst, int64(n), 10) // C's (long) cast
	case float64:
		return strconv.AppendFloat(dst, n, 'f', 6, 64)
	case float32:
		return strconv.AppendFloat(dst, float64(n), 'f', 6, 64)
	}
	return dst
}

// scanFloat is sscanf(s, "%lf"): the longest number at the start of s after
// white space, 0 when there is none.
func scanFloat(s string) float64 {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	end := 0
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if rest := strings.ToLower(s[i:]); strings.HasPrefix(rest, "inf") || strings.HasPrefix(rest, "nan") {
		n := i + 3
		if strings.HasPrefix(rest, "infinity") {
			n = i + 8
		}
		v, _ := strconv.ParseFloat(s[:n], 64)
		return v
	}
	digits := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, true
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, true
		}
	}
	if !digits {
		return 0
	}
	end = i
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			end = k
		}
	}
	v, _ := strconv.ParseFloat(s[:end], 64)
	return v
}

// snapshotLocked encodes every series as one OTLP metrics chunk. f.mu is held.
func (f *Filter) snapshotLocked() (*chunk.Chunk, error) {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	m := sm.Metrics().AppendEmpty()
	m.SetName(f.name)
	m.SetDescription(f.desc)
	start := pcommon.NewTimestampFromTime(f.start)
	attrs := func(a pcommon.Map, s *series) {
		a.EnsureCapacity(len(f.keys))
		for i, k := range f.keys {
			a.PutStr(k, s.labels[i])
		}
	}
	switch f.mode {
	case modeCounter:
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps := sum.DataPoints()
		dps.EnsureCapacity(len(f.order))
		for _, s := range f.order {
			dp := dps.AppendEmpty()
			attrs(dp.Attributes(), s)
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(s.ts))
			dp.SetDoubleValue(s.value)
		}
	case modeGauge:
		dps := m.SetEmptyGauge().DataPoints()
		dps.EnsureCapacity(len(f.order))
		for _, s := range f.order {
			dp := dps.AppendEmpty()
			attrs(dp.Attributes(), s)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(s.ts))
			dp.SetDoubleValue(s.value)
		}
	case modeHistogram:
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dps := h.DataPoints()
		dps.EnsureCapacity(len(f.order))
		for _, s := range f.order {
			dp := dps.AppendEmpty()
			attrs(dp.Attributes(), s)
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(s.ts))
			dp.SetCount(s.count)
			dp.SetSum(s.sum)
			dp.ExplicitBounds().FromRaw(f.bounds)
			dp.BucketCounts().FromRaw(s.counts)
		}
	}
	data, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		return nil, err
	}
	return &chunk.Chunk{Tag: f.tag, Type: chunk.Metrics, Records: len(f.order), Data: data, Source: f.emitter}, nil
}
