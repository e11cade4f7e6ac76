// Package goplugin runs Go output plugins: fluent-bit-go shared objects,
// unchanged, in a small C helper process (floe-plugin-host) that gives them
// Fluent Bit's proxy C API, and SDK plugins (pkg/pluginsdk) as their own
// processes over gRPC. Both become ordinary output specs under the name the
// plugin registers, so `[OUTPUT] Name <name>` works for any number of
// instances. Core packages reach it only through plugin.ExternalLoader,
// set in internal/plugins/all.
package goplugin

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
)

// Load is the plugin.ExternalLoader: a `.so` file is a fluent-bit-go plugin,
// anything else an SDK plugin executable.
func Load(ctx context.Context, path string) (*plugin.Spec, error) {
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "flb-") && strings.HasSuffix(base, ".so"):
		return nil, fmt.Errorf("plugin %s: native C plugins (flb-*.so) are not supported; Floe runs Go plugins", path)
	case strings.HasSuffix(base, ".so"):
		return loadShared(ctx, path)
	default:
		return loadSDK(ctx, path)
	}
}

func reservedKeys() []string { return plugin.ReservedKeys }

// loadShared probes a fluent-bit-go shared object: dlopen, the symbols and
// FLBPluginRegister, in a short-lived helper.
func loadShared(ctx context.Context, path string) (*plugin.Spec, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	h, err := probe(ctx, path)
	if err != nil {
		return nil, err
	}
	switch {
	case h.Proxy != 11:
		return nil, fmt.Errorf("plugin %s: registered proxy type %d, not 11 (Go)", path, h.Proxy)
	case h.Type == 1:
		return nil, fmt.Errorf("plugin %s (%s) is an input plugin; Floe runs Go output plugins only", path, h.Name)
	case h.Type != 2:
		return nil, fmt.Errorf("plugin %s (%s): registered plugin type %d, not 2 (output)", path, h.Name, h.Type)
	}
	events := h.EventType
	if events == 0 {
		events = 1
	}
	return &plugin.Spec{
		Kind:   plugin.KindOutput,
		Name:   strings.ToLower(h.Name),
		Desc:   h.Desc + " (fluent-bit-go plugin " + filepath.Base(path) + ")",
		AnyKey: true,
		NewOutput: func(ctx context.Context, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
			return newSharedOutput(ctx, path, h.Name, events, set, p)
		},
	}, nil
}

// sharedOutput is one [OUTPUT] instance of a fluent-bit-go plugin.
type sharedOutput struct {
	h      *host
	in     *instance
	name   string
	events int32
	log    *slog.Logger
	once   sync.Once
	warned sync.Once
}

func newSharedOutput(ctx context.Context, path, plugName string, events int32, set plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	log := set.Logger
	if log == nil {
		log = slog.Default()
	}
	h := hostFor(path, log)
	if set.Telemetry != nil {
		m := set.Telemetry.GoPlugin(plugName)
		h.mu.Lock()
		h.restarts = func() { m.Restarts.Add(1) }
		h.mu.Unlock()
	}
	ictx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	in, err := h.add(ictx, set.DisplayName(), plugin.PluginProps(p))
	if err != nil {
		return nil, err
	}
	return &sharedOutput{h: h, in: in, name: set.DisplayName(), events: events, log: log}, nil
}

func signalBit(c *chunk.Chunk) int32 {
	switch c.Signal() {
	case chunk.Metrics:
		return 2
	case chunk.Traces:
		return 4
	}
	return 1
}

func (o *sharedOutput) Flush(ctx context.Context, c *chunk.Chunk) error {
	if o.events&signalBit(c) == 0 {
		// Fluent Bit routes only the event types a plugin registered for.
		o.warned.Do(func() {
			o.log.Info("go plugin does not take this signal; chunks skipped", "signal", c.Signal())
		})
		return nil
	}
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("go plugin %s: %s chunks carry OTLP, not the cmetrics/ctraces msgpack fluent-bit-go plugins decode", o.name, c.Signal()))
	}
	rc, err := o.h.flush(ctx, o.in, c.Tag, c.Data)
	if err != nil {
		return fmt.Errorf("go plugin %s: %w", o.name, err)
	}
	switch rc {
	case flbOK:
		return nil
	case flbRetry:
		return fmt.Errorf("go plugin %s answered FLB_RETRY", o.name)
	default:
		return plugin.Permanent(fmt.Errorf("go plugin %s answered FLB_ERROR (%d)", o.name, rc))
	}
}

// Close calls the instance's exit callback once; the output stage closes
// outputs after their in-flight flushes have finished.
func (o *sharedOutput) Close(ctx context.Context) error {
	var err error
	o.once.Do(func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err = o.h.exit(cctx, o.in)
	})
	return err
}
