// Package dummy is Fluent Bit's dummy input: it generates a fixed record at a
// fixed rate, for tests, benchmarks and getting started.
//
// Behaviour follows plugins/in_dummy/in_dummy.c:
//
//   - Every interval (interval_sec + interval_nsec when either is > 0, else
//     1s/rate when rate > 1, else one second) one "generation" of copies
//     events is produced. flush_on_startup adds a generation at start.
//   - samples limits the number of generations, as upstream's samples_count
//     counts collector runs: samples × copies events in all. 0 (or a
//     negative value) means no limit. When the limit is reached Run waits
//     for every write to be stored and returns nil.
//   - dummy and metadata are JSON. An empty or invalid dummy logs a warning
//     and falls back to {"message":"dummy"}; an invalid metadata falls back
//     to {}. A dummy that is valid JSON but not an object generates no events
//     (upstream only emits map values).
//   - Timestamps: with start_time_sec/start_time_nsec (either >= 0, the other
//     then counting as 0) the time is that start plus the time elapsed since
//     the input started; fixed_timestamp freezes it to the start time (or to
//     the time the input started when no start time is set).
//
// Floe guarantee: without fixed_timestamp, the timestamps of one dummy
// instance are strictly increasing. When the clock would give a time not
// after the previous event's (copies of one generation, a coarse clock, a
// clock step back), the event gets the previous time + 1ns, so every event
// is distinguishable by its time. fixed_timestamp keeps upstream's identical
// timestamps.
//
// Efficiency: below 20ms per generation the input does not wake up for each
// generation; it wakes every 20ms and writes all generations due since the
// last wake in one Write, each stamped with its scheduled time. A Write is
// split at 512 KiB. Like upstream, whose collector timer coalesces missed
// expirations, an input held back by backpressure does not catch up on more
// than two wake-ups' worth of generations.
package dummy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/receipts"
)

const (
	defaultDummy    = `{"message":"dummy"}`
	defaultMetadata = `{}`

	minWake  = 20 * time.Millisecond // batch generations below this period
	maxWrite = 512 << 10             // split writes above this size
	// maxPerWake bounds the generations built in one wake-up.
	maxPerWake = 1 << 20
)

// Spec describes the dummy input plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: "dummy",
		Desc: "Generate dummy data",
		Keys: []plugin.Key{
			{Name: "dummy", Default: defaultDummy, Desc: "the record to generate, a JSON object"},
			{Name: "metadata", Default: defaultMetadata, Desc: "the metadata of the records, a JSON object"},
			{Name: "rate", Type: plugin.Int, Default: "1", Desc: "generations per second"},
			{Name: "interval_sec", Type: plugin.Int, Default: "0", Desc: "seconds between generations; overrides rate"},
			{Name: "interval_nsec", Type: plugin.Int, Default: "0", Desc: "nanoseconds between generations; overrides rate"},
			{Name: "samples", Type: plugin.Int, Default: "0", Desc: "stop after this many generations; 0 means no limit"},
			{Name: "copies", Type: plugin.Int, Default: "1", Desc: "events per generation"},
			{Name: "start_time_sec", Type: plugin.Int, Default: "-1", Desc: "base timestamp, seconds; -1 means unset"},
			{Name: "start_time_nsec", Type: plugin.Int, Default: "-1", Desc: "base timestamp, nanoseconds; -1 means unset"},
			{Name: "fixed_timestamp", Type: plugin.Bool, Default: "off", Desc: "give every event the same timestamp"},
			{Name: "flush_on_startup", Type: plugin.Bool, Default: "false", Desc: "generate the first events at startup"},
		},
		NewInput: New,
	}
}

// Dummy is a configured dummy input.
type Dummy struct {
	tag            string
	log            *slog.Logger
	bodies         [][]byte // the MessagePack maps of the dummy value
	meta           []byte   // MessagePack map
	period         time.Duration
	samples        int // generations; 0 = unlimited
	copies         int
	fixed          bool
	flushOnStartup bool
	startSet       bool
	start          event.Time // start_time_sec/nsec

	now func() time.Time // clock, replaceable in tests
}

// New builds a dummy input from its configuration.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	d := &Dummy{
		tag:            p.String("tag"),
		log:            set.Logger,
		samples:        p.Int("samples"),
		copies:         p.Int("copies"),
		fixed:          p.Bool("fixed_timestamp"),
		flushOnStartup: p.Bool("flush_on_startup"),
		now:            time.Now,
	}
	if d.tag == "" {
		d.tag = set.Name
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.samples < 0 {
		d.samples = 0
	}
	if d.copies < 1 {
		return nil, p.Errorf("copies", "copies must be at least 1, is %d", d.copies)
	}

	var err error
	d.bodies, err = parseBody(p.String("dummy"))
	if err != nil {
		d.log.Warn("invalid dummy record, using the default "+defaultDummy, "error", err)
		d.bodies, _ = parseBody(defaultDummy)
	}
	if len(d.bodies) == 0 {
		d.log.Error("dummy is not a JSON object: no events will be generated")
	}
	d.meta, err = parseMeta(p.String("metadata"))
	if err != nil {
		d.log.Warn("invalid dummy metadata, using {}", "error", err)
		d.meta = nil
	}

	// Interval, as configure(): a negative interval resets both to 0.
	isec, insec := p.Int("interval_sec"), p.Int("interval_nsec")
	if isec < 0 || insec < 0 {
		isec, insec = 0, 0
	}
	switch rate := p.Int("rate"); {
	case isec > 0 || insec > 0:
		d.period = time.Duration(isec)*time.Second + time.Duration(insec)
	case rate > 1:
		d.period = time.Second / time.Duration(rate)
	default:
		d.period = time.Second
	}
	if d.period <= 0 { // rate above 1e9
		d.period = 1
	}

	ssec, snsec := p.Int("start_time_sec"), p.Int("start_time_nsec")
	if ssec >= 0 || snsec >= 0 {
		d.startSet = true
		ns := int64(0)
		if ssec >= 0 {
			ns = int64(ssec) * 1e9
		}
		if snsec >= 0 {
			ns += int64(snsec)
		}
		d.start = event.Time{Sec: ns / 1e9, Nsec: uint32(ns % 1e9)}
	}
	return d, nil
}

// parseBody converts the dummy JSON and keeps its map values: upstream
// generates one event per map and ignores any other value.
func parseBody(s string) ([][]byte, error) {
	if s == "" {
		return nil, errors.New("empty value")
	}
	b, err := event.AppendFromJSON(nil, []byte(s))
	if err != nil {
		return nil, err
	}
	if b[0]&0xf0 == 0x80 || b[0] == 0xde || b[0] == 0xdf {
		return [][]byte{b}, nil
	}
	return nil, nil
}

// parseMeta converts the metadata JSON, which must be an object. An empty
// object is returned as nil.
func parseMeta(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty value")
	}
	b, err := event.AppendFromJSON(nil, []byte(s))
	if err != nil {
		return nil, err
	}
	if !(b[0]&0xf0 == 0x80 || b[0] == 0xde || b[0] == 0xdf) {
		return nil, errors.New("metadata is not a JSON object")
	}
	if b[0] == 0x80 {
		return nil, nil
	}
	return b, nil
}

// Period is the time between generations.
func (d *Dummy) Period() time.Duration { return d.period }

// run is the state of one Run.
type run struct {
	d       *Dummy
	w       plugin.Writer
	tr      receipts.Tracker
	base    time.Time  // when Run started (upstream's base_timestamp)
	last    event.Time // previous timestamp
	stamped bool       // last is set
	buf     []byte
	records int
	gens    int // generations done
}

// Run generates events until ctx ends or samples generations are done.
func (d *Dummy) Run(ctx context.Context, w plugin.Writer) error {
	r := &run{d: d, w: w, base: d.now()}
	r.tr.Logger = d.log
	if err := r.loop(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	plugin.FlushWriter(w)
	_ = r.tr.Wait(ctx) // a cancelled context ends the wait: nothing more to do
	return nil
}

func (r *run) loop(ctx context.Context) error {
	d := r.d
	batched := d.period < minWake
	// A gap of more than this many generations is not caught up.
	backlog := 1
	if batched {
		backlog = int(2 * minWake / d.period)
	}
	backlog = min(backlog, maxPerWake)

	if d.flushOnStartup {
		if err := r.generate(ctx, r.base); err != nil {
			return err
		}
		if err := r.flush(ctx); err != nil {
			return err
		}
	}
	next := int64(1) // index of the next scheduled generation: due at base + next*period
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastWake := r.base
	for !r.done() {
		wake := r.base.Add(time.Duration(next) * d.period)
		if batched {
			if w := lastWake.Add(minWake); wake.Before(w) {
				wake = w
			}
		}
		timer.Reset(wake.Sub(d.now()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		now := d.now()
		lastWake = now
		due := int64(now.Sub(r.base) / d.period) // generations 1..due are due
		if due < next {
			continue // woke early
		}
		if due-next+1 > int64(backlog) {
			next = due - int64(backlog) + 1
		}
		for ; next <= due && !r.done(); next++ {
			sched := r.base.Add(time.Duration(next) * d.period)
			if !batched {
				sched = now
			}
			if err := r.generate(ctx, sched); err != nil {
				return err
			}
		}
		if err := r.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) done() bool { return r.d.samples > 0 && r.gens >= r.d.samples }

// generate appends one generation of events stamped at sched, writing
// whenever the buffer reaches maxWrite.
func (r *run) generate(ctx context.Context, sched time.Time) error {
	d := r.d
	for range d.copies {
		for _, body := range d.bodies {
			r.buf = event.AppendRaw(r.buf, r.stamp(sched), d.meta, body)
			r.records++
			if len(r.buf) >= maxWrite {
				if err := r.flush(ctx); err != nil {
					return err
				}
			}
		}
	}
	r.gens++
	return nil
}

// stamp is generate_timestamp plus Floe's strictly increasing guarantee.
func (r *run) stamp(sched time.Time) event.Time {
	d := r.d
	var t event.Time
	switch {
	case d.fixed && d.startSet:
		return d.start
	case d.fixed:
		return event.FromTime(r.base)
	case d.startSet:
		ns := d.start.UnixNano() + int64(sched.Sub(r.base))
		t = event.Time{Sec: ns / 1e9, Nsec: uint32(ns % 1e9)}
	default:
		t = event.FromTime(sched)
	}
	if r.stamped && !r.last.Before(t) {
		ns := r.last.UnixNano() + 1
		t = event.Time{Sec: ns / 1e9, Nsec: uint32(ns % 1e9)}
	}
	r.last, r.stamped = t, true
	return t
}

// flush writes the buffered events.
func (r *run) flush(ctx context.Context) error {
	if r.records == 0 {
		return nil
	}
	rc, err := r.w.Write(ctx, r.d.tag, r.buf, r.records)
	if err != nil {
		return err
	}
	r.tr.Add(rc)
	r.buf = make([]byte, 0, cap(r.buf))
	r.records = 0
	return nil
}
