// Command floe runs a Floe pipeline: every stage in one process with an
// embedded NATS server, or any stage on its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/floe-io/floe/internal/app"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/all"
)

const usage = `Floe — a Fluent Bit compatible telemetry pipeline over NATS JetStream.

Usage:
  floe run [-c FILE] [--stage=STAGES] [options] [shorthand]
  floe validate -c FILE            report every configuration problem, exit 1 if any
  floe dlq list|show|replay|purge  inspect and resend dead letters (floe dlq for details)
  floe healthcheck [--url URL]     probe a stage's /api/v1/ready (for images without curl)
  floe plugins                     list built-in plugins
  floe version
  floe [-c FILE] [shorthand]       same as 'floe run' (Fluent Bit style)

Options:
  -c, --config FILE      Fluent Bit configuration (.conf classic or .yaml)
  --stage LIST           all (default), nats, ingest, filter, router, output, vivo; comma separated
  --nats-url URL         external NATS server (overrides [SERVICE] nats.url)
  --nats-listen ADDR     client address of the embedded server (default 127.0.0.1:4222 for --stage=nats)
  --storage-path DIR     JetStream storage of the embedded server (overrides storage.path)
  --output NAME          output stage: run only this output (name, alias or instance name)
  --http-port PORT       start the monitoring server on PORT
  --log-level LEVEL      off, error, warn, info, debug, trace
  -D, --dry-run          validate the configuration and exit

Fluent Bit shorthand:
  -i INPUT -p key=value -t TAG   -F FILTER -p key=value -m MATCH   -o OUTPUT -p key=value -m MATCH
  -f SECONDS (flush)  -R FILE (parsers_file)  -H (http_server)  -P PORT  -l FILE (log_file)  -v / -q

Example:
  floe -i dummy -p rate=5 -t app -F grep -p 'regex=message dummy' -m '*' -o stdout -m '*'
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type cli struct {
	command string
	cfgFile string
	opts    app.Options
	dryRun  bool
	rest    []string
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "dlq" {
		return runDLQ(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return runHealthcheck(args[1:], stdout, stderr)
	}
	c, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "floe: %v\n\n%s", err, usage)
		return 2
	}
	switch c.command {
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		fmt.Fprintf(stdout, "Floe v%s\n", app.Version)
		return 0
	case "plugins":
		reg := all.Registry()
		for _, k := range []plugin.Kind{plugin.KindInput, plugin.KindFilter, plugin.KindOutput} {
			fmt.Fprintf(stdout, "%ss: %s\n", k, strings.Join(reg.Names(k), ", "))
		}
		return 0
	}
	// validate, --dry-run and start-up share one check, so that each
	// reports every syntax and semantic problem at once.
	reg := all.Registry()
	cfg, loadErr := loadConfig(c)
	plan, err := app.Check(cfg, loadErr, reg)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	if c.command == "validate" || c.dryRun {
		for _, w := range plan.Warnings() {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		fmt.Fprintln(stdout, "configuration test is successful")
		return 0
	}
	ctx, stop := stopOnSignal(stderr, os.Exit)
	defer stop()
	c.opts.Config = cfg
	c.opts.Plan = plan
	c.opts.Registry = reg
	c.opts.Stderr = stderr
	if c.cfgFile != "" {
		c.opts.Reload = func() (*config.Config, error) { return loadConfig(c) }
	}
	if err := app.Run(ctx, c.opts); err != nil {
		var ec *app.ExitCodeError
		if errors.As(err, &ec) {
			fmt.Fprintf(stderr, "floe: %v\n", err)
			return ec.Code
		}
		printConfigError(stderr, err)
		return 1
	}
	return 0
}

// stopOnSignal returns a context that ends at the first SIGINT or SIGTERM,
// which starts a graceful stop (bounded by the grace period). A second
// signal exits at once with status 1: whatever was not acknowledged stays
// upstream and is redelivered, so impatience costs nothing but the wait.
func stopOnSignal(stderr io.Writer, exit func(int)) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "floe: second signal (%v): exiting now; chunks not yet acknowledged stay in their streams and are redelivered\n", sig)
			exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

func printConfigError(w io.Writer, err error) {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintf(w, "floe: %v\n", e)
		}
		fmt.Fprintf(w, "floe: %d configuration problem(s)\n", len(list))
		return
	}
	fmt.Fprintf(w, "floe: %v\n", err)
}

// parseArgs splits Floe's own flags from Fluent Bit's shorthand.
func parseArgs(args []string) (*cli, error) {
	c := &cli{command: "run"}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "run", "validate", "version", "help", "plugins":
			c.command = args[0]
			args = args[1:]
		default:
			return nil, fmt.Errorf("unknown command %q", args[0])
		}
	}
	value := func(i *int, name string) (string, error) {
		a := args[*i]
		if eq := strings.IndexByte(a, '='); eq >= 0 && strings.HasPrefix(a, "--") {
			return a[eq+1:], nil
		}
		if *i+1 >= len(args) {
			return "", fmt.Errorf("%s needs a value", name)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := a
		if strings.HasPrefix(a, "--") {
			if eq := strings.IndexByte(a, '='); eq >= 0 {
				name = a[:eq]
			}
		}
		var err error
		var v string
		switch name {
		case "-c", "--config":
			v, err = value(&i, name)
			c.cfgFile = v
		case "--stage":
			v, err = value(&i, name)
			c.opts.Stages = append(c.opts.Stages, v)
		case "--nats-url":
			c.opts.NATSURL, err = value(&i, name)
		case "--nats-listen":
			c.opts.NATSListen, err = value(&i, name)
		case "--storage-path":
			c.opts.StoragePath, err = value(&i, name)
		case "--output":
			c.opts.Output, err = value(&i, name)
		case "--http-port":
			c.opts.HTTPPort, err = value(&i, name)
		case "--log-level":
			c.opts.LogLevel, err = value(&i, name)
		case "-D", "--dry-run":
			c.dryRun = true
		case "-V", "--version":
			c.command = "version"
		case "-h", "--help":
			c.command = "help"
		default:
			c.rest = append(c.rest, a)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// loadConfig reads -c FILE and merges the command-line shorthand into it.
// With a problem in the file, what could be parsed is returned with the
// error, so that the checks of the rest still run.
func loadConfig(c *cli) (*config.Config, error) {
	var cfg *config.Config
	var loadErr error
	if c.cfgFile != "" {
		cfg, loadErr = config.Load(c.cfgFile)
		if cfg == nil {
			return nil, loadErr
		}
	}
	if cfg == nil && len(c.rest) == 0 && natsOnly(c.opts.Stages) {
		// A standalone NATS server needs no pipeline configuration.
		return &config.Config{Service: &config.Section{Type: config.TypeService}}, nil
	}
	if len(c.rest) > 0 || cfg == nil {
		if len(c.rest) == 0 {
			return nil, errors.New("no configuration: give -c FILE or plugins on the command line (see floe help)")
		}
		short, argsErr := config.FromArgs(c.rest)
		if short == nil || cfg == nil {
			return short, joinConfigErrors(loadErr, argsErr)
		}
		loadErr = joinConfigErrors(loadErr, argsErr)
		// Command-line service values win: Section.Get returns the first one.
		cfg.Service.Props = append(append([]config.Prop(nil), short.Service.Props...), cfg.Service.Props...)
		cfg.Inputs = append(cfg.Inputs, short.Inputs...)
		cfg.Filters = append(cfg.Filters, short.Filters...)
		cfg.Outputs = append(cfg.Outputs, short.Outputs...)
		cfg.Plugins = append(cfg.Plugins, short.Plugins...) // -e PATH
	}
	return cfg, loadErr
}

// joinConfigErrors keeps the file's problems beside a shorthand error, as
// one ErrorList when both are lists.
func joinConfigErrors(fileErr, argsErr error) error {
	if fileErr == nil {
		return argsErr
	}
	if argsErr == nil {
		return fileErr
	}
	var a, b config.ErrorList
	if errors.As(fileErr, &a) && errors.As(argsErr, &b) {
		return append(append(config.ErrorList(nil), a...), b...)
	}
	return errors.Join(fileErr, argsErr)
}

func natsOnly(stages []string) bool {
	set, err := app.ParseStages(stages)
	return err == nil && len(set) == 1 && set[app.StageNATS]
}
