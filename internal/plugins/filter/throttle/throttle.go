// Package throttle is Fluent Bit's throttle filter (plugins/filter_throttle):
// it drops records once their average rate over a sliding window exceeds
// a limit.
//
// As upstream, the window is Window panes of Interval each; a record passes
// while the records passed in the window, divided by Window (an integer
// division), is below Rate, and is dropped otherwise. Every Interval the
// oldest pane leaves the window. With Print_Status the filter logs, at
// info level, each pane it closes: its records and the window's average.
//
// The limit holds per filter replica: each filter process keeps its own
// window (Floe does not share the counter across replicas), so with N
// replicas up to N × Rate records per second pass. Panes advance as
// records arrive, so the status of idle intervals is printed when the next
// record comes. Matching records of every tag share one window, as in
// Fluent Bit.
package throttle

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// Spec describes the throttle filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "throttle",
		Desc: "throttle messages using sliding window algorithm",
		Keys: []plugin.Key{
			{Name: "rate", Type: plugin.Float, Default: "1", Desc: "records per interval allowed, on average over the window"},
			{Name: "window", Type: plugin.Int, Default: "5", Desc: "number of intervals in the sliding window"},
			{Name: "interval", Type: plugin.Seconds, Default: "1", Desc: "length of an interval (1s, 1m, ...)"},
			{Name: "print_status", Type: plugin.Bool, Default: "false", Desc: "log the window's state each interval"},
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := New(ctx, set, p)
			return err
		},
	}
}

// Filter is one throttle instance.
type Filter struct {
	rate     float64
	interval time.Duration
	print    bool
	log      *slog.Logger
	name     string
	now      func() time.Time

	mu    sync.Mutex
	panes []int64
	cur   int   // index of the current pane
	pane  int64 // number of the current pane since start
	total int64
	start time.Time
}

// New reads the settings.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	f := &Filter{rate: p.Float("rate"), print: p.Bool("print_status"), log: set.Logger, name: set.DisplayName(), now: time.Now}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.rate <= 0 {
		return nil, p.Errorf("rate", "rate must be above 0, not %q", p.String("rate"))
	}
	w := p.Int("window")
	if w <= 0 {
		return nil, p.Errorf("window", "window must be at least 1, not %q", p.String("window"))
	}
	f.interval = time.Duration(p.Seconds("interval") * float64(time.Second))
	if f.interval <= 0 {
		return nil, p.Errorf("interval", "interval must be above 0, not %q", p.String("interval"))
	}
	f.panes = make([]int64, w)
	return f, nil
}

// advance moves the window to now, emptying the panes that left it.
func (f *Filter) advance(now time.Time) {
	if f.start.IsZero() {
		f.start = now
		return
	}
	target := int64(now.Sub(f.start) / f.interval)
	for f.pane < target {
		if f.print {
			f.log.Info("throttle status", "filter", f.name, "pane_records", f.panes[f.cur],
				"window_records", f.total, "average", f.total/int64(len(f.panes)), "rate", f.rate)
		}
		if target-f.pane > int64(len(f.panes)) {
			// Idle longer than the window: everything left it.
			clear(f.panes)
			f.total, f.cur, f.pane = 0, 0, target
			break
		}
		f.cur = (f.cur + 1) % len(f.panes)
		f.total -= f.panes[f.cur]
		f.panes[f.cur] = 0
		f.pane++
	}
}

// allow reports whether one more record may pass, and counts it if so.
func (f *Filter) allow() bool {
	if float64(f.total/int64(len(f.panes))) >= f.rate {
		return false
	}
	f.panes[f.cur]++
	f.total++
	return true
}

// FilterChunk drops the records over the rate.
func (f *Filter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(f.now())
	var out []byte
	n, dropped := 0, 0
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		if raw.Kind() == event.KindRecord {
			if !f.allow() {
				if dropped == 0 {
					out = append(make([]byte, 0, len(c.Data)), c.Data[:raw.Offset]...)
				}
				dropped++
				continue
			}
			n++
		}
		if dropped > 0 {
			out = append(out, raw.Raw...)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if dropped == 0 {
		return []*chunk.Chunk{c}, nil
	}
	if n == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out, Source: c.Source}}, nil
}
