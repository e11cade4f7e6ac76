package goplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"
)

// errCrashed means the helper process died while a request was in flight.
var errCrashed = errors.New("plugin host process died")

// hello is what the helper reports after loading and registering a plugin.
type hello struct {
	Type, Proxy, EventType int32
	Symbols                uint32
	Name, Desc             string
}

// proc is one running floe-plugin-host.
type proc struct {
	cmd   *exec.Cmd
	req   *os.File
	hello hello

	wmu     sync.Mutex // one frame at a time on the request pipe
	mu      sync.Mutex
	pending map[uint32]chan frame
	next    uint32
	dead    chan struct{}
	err     error // why it ended; valid once dead is closed
}

// startTimeout bounds loading a plugin: dlopen, the Go runtime's start and
// FLBPluginRegister.
const startTimeout = 60 * time.Second

// startProc starts the helper on the plugin at path and waits for its hello.
func startProc(ctx context.Context, path string) (*proc, error) {
	helper, err := HelperPath()
	if err != nil {
		return nil, err
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	cmd := exec.Command(helper, path)
	// The plugin's own output goes where Fluent Bit's would: the process's
	// stdout and stderr. Files, not writers, so Wait has no copiers to await.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{reqR, respW} // fds 3 and 4
	err = cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		return nil, fmt.Errorf("start %s: %w", helper, err)
	}
	p := &proc{cmd: cmd, req: reqW, pending: map[uint32]chan frame{}, dead: make(chan struct{})}

	first := make(chan error, 1)
	go func() {
		f, err := readFrame(respR)
		if err == nil {
			p.hello, err = decodeHello(f)
		}
		first <- err
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case err = <-first:
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("no answer within %s", startTimeout)
	}
	if err != nil {
		reqW.Close()
		respR.Close()
		_ = cmd.Process.Kill()
		werr := cmd.Wait()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the plugin host exited while loading (%v)", werr)
		}
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	go p.readLoop(respR)
	return p, nil
}

func (p *proc) readLoop(r *os.File) {
	var rerr error
	for {
		f, err := readFrame(r)
		if err != nil {
			rerr = err
			break
		}
		if f.typ == frameFatal {
			if _, rerr = decodeHello(f); rerr == nil {
				rerr = frameError(f, errors.New("fatal frame without a message"))
			}
			break
		}
		p.mu.Lock()
		ch, ok := p.pending[f.id]
		delete(p.pending, f.id)
		p.mu.Unlock()
		if ok {
			ch <- f
		}
	}
	r.Close()
	p.req.Close()
	_ = p.cmd.Process.Kill()
	werr := p.cmd.Wait()
	p.mu.Lock()
	switch {
	case errors.Is(rerr, io.EOF) && werr != nil:
		p.err = fmt.Errorf("%w: %v", errCrashed, werr)
	default:
		p.err = fmt.Errorf("%w: %v", errCrashed, rerr)
	}
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
	p.mu.Unlock()
	close(p.dead)
}

func (p *proc) alive() bool {
	select {
	case <-p.dead:
		return false
	default:
		return true
	}
}

// call sends one request and waits for its reply.
func (p *proc) call(ctx context.Context, e *encoder) (frame, error) {
	ch := make(chan frame, 1)
	p.mu.Lock()
	if !p.alive() {
		p.mu.Unlock()
		return frame{}, p.err
	}
	p.next++
	id := p.next
	p.pending[id] = ch
	p.mu.Unlock()
	b := e.bytes()
	putID(b, id)
	p.wmu.Lock()
	_, err := p.req.Write(b)
	p.wmu.Unlock()
	if err != nil {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		<-p.dead
		return frame{}, p.err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return frame{}, p.err
		}
		return f, nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return frame{}, ctx.Err()
	}
}

func putID(b []byte, id uint32) {
	b[5], b[6], b[7], b[8] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
}

// stop closes the request pipe, so the helper unregisters the plugin and
// exits, and kills it if it has not within the timeout.
func (p *proc) stop(timeout time.Duration) {
	p.wmu.Lock()
	p.req.Close()
	p.wmu.Unlock()
	select {
	case <-p.dead:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.dead
	}
}

// instance is one [OUTPUT] section served by a host.
type instance struct {
	id    uint32
	name  string
	props [][2]string
}

// host runs one plugin file for every instance of it in this process,
// restarting the helper when it dies and initialising every instance again.
type host struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	p        *proc
	insts    map[uint32]*instance
	next     uint32
	restarts func() // counts a restart (metrics); nil-safe via onRestart
}

var hosts = struct {
	sync.Mutex
	m map[string]*host
}{m: map[string]*host{}}

func hostFor(path string, log *slog.Logger) *host {
	hosts.Lock()
	defer hosts.Unlock()
	h := hosts.m[path]
	if h == nil {
		h = &host{path: path, log: log, insts: map[uint32]*instance{}}
		hosts.m[path] = h
	}
	return h
}

// ensureLocked returns a live helper, starting one (and initialising every
// instance on it) when there is none or the last one died.
func (h *host) ensureLocked(ctx context.Context) (*proc, bool, error) {
	if h.p != nil && h.p.alive() {
		return h.p, false, nil
	}
	restarted := h.p != nil
	if restarted {
		h.log.Warn("go plugin host died; restarting it", "plugin", h.path, "err", h.p.err)
		if h.restarts != nil {
			h.restarts()
		}
	}
	h.p = nil
	p, err := startProc(ctx, h.path)
	if err != nil {
		return nil, false, err
	}
	ids := make([]uint32, 0, len(h.insts))
	for id := range h.insts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if err := initInstance(ctx, p, h.insts[id]); err != nil {
			p.stop(5 * time.Second)
			return nil, false, err
		}
	}
	h.p = p
	return p, true, nil
}

func initInstance(ctx context.Context, p *proc, in *instance) error {
	e := newFrame(frameInit, 0)
	e.u32(in.id)
	e.u32(uint32(len(in.props)))
	for _, kv := range in.props {
		e.str(kv[0])
		e.str(kv[1])
	}
	e.u32(uint32(len(reservedKeys())))
	for _, k := range reservedKeys() {
		e.str(k)
	}
	f, err := p.call(ctx, e)
	if err != nil {
		return fmt.Errorf("init %s: %w", in.name, err)
	}
	rc, hits, err := decodeInitReply(f)
	if err != nil {
		return fmt.Errorf("init %s: %w", in.name, err)
	}
	if len(hits) > 0 {
		return fmt.Errorf("plugin %s reads the reserved key %q in FLBPluginInit; reserved keys belong to Floe and are never given to plugins", p.hello.Name, hits[0])
	}
	if rc <= 0 {
		return fmt.Errorf("plugin %s failed to initialize (FLBPluginInit returned %d)", p.hello.Name, rc)
	}
	return nil
}

// add initialises a new instance.
func (h *host) add(ctx context.Context, name string, props [][2]string) (*instance, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in := &instance{id: h.next, name: name, props: props}
	h.next++
	p, _, err := h.ensureLocked(ctx)
	if err != nil {
		return nil, err
	}
	if err := initInstance(ctx, p, in); err != nil {
		return nil, err
	}
	h.insts[in.id] = in
	return in, nil
}

// flush hands one chunk to an instance and returns the plugin's answer. A
// helper that dies meanwhile is restarted and the chunk given again once.
func (h *host) flush(ctx context.Context, in *instance, tag string, data []byte) (int32, error) {
	var last error
	for attempt := 0; attempt < 2; attempt++ {
		h.mu.Lock()
		p, _, err := h.ensureLocked(ctx)
		h.mu.Unlock()
		if err != nil {
			return 0, err
		}
		e := newFrame(frameFlush, 0)
		e.u32(in.id)
		e.str(tag)
		e.blob(data)
		f, err := p.call(ctx, e)
		if errors.Is(err, errCrashed) {
			last = err
			continue
		}
		if err != nil {
			return 0, err
		}
		return decodeRC(f, frameFlushDone)
	}
	return 0, last
}

// exit calls the instance's exit callback and stops the helper after the
// last instance.
func (h *host) exit(ctx context.Context, in *instance) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.insts, in.id)
	var err error
	if h.p != nil && h.p.alive() {
		e := newFrame(frameExit, 0)
		e.u32(in.id)
		var f frame
		if f, err = h.p.call(ctx, e); err == nil {
			_, err = decodeRC(f, frameExitDone)
		}
	}
	if len(h.insts) == 0 && h.p != nil {
		h.p.stop(10 * time.Second)
		h.p = nil
		hosts.Lock()
		if hosts.m[h.path] == h {
			delete(hosts.m, h.path)
		}
		hosts.Unlock()
	}
	return err
}

// probe loads a plugin in a short-lived helper and returns its registration.
func probe(ctx context.Context, path string) (hello, error) {
	p, err := startProc(ctx, path)
	if err != nil {
		return hello{}, err
	}
	defer p.stop(10 * time.Second)
	return p.hello, nil
}
