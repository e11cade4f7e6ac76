// Command sdkplugin is a pluginsdk output plugin for Floe's tests
// (go build ./pkg/pluginsdk/testdata/sdkplugin). Each instance appends JSON
// lines to the file named by `out`: one per log record and one per metrics
// chunk. With `panic_first on` the first attempt of every chunk panics.
// With `crash_once MARKER` the process dies (crash_how exit: os.Exit; kill:
// SIGKILL of itself) in its third logs flush, before writing, unless MARKER
// exists (it creates it first), so a restarted process does not crash again.
// With `rendezvous on` a flush waits up to rendezvous_wait for a second flush
// of its instance to be in flight; each flush line carries the most flushes
// seen in flight at once, and the exit line how many were in flight then.
// FLOE_TEST_DECLARE_RESERVED=1 makes it declare the reserved key "workers",
// FLOE_TEST_BAD_KEY_TYPE=1 a key of an unknown type, FLOE_TEST_BAD_DEFAULT=1
// an int key whose default is not an integer.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/floe-io/floe/pkg/pluginsdk"
)

type out struct {
	id, path   string
	panicFirst bool
	mu         sync.Mutex
	seen       map[[32]byte]bool

	crashMarker, crashHow string
	logFlushes            int

	rendezvous     bool
	wait           time.Duration
	inflight, most int
	cond           *sync.Cond // on mu: inflight changed
}

// enter counts a flush in flight and, with rendezvous, waits (bounded) for
// another one.
func (o *out) enter() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inflight++
	o.most = max(o.most, o.inflight)
	o.cond.Broadcast()
	if !o.rendezvous {
		return
	}
	deadline := time.Now().Add(o.wait)
	t := time.AfterFunc(o.wait, func() { o.mu.Lock(); o.cond.Broadcast(); o.mu.Unlock() })
	defer t.Stop()
	for o.inflight < 2 && time.Now().Before(deadline) {
		o.cond.Wait()
	}
}

func (o *out) leave() {
	o.mu.Lock()
	o.inflight--
	o.mu.Unlock()
}

// crash ends the process in its third logs flush, once per marker.
func (o *out) crash() {
	o.mu.Lock()
	o.logFlushes++
	n := o.logFlushes
	o.mu.Unlock()
	if o.crashMarker == "" || n != 3 {
		return
	}
	f, err := os.OpenFile(o.crashMarker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return // crashed before
	}
	f.Close()
	if o.crashHow == "kill" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	os.Exit(3)
}

func (o *out) Flush(_ context.Context, c pluginsdk.Chunk) error {
	o.enter()
	defer o.leave()
	if c.EventType == pluginsdk.Logs {
		o.crash()
	}
	if o.panicFirst {
		key := sha256.Sum256(append([]byte(c.Tag+"\x00"), c.Data...))
		o.mu.Lock()
		first := !o.seen[key]
		o.seen[key] = true
		o.mu.Unlock()
		if first {
			panic("sdkplugin: first attempt of chunk " + c.Tag)
		}
	}
	var lines []byte
	switch c.EventType {
	case pluginsdk.Logs:
		evs, err := c.Events()
		if err != nil {
			return pluginsdk.Permanent(err)
		}
		o.mu.Lock()
		most := o.most
		o.mu.Unlock()
		for _, e := range evs {
			l, _ := json.Marshal(map[string]any{"id": o.id, "type": "logs", "tag": c.Tag,
				"sec": e.Time.Unix(), "nsec": e.Time.Nanosecond(), "record": e.Record, "meta": e.Metadata, "most_inflight": most})
			lines = append(append(lines, l...), '\n')
		}
	case pluginsdk.Metrics:
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(c.Data)
		if err != nil {
			return pluginsdk.Permanent(fmt.Errorf("metrics chunk: %w", err))
		}
		l, _ := json.Marshal(map[string]any{"id": o.id, "type": "metrics", "tag": c.Tag, "datapoints": md.DataPointCount()})
		lines = append(append(lines, l...), '\n')
	}
	f, err := os.OpenFile(o.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(lines)
	return err
}

func (o *out) Exit(context.Context) error {
	o.mu.Lock()
	inflight := o.inflight
	o.mu.Unlock()
	l, _ := json.Marshal(map[string]any{"exit": o.id, "inflight": inflight})
	f, err := os.OpenFile(o.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(l, '\n'))
	return err
}

func isOn(v string) bool {
	switch strings.ToLower(v) {
	case "on", "true", "yes":
		return true
	}
	return false
}

func main() {
	keys := []pluginsdk.ConfigKey{
		{Name: "out", Description: "file to append JSON lines to"},
		{Name: "id", Default: "sdk", Description: "instance label"},
		{Name: "panic_first", Type: pluginsdk.Bool, Default: "off", Description: "panic on the first attempt of each chunk"},
		{Name: "crash_once", Description: "marker file: die in the third logs flush unless it exists"},
		{Name: "crash_how", Default: "exit", Allowed: []string{"exit", "kill"}, Description: "exit (os.Exit) or kill (SIGKILL)"},
		{Name: "rendezvous", Type: pluginsdk.Bool, Default: "off", Description: "wait for a second flush in flight"},
		{Name: "rendezvous_wait", Type: pluginsdk.Duration, Default: "2", Description: "seconds a flush waits for a second one"},
	}
	if os.Getenv("FLOE_TEST_BAD_KEY_TYPE") == "1" {
		keys = append(keys, pluginsdk.ConfigKey{Name: "colour", Type: "colour"})
	}
	if os.Getenv("FLOE_TEST_BAD_DEFAULT") == "1" {
		keys = append(keys, pluginsdk.ConfigKey{Name: "batch", Type: pluginsdk.Int, Default: "lots"})
	}
	if os.Getenv("FLOE_TEST_DECLARE_RESERVED") == "1" {
		keys = append(keys, pluginsdk.ConfigKey{Name: "workers"})
	}
	pluginsdk.Serve(pluginsdk.Definition{
		Name:        "sdktest",
		Description: "Floe SDK test output",
		EventTypes:  []pluginsdk.EventType{pluginsdk.Logs, pluginsdk.Metrics},
		ConfigKeys:  keys,
		New: func(_ context.Context, cfg pluginsdk.Config) (pluginsdk.Output, error) {
			if cfg.Get("out") == "" {
				return nil, fmt.Errorf("out is required")
			}
			// Floe checked the values against the declared types already.
			secs, err := strconv.ParseFloat(strings.TrimSuffix(cfg.Get("rendezvous_wait"), "s"), 64)
			if err != nil {
				return nil, fmt.Errorf("rendezvous_wait: give seconds: %w", err)
			}
			wait := time.Duration(secs * float64(time.Second))
			o := &out{id: cfg.Get("id"), path: cfg.Get("out"), panicFirst: isOn(cfg.Get("panic_first")), seen: map[[32]byte]bool{},
				crashMarker: cfg.Get("crash_once"), crashHow: strings.ToLower(cfg.Get("crash_how")), rendezvous: isOn(cfg.Get("rendezvous")), wait: wait}
			o.cond = sync.NewCond(&o.mu)
			return o, nil
		},
	})
}
