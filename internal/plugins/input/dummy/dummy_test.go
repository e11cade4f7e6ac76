package dummy

import (
	"context"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

func props(t *testing.T, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeInput, File: "test.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: "dummy"})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1], File: "test.conf", Line: 2 + i})
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindInput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

func newDummy(t *testing.T, kv ...string) *Dummy {
	t.Helper()
	in, err := New(context.Background(), plugin.Settings{Name: "dummy.0"}, props(t, kv...))
	if err != nil {
		t.Fatal(err)
	}
	return in.(*Dummy)
}

// run runs d to completion (it must have samples set) and returns the events.
func runAll(t *testing.T, d *Dummy, w *plugintest.Writer) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Run(ctx, w); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run did not stop after samples")
	}
	evs, err := w.Events()
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func mp(kv ...any) event.Map {
	m := event.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m = append(m, event.KV{Key: kv[i].(string), Value: kv[i+1]})
	}
	return m
}

func TestDefaults(t *testing.T) {
	d := newDummy(t, "samples", "2", "rate", "50")
	w := &plugintest.Writer{}
	start := time.Now()
	evs := runAll(t, d, w)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	for _, ev := range evs {
		if !reflect.DeepEqual(ev.Body, mp("message", "dummy")) || len(ev.Meta) != 0 {
			t.Errorf("event %+v", ev)
		}
		if ev.Time.Std().Before(start.Add(-time.Second)) || ev.Time.Std().After(time.Now().Add(time.Second)) {
			t.Errorf("time %v not near now", ev.Time.Std())
		}
	}
	for _, wr := range w.Writes {
		if wr.Tag != "dummy.0" {
			t.Errorf("tag %q, want the instance name", wr.Tag)
		}
	}
	if d.Period() != 20*time.Millisecond {
		t.Errorf("period %v", d.Period())
	}
}

func TestTagAndRecordAndMetadata(t *testing.T) {
	d := newDummy(t, "tag", "my.tag", "samples", "1", "rate", "100",
		"dummy", `{"a": 1, "b": [true, null, 1.5], "c": {"d": "e"}}`, "metadata", `{"k": "v"}`)
	w := &plugintest.Writer{}
	evs := runAll(t, d, w)
	if len(evs) != 1 || w.Writes[0].Tag != "my.tag" || w.Writes[0].Records != 1 {
		t.Fatalf("writes %+v", w.Writes)
	}
	want := mp("a", int64(1), "b", []any{true, nil, 1.5}, "c", mp("d", "e"))
	if !reflect.DeepEqual(evs[0].Body, want) {
		t.Errorf("body %#v, want %#v", evs[0].Body, want)
	}
	if !reflect.DeepEqual(evs[0].Meta, mp("k", "v")) {
		t.Errorf("meta %#v", evs[0].Meta)
	}
}

func TestCopiesAndSamples(t *testing.T) {
	// samples counts generations, as upstream's samples_count: 3 × 4 events.
	d := newDummy(t, "samples", "3", "copies", "4", "rate", "100")
	w := &plugintest.Writer{}
	evs := runAll(t, d, w)
	if len(evs) != 12 {
		t.Fatalf("%d events, want 12", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Time.Before(evs[i].Time) {
			t.Fatalf("time %d %+v not after %+v", i, evs[i].Time, evs[i-1].Time)
		}
	}
}

func TestHighRateIsBatched(t *testing.T) {
	d := newDummy(t, "samples", "5000", "rate", "20000")
	w := &plugintest.Writer{}
	start := time.Now()
	evs := runAll(t, d, w)
	if len(evs) != 5000 {
		t.Fatalf("%d events, want 5000", len(evs))
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("5000 events at 20000/s took only %v", el)
	}
	if len(w.Writes) > 100 {
		t.Errorf("%d writes for 5000 events: not batched", len(w.Writes))
	}
	total := 0
	for _, wr := range w.Writes {
		total += wr.Records
	}
	if total != 5000 {
		t.Errorf("records %d", total)
	}
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Time.Before(evs[i].Time) {
			t.Fatalf("time %d not increasing", i)
		}
	}
}

func TestFixedTimestamp(t *testing.T) {
	d := newDummy(t, "samples", "3", "copies", "2", "rate", "100", "fixed_timestamp", "on",
		"start_time_sec", "1000", "start_time_nsec", "5")
	evs := runAll(t, d, &plugintest.Writer{})
	if len(evs) != 6 {
		t.Fatalf("%d events", len(evs))
	}
	for _, ev := range evs {
		if ev.Time != (event.Time{Sec: 1000, Nsec: 5}) {
			t.Errorf("time %+v, want 1000.000000005", ev.Time)
		}
	}
	// Only start_time_nsec set: the seconds count as 0.
	evs = runAll(t, newDummy(t, "samples", "1", "fixed_timestamp", "true", "start_time_nsec", "7", "rate", "100"), &plugintest.Writer{})
	if evs[0].Time != (event.Time{Nsec: 7}) {
		t.Errorf("time %+v, want 0.000000007", evs[0].Time)
	}
	// Without a start time every event has the time the input started.
	before := event.Now()
	evs = runAll(t, newDummy(t, "samples", "3", "fixed_timestamp", "yes", "rate", "100"), &plugintest.Writer{})
	if evs[0].Time != evs[1].Time || evs[1].Time != evs[2].Time || evs[0].Time.Before(before) {
		t.Errorf("times %+v %+v %+v", evs[0].Time, evs[1].Time, evs[2].Time)
	}
}

func TestStartTime(t *testing.T) {
	evs := runAll(t, newDummy(t, "samples", "3", "rate", "50", "start_time_sec", "1000"), &plugintest.Writer{})
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	for i, ev := range evs {
		// base + elapsed: about (i+1) periods of 20ms after 1000.
		d := time.Duration(ev.Time.UnixNano() - 1000e9)
		if d < 0 || d > 5*time.Second {
			t.Errorf("event %d at %v after start", i, d)
		}
		if i > 0 && !evs[i-1].Time.Before(ev.Time) {
			t.Errorf("not increasing")
		}
	}
}

func TestFlushOnStartup(t *testing.T) {
	d := newDummy(t, "samples", "1", "interval_sec", "3600", "flush_on_startup", "on")
	start := time.Now()
	evs := runAll(t, d, &plugintest.Writer{})
	if len(evs) != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("%d events after %v", len(evs), time.Since(start))
	}
}

func TestInvalidJSON(t *testing.T) {
	evs := runAll(t, newDummy(t, "samples", "1", "rate", "100", "dummy", `{"a": `, "metadata", "nope"), &plugintest.Writer{})
	if len(evs) != 1 || !reflect.DeepEqual(evs[0].Body, mp("message", "dummy")) || len(evs[0].Meta) != 0 {
		t.Fatalf("events %+v", evs)
	}
	// Valid JSON that is not an object generates nothing.
	w := &plugintest.Writer{}
	evs = runAll(t, newDummy(t, "samples", "2", "rate", "100", "dummy", `[{"a":1}]`), w)
	if len(evs) != 0 || len(w.Writes) != 0 {
		t.Fatalf("events %+v", evs)
	}
}

func TestPeriod(t *testing.T) {
	for _, c := range []struct {
		kv   []string
		want time.Duration
	}{
		{nil, time.Second},
		{[]string{"rate", "0"}, time.Second},
		{[]string{"rate", "-5"}, time.Second},
		{[]string{"rate", "4"}, 250 * time.Millisecond},
		{[]string{"rate", "3"}, 333333333},
		{[]string{"rate", "100", "interval_sec", "2"}, 2 * time.Second},
		{[]string{"rate", "100", "interval_nsec", "500"}, 500},
		{[]string{"interval_sec", "1", "interval_nsec", "500000000"}, 1500 * time.Millisecond},
		{[]string{"rate", "10", "interval_sec", "-1", "interval_nsec", "7"}, 100 * time.Millisecond},
	} {
		if got := newDummy(t, c.kv...).Period(); got != c.want {
			t.Errorf("%v: period %v, want %v", c.kv, got, c.want)
		}
	}
}

func TestCopiesMustBePositive(t *testing.T) {
	_, err := New(context.Background(), plugin.Settings{Name: "dummy.0"}, props(t, "copies", "0"))
	if err == nil || !strings.Contains(err.Error(), "copies") {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitsForReceipts(t *testing.T) {
	w := &plugintest.Writer{Delay: 300 * time.Millisecond}
	d := newDummy(t, "samples", "2", "rate", "100")
	start := time.Now()
	if err := d.Run(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	w.Mu.Lock()
	stored := w.Stored
	w.Mu.Unlock()
	if stored != 2 {
		t.Errorf("Run returned with %d of 2 records stored", stored)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Error("Run returned before the receipts resolved")
	}
}

func TestCancel(t *testing.T) {
	d := newDummy(t, "rate", "10")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, &plugintest.Writer{}) }()
	time.Sleep(250 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestSpecKeys(t *testing.T) {
	s := Spec()
	want := map[string]string{
		"dummy": `{"message":"dummy"}`, "metadata": "{}", "rate": "1", "interval_sec": "0",
		"interval_nsec": "0", "samples": "0", "copies": "1", "start_time_sec": "-1",
		"start_time_nsec": "-1", "fixed_timestamp": "off", "flush_on_startup": "false",
	}
	for k, def := range want {
		key, ok := s.Key(k)
		if !ok || key.Default != def {
			t.Errorf("key %s: %+v %v", k, key, ok)
		}
	}
}

func TestManyCopiesAreSplit(t *testing.T) {
	w := &plugintest.Writer{}
	evs := runAll(t, newDummy(t, "samples", "1", "copies", "30000", "rate", "100"), w)
	if len(evs) != 30000 {
		t.Fatalf("%d events", len(evs))
	}
	if len(w.Writes) < 2 {
		t.Errorf("%d writes: a large generation is not split", len(w.Writes))
	}
	for _, wr := range w.Writes {
		if len(wr.Data) > maxWrite+1024 {
			t.Errorf("write of %d bytes", len(wr.Data))
		}
	}
}
