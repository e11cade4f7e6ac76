package config

import (
	"fmt"
	"strings"
)

// cliOpt is one fluent-bit command-line option.
type cliOpt struct {
	short   byte
	long    []string
	hasArg  bool
	support bool // false: a real fluent-bit option that is not configuration shorthand
}

var cliOpts = []cliOpt{
	{'i', []string{"input"}, true, true},
	{'F', []string{"filter"}, true, true},
	{'o', []string{"output"}, true, true},
	{'C', []string{"custom"}, true, true},
	{'p', []string{"prop"}, true, true},
	{'t', []string{"tag"}, true, true},
	{'m', []string{"match"}, true, true},
	{'f', []string{"flush"}, true, true},
	{'R', []string{"parser"}, true, true},
	{'H', []string{"http", "http_server"}, false, true},
	{'P', []string{"port", "http_port"}, true, true},
	{'L', []string{"http_listen"}, true, true},
	{'l', []string{"log_file"}, true, true},
	{'b', []string{"storage_path"}, true, true},
	{'e', []string{"plugin"}, true, true},
	{'d', []string{"daemon"}, false, true},
	{'v', []string{"verbose"}, false, true},
	{'q', []string{"quiet"}, false, true},
	// fluent-bit options that are not configuration shorthand
	{'c', []string{"config"}, true, false},
	{'D', []string{"dry-run"}, false, false},
	{'T', []string{"sp-task"}, true, false},
	{'V', []string{"version"}, false, false},
	{'h', []string{"help"}, false, false},
	{'J', []string{"help-json"}, false, false},
	{'w', []string{"workdir"}, true, false},
	{'s', []string{"coro_stack_size"}, true, false},
	{'X', []string{"coro_collective_timeslice"}, true, false},
	{'S', []string{"sosreport"}, false, false},
	{'Z', []string{"enable-chunk-trace"}, false, false},
}

func shortOpt(c byte) *cliOpt {
	for i := range cliOpts {
		if cliOpts[i].short == c {
			return &cliOpts[i]
		}
	}
	return nil
}

// longOpt finds a long option by exact name or unambiguous prefix (as
// getopt_long does).
func longOpt(name string) (*cliOpt, string) {
	var found *cliOpt
	for i := range cliOpts {
		for _, l := range cliOpts[i].long {
			if l == name {
				return &cliOpts[i], ""
			}
		}
	}
	for i := range cliOpts {
		for _, l := range cliOpts[i].long {
			if strings.HasPrefix(l, name) {
				if found != nil && found != &cliOpts[i] {
					return nil, "ambiguous option --" + name
				}
				found = &cliOpts[i]
			}
		}
	}
	if found == nil {
		return nil, "unknown flag --" + name
	}
	return found, ""
}

// logLevels indexed by Fluent Bit's verbosity (FLB_LOG_OFF .. FLB_LOG_TRACE).
var logLevels = []string{"off", "error", "warn", "info", "debug", "trace"}

// FromArgs builds a configuration from fluent-bit's command-line shorthand:
//
//	-i/--input NAME, -F/--filter NAME, -o/--output NAME, -C/--custom NAME
//	                        start a plugin section
//	-p/--prop KEY=VALUE     property of the most recent plugin section
//	-t/--tag TAG            tag of the most recent plugin section
//	-m/--match MATCH        match of the most recent filter/output
//	-f/--flush SECONDS      service flush
//	-R/--parser FILE        service parsers_file (repeatable)
//	-H/--http               service http_server on
//	-P/--port PORT          service http_port;  -L/--http_listen ADDR
//	-l/--log_file FILE      service log_file;   -b/--storage_path DIR
//	-d/--daemon             service daemon on;  -e/--plugin FILE: [PLUGINS] path
//	-v (debug), -vv (trace), -q (off)  service log_level
//
// Short options combine (-vv, -Hv) and take their argument attached or as
// the next word; long options take "=VALUE" or the next word and may be
// abbreviated. Other fluent-bit options (-c, -D, ...) and anything else are
// errors naming the flag. Props have File "<command line>" and Line = the
// 1-based position of the argument in args. Values are ${VAR}-expanded with
// the process environment.
func FromArgs(args []string) (*Config, error) {
	cfg := newConfig("args")
	var errs ErrorList
	service := &Section{Type: TypeService, File: CommandLine, Line: 0}
	cfg.Service = service
	var last *Section // most recent plugin section
	var plugins *Section
	verbosity, verbosityPos := -1, 0 // unset
	setService := func(key, val string, pos int) {
		service.Props = append(service.Props, Prop{Key: key, Value: val, File: CommandLine, Line: pos})
	}

	apply := func(o *cliOpt, flag, val string, pos int) {
		if !o.support {
			errs.add(CommandLine, pos, "", "flag %s is not configuration shorthand", flag)
			return
		}
		prop := func(s *Section, key, v string) {
			s.Props = append(s.Props, Prop{Key: key, Value: trimC(v), File: CommandLine, Line: pos})
		}
		newSection := func(typ, header string) {
			s := &Section{Type: typ, Header: header, File: CommandLine, Line: pos}
			prop(s, "name", val)
			cfg.add(s)
			last = s
		}
		switch o.short {
		case 'i':
			newSection(TypeInput, "input")
		case 'F':
			newSection(TypeFilter, "filter")
		case 'o':
			newSection(TypeOutput, "output")
		case 'C':
			newSection(TypeCustom, "custom")
		case 'p':
			if last == nil {
				errs.add(CommandLine, pos, "", "flag %s: no plugin to set the property on (use -i, -F or -o first)", flag)
				return
			}
			eq := strings.IndexByte(val, '=')
			if eq < 0 {
				errs.add(CommandLine, pos, "", "flag %s: expected KEY=VALUE, got %q", flag, val)
				return
			}
			key := asciiLower(trimC(val[:eq]))
			if key == "" {
				errs.add(CommandLine, pos, "", "flag %s: empty property name in %q", flag, val)
				return
			}
			prop(last, key, val[eq+1:])
		case 't':
			if last == nil {
				errs.add(CommandLine, pos, "", "flag %s: no plugin to set the tag on (use -i first)", flag)
				return
			}
			prop(last, "tag", val)
		case 'm':
			if last == nil {
				errs.add(CommandLine, pos, "", "flag %s: no filter or output to set the match on", flag)
				return
			}
			if last.Type != TypeFilter && last.Type != TypeOutput {
				// fluent-bit ignores it too
				cfg.Warnings = append(cfg.Warnings, &Error{File: CommandLine, Line: pos,
					Msg: fmt.Sprintf("flag %s after a %s is ignored (it applies to filters and outputs)", flag, last.Type)})
				return
			}
			prop(last, "match", val)
		case 'f':
			setService("flush", trimC(val), pos)
		case 'R':
			setService("parsers_file", trimC(val), pos)
		case 'H':
			setService("http_server", "on", pos)
		case 'P':
			setService("http_port", trimC(val), pos)
		case 'L':
			setService("http_listen", trimC(val), pos)
		case 'l':
			setService("log_file", trimC(val), pos)
		case 'b':
			setService("storage.path", trimC(val), pos)
		case 'd':
			setService("daemon", "on", pos)
		case 'e':
			if plugins == nil {
				plugins = &Section{Type: TypePlugins, Header: "plugins", File: CommandLine, Line: pos}
				cfg.add(plugins)
			}
			prop(plugins, "path", val)
		case 'v':
			if verbosity < 0 {
				verbosity = 3 // info
			}
			verbosity++
			verbosityPos = pos
		case 'q':
			verbosity, verbosityPos = 0, pos // FLB_LOG_OFF
		}
	}

	for i := 0; i < len(args); i++ {
		arg, pos := args[i], i+1
		switch {
		case arg == "--":
			for j := i + 1; j < len(args); j++ {
				errs.add(CommandLine, j+1, "", "unexpected argument %q", args[j])
			}
			i = len(args)
		case strings.HasPrefix(arg, "--"):
			name, val, hasVal := strings.Cut(arg[2:], "=")
			o, msg := longOpt(name)
			if o == nil {
				errs.add(CommandLine, pos, "", "%s", msg)
				continue
			}
			flag := "--" + name
			if o.hasArg && !hasVal {
				if i+1 >= len(args) {
					errs.add(CommandLine, pos, "", "flag %s requires an argument", flag)
					continue
				}
				i++
				val = args[i]
			} else if !o.hasArg && hasVal {
				errs.add(CommandLine, pos, "", "flag %s does not take an argument", flag)
				continue
			}
			apply(o, flag, val, pos)
		case len(arg) > 1 && arg[0] == '-':
			for j := 1; j < len(arg); j++ {
				o := shortOpt(arg[j])
				flag := "-" + string(arg[j])
				if o == nil {
					errs.add(CommandLine, pos, "", "unknown flag %s", flag)
					break
				}
				if !o.hasArg {
					apply(o, flag, "", pos)
					continue
				}
				val := arg[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						errs.add(CommandLine, pos, "", "flag %s requires an argument", flag)
						break
					}
					i++
					val = args[i]
				}
				apply(o, flag, val, pos)
				break
			}
		default:
			errs.add(CommandLine, pos, "", "unexpected argument %q", arg)
		}
	}
	if verbosity >= 0 {
		if verbosity >= len(logLevels) {
			verbosity = len(logLevels) - 1
		}
		setService("log_level", logLevels[verbosity], verbosityPos)
	}
	finish(cfg, processEnv, &errs)
	return cfg, errs.Err()
}
