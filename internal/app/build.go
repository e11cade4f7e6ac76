package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/multiline"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/tag"
	"github.com/floe-io/floe/internal/telemetry"
)

// Instance is one configured plugin section resolved against its spec.
type Instance struct {
	Kind    plugin.Kind
	Spec    *plugin.Spec
	Section *config.Section
	Props   *plugin.Props
	Name    string // "<plugin>.<N>"
	Alias   string
	Matcher *tag.Matcher // filters and outputs
	Tag     string       // inputs
	ID      string       // outputs: stream id
}

// Display is the alias when set, else the instance name.
func (i *Instance) Display() string {
	if i.Alias != "" {
		return i.Alias
	}
	return i.Name
}

// Plan is a validated configuration, ready to build stages from.
type Plan struct {
	Config  *config.Config
	Service *Service
	Inputs  []*Instance
	Filters []*Instance
	Outputs []*Instance

	// Set by the process before plugins are built.
	Telemetry *telemetry.Registry
	Parsers   plugin.Parsers
	// Multiline holds the [MULTILINE_PARSER] sections; Positions is set
	// where the ingest stage has JetStream.
	Multiline []*config.Section
	Positions plugin.PositionStore
}

// Validate checks a configuration against the registry and returns every
// problem at once (a config.ErrorList), or the plan.
func Validate(cfg *config.Config, reg *plugin.Registry) (*Plan, error) {
	return Check(cfg, nil, reg)
}

// Check is Validate for a configuration that may have failed to parse in
// part: loadErr is what config.Load (or FromArgs) returned with cfg. The
// problems of both come out together in the order a reader meets them (file
// and line), so `floe validate`, start-up and hot reload all report every
// mistake at once. The deeper checks (a WASM module's exports) wait until
// every key is valid. A nil cfg (the file could not be read) returns loadErr.
func Check(cfg *config.Config, loadErr error, reg *plugin.Registry) (*Plan, error) {
	if cfg == nil {
		if loadErr == nil {
			loadErr = errors.New("no configuration")
		}
		return nil, loadErr
	}
	var errs config.ErrorList
	if loadErr != nil {
		errs = appendConfigErr(errs, loadErr)
	}
	fail := func() (*Plan, error) {
		cfg.SortErrors(errs)
		return nil, errs
	}
	errs = append(errs, validateService(cfg.Service)...)
	plan := &Plan{Config: cfg}
	build := func(kind plugin.Kind, sections []*config.Section) []*Instance {
		var out []*Instance
		for n, s := range sections {
			verrs := reg.ValidateSection(kind, s)
			errs = append(errs, verrs...)
			spec, ok := reg.Lookup(kind, s.Plugin())
			if !ok {
				continue
			}
			inst := &Instance{
				Kind: kind, Spec: spec, Section: s, Props: plugin.NewProps(spec, s),
				Name: tag.InstanceName(spec.Name, n),
			}
			inst.Alias, _ = s.Get("alias")
			switch kind {
			case plugin.KindInput:
				inst.Tag, _ = s.Get("tag")
				if inst.Tag == "" {
					// Fluent Bit: an input without a tag is tagged with its instance name.
					inst.Tag = inst.Name
				}
			default:
				m, _ := s.Get("match")
				re, _ := s.Get("match_regex")
				matcher, err := tag.NewMatcher(m, re)
				if err == nil {
					inst.Matcher = matcher
				}
			}
			if kind == plugin.KindOutput {
				inst.ID = jsx.OutputID(inst.Display())
			}
			out = append(out, inst)
		}
		return out
	}
	plan.Inputs = build(plugin.KindInput, cfg.Inputs)
	plan.Filters = build(plugin.KindFilter, cfg.Filters)
	// Plugin files register output names: load them before outputs are checked.
	errs = append(errs, loadExternalPlugins(cfg, reg)...)
	plan.Outputs = build(plugin.KindOutput, cfg.Outputs)

	// Fluent Bit: with exactly one input and one output, an output without
	// Match gets "Match *".
	if len(cfg.Inputs) == 1 && len(plan.Outputs) == 1 && plan.Outputs[0].Matcher != nil && plan.Outputs[0].Matcher.Empty() {
		plan.Outputs[0].Matcher, _ = tag.NewMatcher("*", "")
	}
	seen := map[string]*Instance{}
	for _, o := range plan.Outputs {
		if prev, dup := seen[o.ID]; dup {
			file, line := o.Section.Pos("alias")
			errs = append(errs, &config.Error{File: file, Line: line, Key: "alias",
				Msg: fmt.Sprintf("output %q has the same name as output at %s:%d; set a distinct alias", o.Display(), prev.Section.File, prev.Section.Line)})
		}
		seen[o.ID] = o
		if v := o.Props.String("retry_limit"); v != "" {
			if _, ok := RetryLimit(v); !ok {
				file, line := o.Section.Pos("retry_limit")
				errs = append(errs, &config.Error{File: file, Line: line, Key: "retry_limit",
					Msg: fmt.Sprintf("%q is not a number, no_limits or no_retries", v)})
			}
		}
	}
	parsers, perr := loadParsers(cfg)
	if perr != nil {
		errs = appendConfigErr(errs, perr)
	}
	plan.Parsers = parsers
	plan.Multiline = multilineSections(cfg)
	if _, err := multiline.Load(plan.Multiline, parsers); err != nil {
		errs = appendConfigErr(errs, err)
	}
	if len(errs) > 0 {
		return fail()
	}
	svc, err := ParseService(cfg.Service)
	if err != nil {
		return nil, err
	}
	plan.Service = svc
	// Deeper checks (a WASM module's exports and imports) once every key is
	// valid, so each problem is reported once.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, group := range [][]*Instance{plan.Inputs, plan.Filters, plan.Outputs} {
		for _, i := range group {
			if i.Spec.Check == nil {
				continue
			}
			if err := i.Spec.Check(context.Background(), plan.settings(i, quiet), i.Props); err != nil {
				errs = appendConfigErr(errs, positioned(i, err))
			}
		}
	}
	if len(errs) > 0 {
		return fail()
	}
	return plan, nil
}

// Warnings lists things Fluent Bit would warn about at start.
func (p *Plan) Warnings() []string {
	var w []string
	for _, o := range p.Outputs {
		if o.Matcher == nil || o.Matcher.Empty() {
			w = append(w, fmt.Sprintf("%s:%d: NO match for %s output instance; it receives nothing", o.Section.File, o.Section.Line, o.Display()))
		}
	}
	for _, f := range p.Filters {
		if f.Matcher == nil || f.Matcher.Empty() {
			w = append(w, fmt.Sprintf("%s:%d: NO match for %s filter instance; it filters nothing", f.Section.File, f.Section.Line, f.Display()))
		}
	}
	return w
}

func (p *Plan) settings(i *Instance, log *slog.Logger) plugin.Settings {
	return plugin.Settings{
		Name:      i.Name,
		Alias:     i.Alias,
		Logger:    log.With(string(i.Kind), i.Display()),
		Telemetry: p.Telemetry,
		Parsers:   p.Parsers,
		Positions: p.Positions,

		MultilineParsers: p.Multiline,
		Service: plugin.Service{
			Flush:       p.Service.Flush,
			JSON:        p.Service.JSON,
			StoragePath: p.Service.StoragePath,
		},
	}
}

// positioned wraps a constructor error with the section's position unless it already has one.
func positioned(i *Instance, err error) error {
	var ce *config.Error
	var cl config.ErrorList
	if errors.As(err, &ce) || errors.As(err, &cl) {
		return err
	}
	return &config.Error{File: i.Section.File, Line: i.Section.Line, Key: "name",
		Msg: fmt.Sprintf("%s %s: %v", i.Kind, i.Display(), err)}
}

// NewInput, NewFilter and NewOutput construct plugin instances.
func (p *Plan) NewInput(ctx context.Context, i *Instance, log *slog.Logger) (plugin.Input, error) {
	in, err := i.Spec.NewInput(ctx, p.settings(i, log), i.Props)
	if err != nil {
		return nil, positioned(i, err)
	}
	return in, nil
}

func (p *Plan) NewFilter(ctx context.Context, i *Instance, log *slog.Logger) (plugin.Filter, error) {
	f, err := i.Spec.NewFilter(ctx, p.settings(i, log), i.Props)
	if err != nil {
		return nil, positioned(i, err)
	}
	return f, nil
}

func (p *Plan) NewOutput(ctx context.Context, i *Instance, log *slog.Logger) (plugin.Output, error) {
	o, err := i.Spec.NewOutput(ctx, p.settings(i, log), i.Props)
	if err != nil {
		return nil, positioned(i, err)
	}
	return o, nil
}

// outputByName finds an output by display name, instance name or id.
func (p *Plan) outputByName(name string) *Instance {
	for _, o := range p.Outputs {
		if strings.EqualFold(o.Display(), name) || strings.EqualFold(o.Name, name) || o.ID == name {
			return o
		}
	}
	return nil
}

// loadParsers builds the [PARSER] registry: inline sections, every
// parsers_file (relative paths also tried next to the main file, as Fluent
// Bit does), then Fluent Bit's stock parsers under names still free.
func loadParsers(cfg *config.Config) (*parser.Registry, error) {
	dir := ""
	if len(cfg.Files) > 0 {
		dir = filepath.Dir(cfg.Files[0])
	}
	var paths []string
	for _, f := range cfg.Service.GetAll("parsers_file") {
		paths = append(paths, parser.ResolvePath(f, dir))
	}
	env := func(k string) (string, bool) {
		if v, ok := cfg.Env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	return parser.Load(cfg.Parsers, paths, env)
}

// multilineSections gathers the [MULTILINE_PARSER] sections of the main
// configuration and of every parsers_file (read problems are reported by
// loadParsers, which reads the same files).
func multilineSections(cfg *config.Config) []*config.Section {
	out := append([]*config.Section(nil), cfg.MultilineParsers...)
	dir := ""
	if len(cfg.Files) > 0 {
		dir = filepath.Dir(cfg.Files[0])
	}
	env := func(k string) (string, bool) {
		if v, ok := cfg.Env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	for _, f := range cfg.Service.GetAll("parsers_file") {
		_, ml, _ := config.ParseParsersFile(parser.ResolvePath(f, dir), env)
		out = append(out, ml...)
	}
	return out
}

// sinkOutputs are the outputs the output stage delivers (not those another
// stage serves, such as Vivo exporters).
func (p *Plan) sinkOutputs() []*Instance {
	var out []*Instance
	for _, o := range p.Outputs {
		if o.Spec.ServedBy == "" {
			out = append(out, o)
		}
	}
	return out
}

// appendConfigErr adds a *config.Error or the entries of a config.ErrorList.
func appendConfigErr(errs config.ErrorList, err error) config.ErrorList {
	var list config.ErrorList
	var one *config.Error
	switch {
	case errors.As(err, &list):
		return append(errs, list...)
	case errors.As(err, &one):
		return append(errs, one)
	}
	return append(errs, &config.Error{Msg: err.Error()})
}
