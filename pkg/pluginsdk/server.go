package pluginsdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/floe-io/floe/proto/pluginv1"
)

type server struct {
	pluginv1.UnimplementedOutputPluginServer
	def Definition

	mu        sync.Mutex
	instances map[string]*inst
}

type inst struct {
	out      Output
	inflight sync.WaitGroup
	once     sync.Once
}

func newServer(def Definition) *server {
	if len(def.EventTypes) == 0 {
		def.EventTypes = []EventType{Logs}
	}
	return &server{def: def, instances: map[string]*inst{}}
}

func (s *server) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	r := &pluginv1.DescribeResponse{Name: s.def.Name, Description: s.def.Description}
	for _, t := range s.def.EventTypes {
		r.EventTypes = append(r.EventTypes, string(t))
	}
	for _, k := range s.def.ConfigKeys {
		r.ConfigKeys = append(r.ConfigKeys, &pluginv1.ConfigKey{Name: strings.ToLower(k.Name), DefaultValue: k.Default,
			Description: k.Description, Type: string(k.Type), Allowed: k.Allowed})
	}
	return r, nil
}

// recovered turns a panic in plugin code into an error that says so.
func recovered(v any) *pluginv1.Error {
	return &pluginv1.Error{Message: fmt.Sprintf("panic: %v\n%s", v, debug.Stack()), Panic: true}
}

func (s *server) Init(ctx context.Context, req *pluginv1.InitRequest) (resp *pluginv1.InitResponse, err error) {
	cfg := Config{Instance: req.Instance, props: map[string]string{}}
	for _, k := range s.def.ConfigKeys {
		if k.Default != "" {
			cfg.props[strings.ToLower(k.Name)] = k.Default
		}
	}
	for _, p := range req.Properties {
		cfg.props[strings.ToLower(p.Key)] = p.Value
	}
	defer func() {
		if v := recover(); v != nil {
			resp, err = &pluginv1.InitResponse{Error: recovered(v)}, nil
		}
	}()
	out, nerr := s.def.New(ctx, cfg)
	if nerr != nil {
		return &pluginv1.InitResponse{Error: &pluginv1.Error{Message: nerr.Error()}}, nil
	}
	s.mu.Lock()
	s.instances[req.Instance] = &inst{out: out}
	s.mu.Unlock()
	return &pluginv1.InitResponse{}, nil
}

func (s *server) Flush(ctx context.Context, req *pluginv1.FlushRequest) (resp *pluginv1.FlushResponse, err error) {
	s.mu.Lock()
	in := s.instances[req.Instance]
	if in != nil {
		in.inflight.Add(1)
	}
	s.mu.Unlock()
	if in == nil {
		return &pluginv1.FlushResponse{Status: pluginv1.Status_STATUS_RETRY,
			Error: &pluginv1.Error{Message: fmt.Sprintf("no instance %q (not initialised)", req.Instance)}}, nil
	}
	defer in.inflight.Done()
	defer func() {
		if v := recover(); v != nil {
			resp, err = &pluginv1.FlushResponse{Status: pluginv1.Status_STATUS_RETRY, Error: recovered(v)}, nil
		}
	}()
	c := Chunk{Tag: req.Tag, EventType: EventType(req.EventType), Data: req.Data, Records: int(req.Records)}
	ferr := in.out.Flush(ctx, c)
	if ferr == nil {
		return &pluginv1.FlushResponse{Status: pluginv1.Status_STATUS_OK}, nil
	}
	e := &pluginv1.Error{Message: ferr.Error()}
	var ce *classError
	if errors.As(ferr, &ce) {
		if ce.permanent {
			return &pluginv1.FlushResponse{Status: pluginv1.Status_STATUS_ERROR, Error: e}, nil
		}
		e.RetryAfterMs = ce.after.Milliseconds()
	}
	return &pluginv1.FlushResponse{Status: pluginv1.Status_STATUS_RETRY, Error: e}, nil
}

func (s *server) Exit(ctx context.Context, req *pluginv1.ExitRequest) (resp *pluginv1.ExitResponse, err error) {
	s.mu.Lock()
	in := s.instances[req.Instance]
	delete(s.instances, req.Instance)
	s.mu.Unlock()
	resp = &pluginv1.ExitResponse{}
	if in == nil {
		return resp, nil
	}
	in.inflight.Wait()
	defer func() {
		if v := recover(); v != nil {
			resp = &pluginv1.ExitResponse{Error: recovered(v)}
		}
	}()
	in.once.Do(func() {
		if x, ok := in.out.(Exiter); ok {
			if xerr := x.Exit(ctx); xerr != nil {
				resp.Error = &pluginv1.Error{Message: xerr.Error()}
			}
		}
	})
	return resp, nil
}
