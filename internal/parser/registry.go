package parser

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugin"
)

// Registry holds parsers by name (case-sensitive, as flb_parser_get). It
// implements plugin.Parsers and is safe for concurrent lookups once built.
type Registry struct {
	byName   map[string]*Parser
	list     []*Parser
	warnings []*config.Error
}

var _ plugin.Parsers = (*Registry)(nil)
var _ plugin.Parser = (*Parser)(nil)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byName: map[string]*Parser{}} }

// Add registers a parser. A second parser of the same name is an error
// (a *config.Error at its Name), as in Fluent Bit.
func (r *Registry) Add(p *Parser) error {
	if prev, ok := r.byName[p.name]; ok {
		where := prev.file
		if prev.line > 0 {
			where = fmt.Sprintf("%s:%d", prev.file, prev.line)
		}
		return &config.Error{File: p.file, Line: p.line, Key: "name",
			Msg: fmt.Sprintf("parser %q is already defined (at %s)", p.name, where)}
	}
	r.byName[p.name] = p
	r.list = append(r.list, p)
	r.warnings = append(r.warnings, p.warnings...)
	return nil
}

// Lookup finds a parser by name.
func (r *Registry) Lookup(name string) (plugin.Parser, bool) {
	if p, ok := r.Get(name); ok {
		return p, true
	}
	return nil, false
}

// Get finds a parser by name.
func (r *Registry) Get(name string) (*Parser, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byName[name]
	return p, ok
}

// Names lists the parsers in the order they were added.
func (r *Registry) Names() []string {
	out := make([]string, len(r.list))
	for i, p := range r.list {
		out[i] = p.name
	}
	return out
}

// Warnings are the warnings of every parser added.
func (r *Registry) Warnings() []*config.Error { return r.warnings }

// Load builds the parsers of a configuration: the [PARSER] sections given
// (the YAML "parsers" list of the main file), then those of each parsers
// file (the parsers_file service key, classic or YAML by extension; paths
// are used as given), then the built-in parsers (see Builtin) whose names
// are still free. Every problem found is returned at once as a
// config.ErrorList, along with a registry of the parsers that did build.
func Load(sections []*config.Section, parsersFiles []string, env config.Lookup) (*Registry, error) {
	r := NewRegistry()
	var errs config.ErrorList
	add := func(err error) {
		var list config.ErrorList
		var ce *config.Error
		switch {
		case errors.As(err, &list):
			errs = append(errs, list...)
		case errors.As(err, &ce):
			errs = append(errs, ce)
		default:
			errs = append(errs, &config.Error{Msg: err.Error()})
		}
	}
	build := func(list []*config.Section) {
		for _, s := range list {
			p, err := New(s)
			if err != nil {
				add(err)
				continue
			}
			if err := r.Add(p); err != nil {
				add(err)
			}
		}
	}
	build(sections)
	for _, f := range parsersFiles {
		list, _, err := config.ParseParsersFile(f, env)
		if err != nil {
			add(err)
		}
		build(list)
	}
	for _, p := range Builtin() {
		if _, taken := r.byName[p.name]; !taken {
			r.byName[p.name] = p
			r.list = append(r.list, p)
		}
	}
	return r, errs.Err()
}

// ResolvePath locates a parsers_file as Fluent Bit does
// (flb_parser_conf_file_stat): the path as given when it exists (or cannot
// be checked), else, for a relative path, the same path under confDir, the
// directory of the main configuration file.
func ResolvePath(file, confDir string) string {
	_, err := os.Stat(file)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || filepath.IsAbs(file) || confDir == "" {
		return file
	}
	return filepath.Join(confDir, file)
}

// builtinFile is the File of the built-in parsers' properties.
const builtinFile = "<built-in parsers>"

// builtinDefs are entries of Fluent Bit's stock conf/parsers.conf that
// configurations commonly name without shipping the file. Regexes and time
// formats are upstream's, unchanged.
var builtinDefs = [][]string{
	{"name", "apache", "format", "regex",
		"regex", `^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")?$`,
		"time_key", "time", "time_format", "%d/%b/%Y:%H:%M:%S %z"},
	{"name", "apache2", "format", "regex",
		"regex", `^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>.*)")?$`,
		"time_key", "time", "time_format", "%d/%b/%Y:%H:%M:%S %z"},
	{"name", "apache_error", "format", "regex",
		"regex", `^\[[^ ]* (?<time>[^\]]*)\] \[(?<level>[^\]]*)\](?: \[pid (?<pid>[^\]]*)\])?( \[client (?<client>[^\]]*)\])? (?<message>.*)$`},
	{"name", "nginx", "format", "regex",
		"regex", `^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")`,
		"time_key", "time", "time_format", "%d/%b/%Y:%H:%M:%S %z"},
	{"name", "k8s-nginx-ingress", "format", "regex",
		"regex", `^(?<host>[^ ]*) - (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*) "(?<referer>[^\"]*)" "(?<agent>[^\"]*)" (?<request_length>[^ ]*) (?<request_time>[^ ]*) \[(?<proxy_upstream_name>[^ ]*)\] (\[(?<proxy_alternative_upstream_name>[^ ]*)\] )?(?<upstream_addr>[^ ]*) (?<upstream_response_length>[^ ]*) (?<upstream_response_time>[^ ]*) (?<upstream_status>[^ ]*) (?<reg_id>[^ ]*).*$`,
		"time_key", "time", "time_format", "%d/%b/%Y:%H:%M:%S %z"},
	{"name", "json", "format", "json", "time_key", "time", "time_format", "%d/%b/%Y:%H:%M:%S %z"},
	{"name", "logfmt", "format", "logfmt"},
	{"name", "docker", "format", "json", "time_key", "time", "time_format", "%Y-%m-%dT%H:%M:%S.%L", "time_keep", "on"},
	{"name", "docker-daemon", "format", "regex",
		"regex", `time="(?<time>[^ ]*)" level=(?<level>[^ ]*) msg="(?<msg>[^ ].*)"`,
		"time_key", "time", "time_format", "%Y-%m-%dT%H:%M:%S.%L", "time_keep", "on"},
	{"name", "syslog-rfc5424", "format", "regex",
		"regex", `^\<(?<pri>[0-9]{1,5})\>1 (?<time>[^ ]+) (?<host>[^ ]+) (?<ident>[^ ]+) (?<pid>[-0-9]+) (?<msgid>[^ ]+) (?<extradata>(\[(.*?)\]|-)) (?<message>.+)$`,
		"time_key", "time", "time_format", "%Y-%m-%dT%H:%M:%S.%L%z", "time_keep", "on"},
	{"name", "syslog-rfc3164-local", "format", "regex",
		"regex", `^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$`,
		"time_key", "time", "time_format", "%b %d %H:%M:%S", "time_keep", "on"},
	{"name", "syslog-rfc3164", "format", "regex",
		"regex", `/^\<(?<pri>[0-9]+)\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[a-zA-Z0-9_\/\.\-]*)(?:\[(?<pid>[0-9]+)\])?(?:[^\:]*\:)? *(?<message>.*)$/`,
		"time_key", "time", "time_format", "%b %d %H:%M:%S", "time_keep", "on"},
	{"name", "mongodb", "format", "regex",
		"regex", `^(?<time>[^ ]*)\s+(?<severity>\w)\s+(?<component>[^ ]+)\s+\[(?<context>[^\]]+)]\s+(?<message>.*?) *(?<ms>(\d+))?(:?ms)?$`,
		"time_format", "%Y-%m-%dT%H:%M:%S.%L", "time_keep", "on", "time_key", "time"},
	{"name", "envoy", "format", "regex",
		"regex", `^\[(?<start_time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)? (?<protocol>\S+)" (?<code>[^ ]*) (?<response_flags>[^ ]*) (?<bytes_received>[^ ]*) (?<bytes_sent>[^ ]*) (?<duration>[^ ]*) (?<x_envoy_upstream_service_time>[^ ]*) "(?<x_forwarded_for>[^ ]*)" "(?<user_agent>[^\"]*)" "(?<request_id>[^\"]*)" "(?<authority>[^ ]*)" "(?<upstream_host>[^ ]*)"`,
		"time_format", "%Y-%m-%dT%H:%M:%S.%L%z", "time_keep", "on", "time_key", "start_time"},
	{"name", "cri", "format", "regex",
		"regex", `^(?<time>[^ ]+) (?<stream>stdout|stderr) (?<logtag>[^ ]*) (?<message>.*)$`,
		"time_key", "time", "time_format", "%Y-%m-%dT%H:%M:%S.%L%z", "time_keep", "on"},
	{"name", "kube-custom", "format", "regex",
		"regex", `(?<tag>[^.]+)?\.?(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_(?<namespace_name>[^_]+)_(?<container_name>.+)-(?<docker_id>[a-z0-9]{64})\.log$`},
}

var builtins = sync.OnceValue(func() []*Parser {
	out := make([]*Parser, 0, len(builtinDefs))
	for i, def := range builtinDefs {
		s := &config.Section{Type: config.TypeParser, Header: "PARSER", File: builtinFile, Line: i + 1}
		for j := 0; j < len(def); j += 2 {
			s.Props = append(s.Props, config.Prop{Key: def[j], Value: def[j+1], File: builtinFile, Line: i + 1})
		}
		p, err := New(s)
		if err != nil {
			panic(fmt.Sprintf("built-in parser %s: %v", def[1], err))
		}
		out = append(out, p)
	}
	return out
})

// Builtin returns the built-in parsers: apache, apache2, apache_error,
// nginx, k8s-nginx-ingress, json, logfmt, docker, docker-daemon,
// syslog-rfc5424, syslog-rfc3164-local, syslog-rfc3164, mongodb, envoy, cri
// and kube-custom, as defined in Fluent Bit's conf/parsers.conf. A
// configuration may define parsers of the same names: Load then uses the
// configuration's.
func Builtin() []*Parser {
	return append([]*Parser(nil), builtins()...)
}
