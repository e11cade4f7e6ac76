// Command sdkplugin is a pluginsdk output plugin for Floe's tests
// (go build ./pkg/pluginsdk/testdata/sdkplugin). Each instance appends JSON
// lines to the file named by `out`: one per log record and one per metrics
// chunk. With `panic_first on` the first attempt of every chunk panics.
// FLOE_TEST_DECLARE_RESERVED=1 makes it declare the reserved key "workers".
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/floe-io/floe/pkg/pluginsdk"
)

type out struct {
	id, path   string
	panicFirst bool
	mu         sync.Mutex
	seen       map[[32]byte]bool
}

func (o *out) Flush(_ context.Context, c pluginsdk.Chunk) error {
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
		for _, e := range evs {
			l, _ := json.Marshal(map[string]any{"id": o.id, "type": "logs", "tag": c.Tag,
				"sec": e.Time.Unix(), "nsec": e.Time.Nanosecond(), "record": e.Record, "meta": e.Metadata})
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
	l, _ := json.Marshal(map[string]any{"exit": o.id})
	f, err := os.OpenFile(o.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(l, '\n'))
	return err
}

func main() {
	keys := []pluginsdk.ConfigKey{
		{Name: "out", Description: "file to append JSON lines to"},
		{Name: "id", Default: "sdk", Description: "instance label"},
		{Name: "panic_first", Default: "off", Description: "panic on the first attempt of each chunk"},
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
			return &out{id: cfg.Get("id"), path: cfg.Get("out"), panicFirst: cfg.Get("panic_first") == "on", seen: map[[32]byte]bool{}}, nil
		},
	})
}
