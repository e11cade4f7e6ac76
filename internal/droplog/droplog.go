// Package droplog logs dropped input without flooding the log: the first
// drop of a kind is logged at once, with a sample that lets the user find
// the bad input (a tag, a byte offset, the start of a line), and the drops
// that follow are summed and reported in one summary line per interval
// ("dropped 41 more records in the last 10s"). A burst of a million bad
// records thus costs two log lines, not a million, and still never goes
// unreported; a quiet interval ends the burst, so the next drop is logged at
// once again.
//
// Counting is the caller's business (a metric counter next to the Logger):
// the log is only a pointer to the problem, the counter is the record of it.
package droplog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a summary is logged while drops go on.
const DefaultInterval = 10 * time.Second

// Timer is what Clock.AfterFunc returns.
type Timer interface{ Stop() bool }

// Clock is the time source; tests inject a fake one to drive the intervals.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Options tune a Logger; the zero value logs at Info every DefaultInterval.
type Options struct {
	// Level of every line. Use slog.LevelDebug for intentional drops (a grep
	// filter doing its job), slog.LevelWarn for input that was lost.
	Level slog.Level
	// Interval between summaries; <= 0 means DefaultInterval.
	Interval time.Duration
	// Clock is the time source; nil means the real clock.
	Clock Clock
}

// Logger reports one kind of drop (one reason at one site). It is safe for
// concurrent use.
type Logger struct {
	log   *slog.Logger
	msg   string
	level slog.Level
	every time.Duration
	clock Clock

	mu      sync.Mutex
	open    bool      // a window is running: drops are summed until it ends
	since   time.Time // start of the running window
	records uint64    // records dropped in the window and not yet logged
	sample  []any     // the latest of those drops' sample
	timer   Timer
}

// New returns a Logger writing msg to l. l's attributes should name the
// site and the reason (l.With("reason", "not_json")).
func New(l *slog.Logger, msg string, o Options) *Logger {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return &Logger{log: l, msg: msg, level: o.Level, every: o.Interval, clock: o.Clock}
}

// Drop reports n records dropped. sample is slog key-value pairs describing
// this drop ("offset", 1234, "line", "garbage…"); it is logged with the
// first drop of a burst, and the latest one with each summary.
func (d *Logger) Drop(n int, sample ...any) {
	if d == nil || d.log == nil || !d.log.Enabled(context.Background(), d.level) {
		return
	}
	d.mu.Lock()
	if d.open {
		d.records += uint64(max(n, 0))
		d.sample = append(d.sample[:0], sample...)
		d.mu.Unlock()
		return
	}
	d.open = true
	d.since = d.clock.Now()
	d.timer = d.clock.AfterFunc(d.every, d.tick)
	d.mu.Unlock()
	args := make([]any, 0, 2+len(sample))
	args = append(args, "records", n)
	args = append(args, sample...)
	d.log.Log(context.Background(), d.level, d.msg, args...)
}

// tick ends a window: it logs the summary of the drops since the last line
// and opens the next window, or, when nothing was dropped, closes the burst.
func (d *Logger) tick() {
	d.mu.Lock()
	if !d.open {
		d.mu.Unlock()
		return
	}
	if d.records == 0 {
		d.open = false
		d.timer = nil
		d.mu.Unlock()
		return
	}
	n, sample, since := d.take()
	now := d.clock.Now()
	d.since = now
	d.timer = d.clock.AfterFunc(d.every, d.tick)
	d.mu.Unlock()
	d.summary(n, sample, now.Sub(since))
}

// take empties the window's tally; d.mu is held.
func (d *Logger) take() (uint64, []any, time.Time) {
	n, sample, since := d.records, d.sample, d.since
	d.records, d.sample = 0, nil
	return n, sample, since
}

func (d *Logger) summary(n uint64, sample []any, over time.Duration) {
	args := make([]any, 0, 4+len(sample))
	args = append(args, "records", n, "interval", over.Round(time.Millisecond).String())
	args = append(args, sample...)
	d.log.Log(context.Background(), d.level, fmt.Sprintf("%s: dropped %d more records in the last %s", d.msg, n, over.Round(time.Second)), args...)
}

// Flush logs the summary of drops not yet reported and ends the burst, so
// that a stage stopping, or an input reaching the end of its data, does not
// leave its last drops unlogged until the timer fires (or never, if the
// process exits first).
func (d *Logger) Flush() {
	if d == nil {
		return
	}
	d.mu.Lock()
	if !d.open {
		d.mu.Unlock()
		return
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.open = false
	n, sample, since := d.take()
	now := d.clock.Now()
	d.mu.Unlock()
	if n > 0 {
		d.summary(n, sample, now.Sub(since))
	}
}
