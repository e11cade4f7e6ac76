package droplog

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock fires AfterFunc callbacks when Advance passes their time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// pending counts timers that have neither fired nor been stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// Advance moves time forward by d, firing due timers in time order with the
// clock set to each one's time, as a real clock would.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var due *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.fired && !t.at.After(end) {
				due = t
				break
			}
		}
		if due == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		due.fired = true
		c.now = due.at
		c.mu.Unlock()
		due.f()
	}
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu    sync.Mutex
	level slog.Level
	recs  []line
	attrs []slog.Attr
}

type line struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	ln := line{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	for _, a := range r.attrs {
		ln.attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		ln.attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, ln)
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorderView{r, append(append([]slog.Attr(nil), r.attrs...), as...)}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

// recorderView shares the parent's record list but adds attributes.
type recorderView struct {
	root  *recorder
	attrs []slog.Attr
}

func (v *recorderView) Enabled(ctx context.Context, l slog.Level) bool { return v.root.Enabled(ctx, l) }
func (v *recorderView) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(v.attrs...)
	return v.root.Handle(ctx, rec)
}
func (v *recorderView) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorderView{v.root, append(append([]slog.Attr(nil), v.attrs...), as...)}
}
func (v *recorderView) WithGroup(string) slog.Handler { return v }

func (r *recorder) lines() []line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]line(nil), r.recs...)
}

func setup(level, min slog.Level) (*Logger, *recorder, *fakeClock) {
	rec := &recorder{level: min}
	clk := newFakeClock()
	l := New(slog.New(rec).With("reason", "not_json"), "input is not JSON, dropped",
		Options{Level: level, Interval: 10 * time.Second, Clock: clk})
	return l, rec, clk
}

func TestFirstDropLoggedAtOnceWithSample(t *testing.T) {
	l, rec, _ := setup(slog.LevelWarn, slog.LevelInfo)
	l.Drop(1, "offset", 17, "line", "hello world")
	got := rec.lines()
	if len(got) != 1 {
		t.Fatalf("got %d lines after the first drop, want 1: %+v", len(got), got)
	}
	ln := got[0]
	if ln.level != slog.LevelWarn || ln.msg != "input is not JSON, dropped" {
		t.Errorf("first line = %v %q", ln.level, ln.msg)
	}
	for k, v := range map[string]string{"reason": "not_json", "records": "1", "offset": "17", "line": "hello world"} {
		if ln.attrs[k] != v {
			t.Errorf("attr %s = %q, want %q (line %+v)", k, ln.attrs[k], v, ln)
		}
	}
}

func TestBurstGivesOneSummaryPerInterval(t *testing.T) {
	l, rec, clk := setup(slog.LevelWarn, slog.LevelInfo)
	l.Drop(1, "offset", 0)
	// 1000 more drops of 2 records each over 25 s, one every 25 ms.
	for i := 1; i <= 1000; i++ {
		clk.Advance(25 * time.Millisecond)
		l.Drop(2, "offset", i)
	}
	got := rec.lines()
	// t=0 first line; t=10s summary; t=20s summary; the last 5 s wait for t=30s.
	if len(got) != 3 {
		t.Fatalf("got %d lines for a 25 s burst, want 3 (first + 2 summaries): %+v", len(got), got)
	}
	// Drops at 25ms·i: i in 1..399 land before the 10 s tick (i=400 lands at
	// exactly 10 s, after the timer fired, as the timer is due first).
	if got[1].attrs["records"] != "798" || !strings.Contains(got[1].msg, "dropped 798 more records in the last 10s") {
		t.Errorf("first summary = %q %v", got[1].msg, got[1].attrs)
	}
	if got[1].attrs["offset"] != "399" {
		t.Errorf("first summary should carry the latest sample, offset=399; got %v", got[1].attrs)
	}
	if got[2].attrs["records"] != "800" {
		t.Errorf("second summary = %q %v", got[2].msg, got[2].attrs)
	}
	clk.Advance(10 * time.Second)
	got = rec.lines()
	if len(got) != 4 {
		t.Fatalf("got %d lines after the burst's last interval, want 4", len(got))
	}
	// Every record is reported exactly once across the lines.
	total := 0
	for _, ln := range got {
		var n int
		fmt.Sscan(ln.attrs["records"], &n)
		total += n
	}
	if total != 1+2*1000 {
		t.Errorf("records over all lines = %d, want %d", total, 1+2*1000)
	}
	if got[3].attrs["records"] != "402" {
		t.Errorf("third summary = %q %v", got[3].msg, got[3].attrs)
	}
}

func TestQuietIntervalEndsBurst(t *testing.T) {
	l, rec, clk := setup(slog.LevelWarn, slog.LevelInfo)
	l.Drop(1)
	clk.Advance(10 * time.Second) // nothing more: no summary
	if n := len(rec.lines()); n != 1 {
		t.Fatalf("a lone drop produced %d lines, want 1", n)
	}
	if clk.pending() != 0 {
		t.Errorf("%d timers still pending after a quiet interval", clk.pending())
	}
	clk.Advance(time.Hour)
	l.Drop(3, "tag", "app")
	got := rec.lines()
	if len(got) != 2 || got[1].msg != "input is not JSON, dropped" || got[1].attrs["records"] != "3" {
		t.Fatalf("a drop after a quiet spell should be logged at once as a first drop: %+v", got)
	}
}

func TestFlushReportsPendingAndStopsTimer(t *testing.T) {
	l, rec, clk := setup(slog.LevelWarn, slog.LevelInfo)
	l.Drop(1)
	clk.Advance(time.Second)
	l.Drop(4, "offset", 99)
	clk.Advance(2 * time.Second)
	l.Flush()
	got := rec.lines()
	if len(got) != 2 || got[1].attrs["records"] != "4" || got[1].attrs["offset"] != "99" {
		t.Fatalf("flush should log the pending 4 records: %+v", got)
	}
	if !strings.Contains(got[1].msg, "dropped 4 more records in the last 3s") {
		t.Errorf("summary message = %q", got[1].msg)
	}
	if clk.pending() != 0 {
		t.Errorf("flush left %d timers pending", clk.pending())
	}
	clk.Advance(time.Minute)
	l.Flush()
	if n := len(rec.lines()); n != 2 {
		t.Errorf("nothing pending, yet %d lines", n)
	}
}

func TestDisabledLevelLogsNothing(t *testing.T) {
	l, rec, clk := setup(slog.LevelDebug, slog.LevelInfo)
	for i := 0; i < 100; i++ {
		l.Drop(1)
	}
	clk.Advance(time.Minute)
	l.Flush()
	if n := len(rec.lines()); n != 0 {
		t.Errorf("debug drops logged %d lines at info level", n)
	}
	if clk.pending() != 0 {
		t.Errorf("a disabled logger armed %d timers", clk.pending())
	}
}

func TestNilLoggerIsSafe(t *testing.T) {
	var l *Logger
	l.Drop(1)
	l.Flush()
	New(nil, "x", Options{}).Drop(1)
}

func TestConcurrentDropsAllReported(t *testing.T) {
	l, rec, clk := setup(slog.LevelWarn, slog.LevelInfo)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.Drop(1)
				if i%100 == 0 {
					clk.Advance(3 * time.Second)
				}
			}
		}()
	}
	wg.Wait()
	l.Flush()
	total := 0
	for _, ln := range rec.lines() {
		var n int
		fmt.Sscan(ln.attrs["records"], &n)
		total += n
	}
	if total != 8*500 {
		t.Errorf("lines report %d records, want %d", total, 8*500)
	}
}

func TestRealClockSummary(t *testing.T) {
	rec := &recorder{level: slog.LevelInfo}
	l := New(slog.New(rec), "dropped", Options{Level: slog.LevelWarn, Interval: 20 * time.Millisecond})
	l.Drop(1)
	l.Drop(1)
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.lines()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := rec.lines()
	if len(got) != 2 || got[1].attrs["records"] != "1" {
		t.Fatalf("real clock: %+v", got)
	}
}
