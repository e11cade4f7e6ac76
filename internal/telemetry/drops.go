package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/droplog"
	"github.com/floe-io/floe/internal/event"
)

// MetricDroppedRecords counts every record Floe drops, wherever and why:
// floe_dropped_records_total{stage,plugin,reason}. stage is the Floe stage
// (ingest, filter, router, output, vivo), plugin the instance's display name
// ("stdin.0", "grep.0"; the stage's name when the stage itself drops, as the
// router does with unmatched chunks), reason one of the Drop* constants. In
// /api/v1/metrics it is "floe" → "dropped" → stage → plugin → reason → N.
const MetricDroppedRecords = "floe_dropped_records_total"

// Reasons a record is dropped.
const (
	// DropNotJSON: input text that is not JSON (stdin).
	DropNotJSON = "not_json"
	// DropNotRecord: a JSON value that is neither a map nor an event array.
	DropNotRecord = "not_a_record"
	// DropInvalidEvent: an event array that is not [TIME, BODY] or [[TIME, META], BODY].
	DropInvalidEvent = "invalid_event"
	// DropTooLong: a value longer than the input accepts.
	DropTooLong = "too_long"
	// DropIncomplete: a value cut off by the end of the input.
	DropIncomplete = "incomplete"
	// DropParseError: a line an input's parser rejected (exec_wasi).
	DropParseError = "parse_error"
	// DropUnmatched: a chunk no output's Match accepts (router).
	DropUnmatched = "unmatched"
	// DropFiltered: a record a filter rejected on purpose (grep, a WASM
	// filter returning NULL, ...). Intentional, so logged at debug level.
	DropFiltered = "filtered"
	// DropFilterError: a record a filter could not process and dropped
	// (a WASM call that trapped or timed out with on_error drop).
	DropFilterError = "filter_error"
	// DropMalformedChunk: a chunk whose MessagePack does not decode, set
	// aside on the dead-letter stream (floe dlq list).
	DropMalformedChunk = "malformed_chunk"
	// DropDeadLetter: a chunk set aside on the dead-letter stream for any
	// other reason (an output's ERROR, retries exhausted).
	DropDeadLetter = "dead_letter"
)

type dropKey struct{ stage, plugin, reason string }

type dropEntry struct {
	key dropKey
	c   *Counter
}

// drops is the insertion-ordered set of drop counters; guarded by Registry.mu.
type drops struct {
	byKey map[dropKey]*Counter
	order []dropEntry
}

func (d *drops) get(k dropKey) *Counter {
	if c, ok := d.byKey[k]; ok {
		return c
	}
	if d.byKey == nil {
		d.byKey = make(map[dropKey]*Counter)
	}
	c := new(Counter)
	d.byKey[k] = c
	d.order = append(d.order, dropEntry{key: k, c: c})
	return c
}

// Dropped returns the counter of records dropped at stage by plugin for
// reason, creating it on first use. On a nil Registry (tests, plugins built
// without telemetry) it returns a fresh counter nobody exports.
func (r *Registry) Dropped(stage, plugin, reason string) *Counter {
	if r == nil {
		return new(Counter)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drops.get(dropKey{stage, plugin, reason})
}

func (r *Registry) dropList() []dropEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drops.order[:len(r.drops.order):len(r.drops.order)]
}

// DropSite describes one place that drops records for one reason.
type DropSite struct {
	Stage  string
	Plugin string // instance display name; the stage's name when the stage drops
	Reason string // a Drop* constant
	// Msg is the log message of the first drop of a burst ("input is not
	// JSON, dropped").
	Msg string
	// Level of the log lines: slog.LevelDebug for intentional drops,
	// usually slog.LevelWarn otherwise.
	Level slog.Level
	// Log options (interval, clock) beyond Level; optional.
	Log droplog.Options
}

// Dropper counts the records one site drops and logs them rate-limited (see
// package droplog). It is safe for concurrent use.
type Dropper struct {
	c   *Counter
	log *droplog.Logger
}

// Dropper returns the counter-and-log of a drop site. log should carry the
// site's context (the stage's or plugin's logger); "reason" is added. On a
// nil Registry the count is kept but not exported.
func (r *Registry) Dropper(log *slog.Logger, s DropSite) *Dropper {
	o := s.Log
	o.Level = s.Level
	var l *droplog.Logger
	if log != nil {
		l = droplog.New(log.With("reason", s.Reason), s.Msg, o)
	}
	return &Dropper{c: r.Dropped(s.Stage, s.Plugin, s.Reason), log: l}
}

// Drop counts n records dropped and logs it (at once for the first of a
// burst, in a summary later otherwise). sample is slog key-value pairs that
// locate the bad input (tag, byte offset, the start of a line).
func (d *Dropper) Drop(n int, sample ...any) {
	if d == nil || n <= 0 {
		return
	}
	d.c.Add(uint64(n))
	d.log.Drop(n, sample...)
}

// Count is how many records this site dropped so far.
func (d *Dropper) Count() uint64 {
	if d == nil {
		return 0
	}
	return d.c.Load()
}

// Flush logs the drops not yet reported (on stop or end of input).
func (d *Dropper) Flush() {
	if d != nil {
		d.log.Flush()
	}
}

// Dropper returns a drop site of this stage (see Registry.Dropper); an empty
// plugin means the stage itself drops. Stage metrics made outside a Registry
// count without exporting.
func (m *StageMetrics) Dropper(log *slog.Logger, plugin, reason, msg string, level slog.Level) *Dropper {
	if plugin == "" {
		plugin = m.name
	}
	return m.reg.Dropper(log, DropSite{Stage: m.name, Plugin: plugin, Reason: reason, Msg: msg, Level: level})
}

// appendDropsJSON appends
// `,"dropped":{"<stage>":{"<plugin>":{"<reason>":N,…},…},…}`, each level in
// first-registration order.
func appendDropsJSON(b []byte, list []dropEntry) []byte {
	b = append(b, `,"dropped":{`...)
	done := make([]bool, len(list))
	nStages := 0
	for i := range list {
		if done[i] {
			continue
		}
		stage := list[i].key.stage
		b = objStart(b, nStages, stage)
		nStages++
		nPlugins := 0
		for j := i; j < len(list); j++ {
			if done[j] || list[j].key.stage != stage {
				continue
			}
			plugin := list[j].key.plugin
			b = objStart(b, nPlugins, plugin)
			nPlugins++
			nReasons := 0
			for k := j; k < len(list); k++ {
				if done[k] || list[k].key.stage != stage || list[k].key.plugin != plugin {
					continue
				}
				done[k] = true
				if nReasons > 0 {
					b = append(b, ',')
				}
				nReasons++
				b = appendJSONString(b, list[k].key.reason)
				b = append(b, ':')
				b = strconv.AppendUint(b, list[k].c.Load(), 10)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func newDropDesc() *prometheus.Desc {
	return prometheus.NewDesc(MetricDroppedRecords,
		"Number of records dropped, by stage, plugin instance and reason.",
		[]string{"stage", "plugin", "reason"}, nil)
}

func collectDrops(ch chan<- prometheus.Metric, d *prometheus.Desc, list []dropEntry) {
	for _, e := range list {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(e.c.Load()),
			e.key.stage, e.key.plugin, e.key.reason)
	}
}

// DropNotes is how a plugin run by a stage tells it why records it was given
// did not come out: a filter returns fewer records than it got, and the
// stage counts the difference as DropFiltered unless the filter noted
// another reason (NoteDrop(ctx, DropFilterError, n)). The stage makes one
// per call (WithDropNotes) and reads it afterwards; it is safe for
// concurrent use by the plugin.
type DropNotes struct {
	mu sync.Mutex
	n  map[string]int
}

type dropNotesKey struct{}

// WithDropNotes returns ctx carrying notes.
func WithDropNotes(ctx context.Context, notes *DropNotes) context.Context {
	return context.WithValue(ctx, dropNotesKey{}, notes)
}

// NoteDrop tells the stage that n records were dropped for reason. Without
// notes in ctx (a plugin run outside a stage) it does nothing.
func NoteDrop(ctx context.Context, reason string, n int) {
	d, _ := ctx.Value(dropNotesKey{}).(*DropNotes)
	if d == nil || n <= 0 {
		return
	}
	d.mu.Lock()
	if d.n == nil {
		d.n = make(map[string]int)
	}
	d.n[reason] += n
	d.mu.Unlock()
}

// Take returns the records noted for reason and forgets them.
func (d *DropNotes) Take(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.n[reason]
	delete(d.n, reason)
	return n
}

// Reset forgets every note, for reuse on the next call.
func (d *DropNotes) Reset() {
	d.mu.Lock()
	clear(d.n)
	d.mu.Unlock()
}

// Dropped returns this stage's counter for plugin and reason (see
// Registry.Dropped); an empty plugin means the stage.
func (m *StageMetrics) Dropped(plugin, reason string) *Counter {
	if plugin == "" {
		plugin = m.name
	}
	return m.reg.Dropped(m.name, plugin, reason)
}

// DeadLetterReason is the drop reason of a chunk set aside with err:
// DropMalformedChunk when its MessagePack did not decode, else DropDeadLetter.
func DeadLetterReason(err error) string {
	var de *event.DecodeError
	if errors.As(err, &de) {
		return DropMalformedChunk
	}
	return DropDeadLetter
}

// ChunkRecords is the number of records in a chunk dropped or set aside:
// its Floe-Records header, else the events that decode in it, and at least
// one, so that no drop counts zero.
func ChunkRecords(c *chunk.Chunk) int {
	n := c.Records
	if n <= 0 && c.Signal() == chunk.Logs {
		n, _ = event.Count(c.Data)
	}
	return max(n, 1)
}
