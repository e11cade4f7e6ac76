package goplugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/pkg/pluginsdk"
	"github.com/floe-io/floe/proto/pluginv1"
)

// sdkClient is Floe's side of the go-plugin gRPC plugin.
type sdkClient struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (sdkClient) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("floe is the client")
}

func (sdkClient) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginv1.NewOutputPluginClient(c), nil
}

// keyTypes maps the plugin protocol's key types to Floe's checks.
var keyTypes = map[string]plugin.KeyType{
	"": plugin.String, "string": plugin.String, "int": plugin.Int, "bool": plugin.Bool,
	"float": plugin.Float, "size": plugin.Size, "duration": plugin.Seconds,
}

// sdkProc is one running SDK plugin process.
type sdkProc struct {
	client *goplugin.Client
	rpc    pluginv1.OutputPluginClient
}

// exitedWithin reports whether the process has exited or does so within d:
// a gRPC call fails as soon as the connection drops, a little before
// go-plugin has reaped the process.
func (p *sdkProc) exitedWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !p.client.Exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func startSDK(path string) (*sdkProc, error) {
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  pluginsdk.Handshake,
		Plugins:          goplugin.PluginSet{pluginsdk.PluginKey: sdkClient{}},
		Cmd:              pluginCommand(path),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     startTimeout,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: os.Stderr, Level: hclog.Warn}),
		Stderr:           quietStderr{},
		SyncStdout:       os.Stdout,
		SyncStderr:       os.Stderr,
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("start plugin %s: %w", path, err)
	}
	raw, err := rpc.Dispense(pluginsdk.PluginKey)
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	return &sdkProc{client: c, rpc: raw.(pluginv1.OutputPluginClient)}, nil
}

// quietStderr passes a plugin's stderr through, less the go-plugin
// library's own debug lines (it writes one line per Write).
type quietStderr struct{}

func (quietStderr) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte(`{"@level":"debug"`)) || bytes.HasPrefix(p, []byte(`{"@level":"trace"`)) {
		return len(p), nil
	}
	return os.Stderr.Write(p)
}

func loadSDK(ctx context.Context, path string) (*plugin.Spec, error) {
	if info, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	} else if info.IsDir() || info.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("plugin %s is neither a fluent-bit-go .so nor an executable SDK plugin", path)
	}
	p, err := startSDK(path)
	if err != nil {
		return nil, err
	}
	defer p.client.Kill()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	d, err := p.rpc.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return nil, fmt.Errorf("plugin %s: describe: %w", path, err)
	}
	if d.Name == "" {
		return nil, fmt.Errorf("plugin %s registered no name", path)
	}
	spec := &plugin.Spec{
		Kind: plugin.KindOutput,
		Name: strings.ToLower(d.Name),
		Desc: d.Description + " (SDK plugin " + filepath.Base(path) + ")",
	}
	events := map[string]bool{}
	for _, t := range d.EventTypes {
		events[t] = true
	}
	for _, k := range d.ConfigKeys {
		typ, ok := keyTypes[strings.ToLower(k.Type)]
		if !ok {
			return nil, fmt.Errorf("plugin %s (%s): key %q has type %q; the types are string, int, bool, float, size and duration", path, d.Name, k.Name, k.Type)
		}
		key := plugin.Key{Name: strings.ToLower(k.Name), Type: typ, Default: k.DefaultValue, Desc: k.Description}
		for _, v := range k.Allowed {
			key.Enum = append(key.Enum, strings.ToLower(v))
		}
		if key.Default != "" {
			if err := plugin.CheckValue(key, key.Default); err != nil {
				return nil, fmt.Errorf("plugin %s (%s): default of key %q: %w", path, d.Name, k.Name, err)
			}
		}
		spec.Keys = append(spec.Keys, key)
	}
	name := d.Name
	spec.NewOutput = func(ctx context.Context, set plugin.Settings, props *plugin.Props) (plugin.Output, error) {
		return newSDKOutput(ctx, path, name, spec, events, set, props)
	}
	return spec, nil
}

// sdkHost runs one SDK plugin process for every instance of it, restarting
// it when it dies and initialising every instance again.
type sdkHost struct {
	path, name string
	log        *slog.Logger
	onRestart  func()

	mu    sync.Mutex
	p     *sdkProc
	insts map[string][]*pluginv1.Property
}

var sdkHosts = struct {
	sync.Mutex
	m map[string]*sdkHost
}{m: map[string]*sdkHost{}}

func (h *sdkHost) ensureLocked(ctx context.Context) (*sdkProc, error) {
	if h.p != nil && !h.p.client.Exited() {
		return h.p, nil
	}
	if h.p != nil {
		h.log.Warn("go SDK plugin process died; restarting it", "plugin", h.path)
		h.p.client.Kill()
		if h.onRestart != nil {
			h.onRestart()
		}
	}
	h.p = nil
	p, err := startSDK(h.path)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(h.insts))
	for n := range h.insts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := sdkInit(ctx, p, n, h.insts[n]); err != nil {
			p.client.Kill()
			return nil, err
		}
	}
	h.p = p
	return p, nil
}

func sdkInit(ctx context.Context, p *sdkProc, inst string, props []*pluginv1.Property) error {
	r, err := p.rpc.Init(ctx, &pluginv1.InitRequest{Instance: inst, Properties: props})
	if err != nil {
		return fmt.Errorf("init %s: %w", inst, err)
	}
	if r.Error != nil {
		return fmt.Errorf("init %s: %s", inst, r.Error.Message)
	}
	return nil
}

type sdkOutput struct {
	h      *sdkHost
	inst   string
	events map[string]bool
	log    *slog.Logger
	panics func()
	once   sync.Once
}

func newSDKOutput(ctx context.Context, path, name string, spec *plugin.Spec, events map[string]bool, set plugin.Settings, props *plugin.Props) (plugin.Output, error) {
	log := set.Logger
	if log == nil {
		log = slog.Default()
	}
	sdkHosts.Lock()
	h := sdkHosts.m[path]
	if h == nil {
		h = &sdkHost{path: path, name: name, log: log, insts: map[string][]*pluginv1.Property{}}
		sdkHosts.m[path] = h
	}
	sdkHosts.Unlock()
	o := &sdkOutput{h: h, inst: set.DisplayName(), events: events, log: log}
	if set.Telemetry != nil {
		m := set.Telemetry.GoPlugin(name)
		h.mu.Lock()
		h.onRestart = func() { m.Restarts.Add(1) }
		h.mu.Unlock()
		o.panics = func() { m.Panics.Add(1) }
	}
	// Declared keys with their defaults; core keys never reach the plugin.
	var list []*pluginv1.Property
	for _, k := range spec.Keys {
		if v := props.String(k.Name); v != "" {
			list = append(list, &pluginv1.Property{Key: k.Name, Value: v})
		}
	}
	ictx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.insts[o.inst]; dup {
		return nil, fmt.Errorf("plugin %s: two instances named %q", name, o.inst)
	}
	p, err := h.ensureLocked(ictx)
	if err != nil {
		return nil, err
	}
	if err := sdkInit(ictx, p, o.inst, list); err != nil {
		return nil, err
	}
	h.insts[o.inst] = list
	return o, nil
}

func (o *sdkOutput) Flush(ctx context.Context, c *chunk.Chunk) error {
	if !o.events[c.Signal()] {
		return nil // not a signal the plugin registered for (Fluent Bit does not route it)
	}
	req := &pluginv1.FlushRequest{Instance: o.inst, Tag: c.Tag, EventType: c.Signal(), Data: c.Data, Records: int64(c.Records)}
	var resp *pluginv1.FlushResponse
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		o.h.mu.Lock()
		p, perr := o.h.ensureLocked(ctx)
		o.h.mu.Unlock()
		if perr != nil {
			return fmt.Errorf("go plugin %s: %w", o.inst, perr)
		}
		resp, err = p.rpc.Flush(ctx, req)
		// A dead process shows as Unavailable (the connection dropped).
		if err == nil || ctx.Err() != nil || !(p.client.Exited() || status.Code(err) == codes.Unavailable && p.exitedWithin(2*time.Second)) {
			break
		}
		// The process died with the chunk in flight: restart it and give the chunk again.
		o.log.Warn("go SDK plugin process died during a flush; restarting it and flushing the chunk again",
			"plugin", o.h.name, "tag", c.Tag, "err", err)
	}
	if err != nil {
		return fmt.Errorf("go plugin %s: %w", o.inst, err)
	}
	msg := ""
	if resp.Error != nil {
		msg = resp.Error.Message
		if resp.Error.Panic {
			o.log.Error("go plugin panicked; the chunk will be retried", "plugin", o.h.name, "tag", c.Tag, "panic", msg)
			if o.panics != nil {
				o.panics()
			}
		}
	}
	switch resp.Status {
	case pluginv1.Status_STATUS_OK:
		return nil
	case pluginv1.Status_STATUS_ERROR:
		return plugin.Permanent(fmt.Errorf("go plugin %s answered ERROR: %s", o.inst, msg))
	}
	err = fmt.Errorf("go plugin %s answered RETRY: %s", o.inst, firstLine(msg))
	if resp.Error != nil && resp.Error.RetryAfterMs > 0 {
		return plugin.Throttle(err, time.Duration(resp.Error.RetryAfterMs)*time.Millisecond)
	}
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Close ends the instance once, after its in-flight flushes (the plugin
// waits for them too), and stops the process after the last instance.
func (o *sdkOutput) Close(ctx context.Context) error {
	var err error
	o.once.Do(func() {
		h := o.h
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.insts, o.inst)
		if h.p != nil && !h.p.client.Exited() {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var r *pluginv1.ExitResponse
			if r, err = h.p.rpc.Exit(cctx, &pluginv1.ExitRequest{Instance: o.inst}); err == nil && r.Error != nil {
				err = fmt.Errorf("go plugin %s exit: %s", o.inst, r.Error.Message)
			}
		}
		if len(h.insts) == 0 && h.p != nil {
			h.p.client.Kill() // go-plugin asks the process to exit gracefully first
			h.p = nil
			sdkHosts.Lock()
			if sdkHosts.m[h.path] == h {
				delete(sdkHosts.m, h.path)
			}
			sdkHosts.Unlock()
		}
	})
	return err
}
