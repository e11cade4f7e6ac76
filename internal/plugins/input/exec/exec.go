// Package exec is Fluent Bit's exec input (plugins/in_exec): it runs a
// shell command (/bin/sh -c) every interval_sec + interval_nsec and makes a
// record of each line of its standard output: {"exec": "line"}, or the
// parser's record when parser is set (a line the parser rejects is logged,
// counted and dropped, as upstream). Lines are read with fgets semantics: a
// line longer than buf_size-1 bytes (default 4096) comes out in pieces.
//
// oneshot runs the command once at start; exit_after_oneshot (which
// implies oneshot) ends the input once it has run and its records are
// stored. With propagate_exit_code too, the input's ExitCode method
// reports, once Run has returned, the command's status (128+N when it was
// killed by signal N, as a shell reports it): the status Fluent Bit exits
// with. Run itself still returns nil, so a failing command never cuts the
// pipeline's drain short; the process that ran the input asks ExitCode
// (interface{ ExitCode() int }) when choosing its own exit status.
// A command still running when Floe stops is sent SIGTERM with its
// process group.
package exec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/netin"
	"github.com/floe-io/floe/internal/plugins/input/internal/receipts"
	"github.com/floe-io/floe/internal/telemetry"
)

// Spec describes the exec input plugin.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindInput,
		Name: "exec",
		Desc: "Exec Input",
		Keys: []plugin.Key{
			{Name: "command", Desc: "shell command to run (/bin/sh -c)"},
			{Name: "interval_sec", Type: plugin.Int, Default: "1", Desc: "seconds between runs"},
			{Name: "interval_nsec", Type: plugin.Int, Default: "0", Desc: "nanoseconds between runs, added to interval_sec"},
			{Name: "buf_size", Type: plugin.Size, Default: "4096", Desc: "longest line read at once"},
			{Name: "oneshot", Type: plugin.Bool, Default: "false", Desc: "run the command once, at start"},
			{Name: "exit_after_oneshot", Type: plugin.Bool, Default: "false", Desc: "end the input after the one run (implies oneshot)"},
			{Name: "propagate_exit_code", Type: plugin.Bool, Default: "false", Desc: "with exit_after_oneshot: end with the command's exit status"},
		},
		NewInput: New,
	}
}

// Exec is a configured exec input.
type Exec struct {
	cmd     string
	period  time.Duration
	bufSize int
	oneshot bool
	exit    bool
	// propagate: Run returns the command's non-zero exit status (oneshot).
	propagate bool
	status    int // exit status of the last run; -1 before any
	parser    plugin.Parser
	log       *slog.Logger
	m         *telemetry.NetInputMetrics
	now       func() event.Time
}

// New builds an exec input.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Input, error) {
	x := &Exec{cmd: p.String("command"), bufSize: int(p.Size("buf_size")), oneshot: p.Bool("oneshot"),
		exit: p.Bool("exit_after_oneshot"), propagate: p.Bool("propagate_exit_code"), status: -1,
		log: netin.Logger(set), m: netin.Metrics(set), now: event.Now}
	if x.cmd == "" {
		return nil, p.Errorf("name", "no input 'command' was given")
	}
	if x.bufSize < 2 {
		return nil, p.Errorf("buf_size", "buffer size is invalid")
	}
	sec, nsec := p.Int("interval_sec"), p.Int("interval_nsec")
	if sec <= 0 && nsec <= 0 {
		sec, nsec = 1, 0 // upstream overrides illegal settings
	}
	x.period = time.Duration(max(sec, 0))*time.Second + time.Duration(max(nsec, 0))
	if p.Bool("propagate_exit_code") && !x.exit {
		return nil, p.Errorf("propagate_exit_code", "propagate_exit_code=True option makes no sense without exit_after_oneshot=True")
	}
	if x.exit {
		x.oneshot = true
	}
	if name := p.String("parser"); name != "" {
		var ok bool
		if set.Parsers != nil {
			x.parser, ok = set.Parsers.Lookup(name)
		}
		if !ok {
			return nil, p.Errorf("parser", "requested parser %q not found", name)
		}
	}
	return x, nil
}

// Run runs the command once (oneshot) or at every interval until ctx ends.
func (x *Exec) Run(ctx context.Context, w plugin.Writer) error {
	tr := receipts.Tracker{Logger: x.log}
	defer func() {
		plugin.FlushWriter(w)
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if ctx.Err() == nil {
			wctx = ctx
		}
		_ = tr.Wait(wctx)
	}()
	if x.oneshot {
		if err := x.collect(ctx, w, &tr); err != nil && ctx.Err() == nil {
			return err
		}
		if x.exit {
			x.log.Info("one-shot command exited, input done", "status", x.status)
			if x.propagate && x.status != 0 {
				x.log.Warn("one-shot command failed; propagate_exit_code passes its status on", "command", x.cmd, "status", x.status)
			}
			return nil
		}
		<-ctx.Done()
		return nil
	}
	// The timer keeps to the grid start + k×period, as Fluent Bit's
	// collector: runs missed while one lasted are coalesced into one.
	base := time.Now()
	k := int64(1)
	timer := time.NewTimer(x.period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if err := x.collect(ctx, w, &tr); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		if passed := int64(now.Sub(base) / x.period); passed > k {
			k = passed
		} else {
			k++
		}
		timer.Reset(base.Add(time.Duration(k) * x.period).Sub(now))
	}
}

// collect runs the command once and writes its lines. A command that
// cannot start or fails is logged; only a failed Write is returned.
func (x *Exec) collect(ctx context.Context, w plugin.Writer, tr *receipts.Tracker) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", x.cmd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if err := cmd.Start(); err != nil {
		x.log.Error("command failed to start", "command", x.cmd, "error", err)
		x.status = 127 // what a shell reports for a command it cannot run
		return nil
	}
	var b netin.Batch
	var body []byte
	r := bufio.NewReaderSize(out, x.bufSize)
	var werr error
	flush := func() {
		if b.Records == 0 || werr != nil {
			return
		}
		rc, err := w.Write(ctx, "", b.Data, b.Records)
		b.Reset()
		if err != nil {
			werr = err
			return
		}
		tr.Add(rc)
	}
	var line []byte
	for {
		var got bool
		var err error
		line, got, err = readLine(r, line[:0], x.bufSize-1)
		if got {
			t := x.now()
			if x.parser != nil {
				pt, m, perr := x.parser.Parse(line)
				if perr != nil {
					x.m.Unparsed.Add(1)
					x.log.Error("parser returned an error", "line", string(line), "error", perr)
				} else {
					if pt != (event.Time{}) {
						t = pt
					}
					body = m.AppendMsgpack(body[:0])
					b.Add(t, body, "", "")
				}
			} else {
				body = netin.StringRecord(body[:0], "exec", line, "", "")
				b.Add(t, body, "", "")
			}
			if len(b.Data) >= 256<<10 {
				flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				x.log.Warn("reading the command's output", "error", err)
			}
			break
		}
	}
	flush()
	err = cmd.Wait()
	x.status = exitStatus(cmd.ProcessState)
	if err != nil && ctx.Err() == nil {
		x.log.Debug("command exited", "command", x.cmd, "error", err, "status", x.status)
	}
	return werr
}

// exitStatus is the status a shell would report: the exit code, or 128+N
// for a command killed by signal N; -1 when it did not run.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// ExitCode is the status the process should exit with once Run has
// returned: with exit_after_oneshot and propagate_exit_code, the one-shot
// command's status; 0 otherwise (Fluent Bit exits with the command's
// status only then). Call it after Run returned.
func (x *Exec) ExitCode() int {
	if !x.exit || !x.propagate || x.status < 0 {
		return 0
	}
	return x.status
}

// readLine appends to line up to max bytes ending with a newline, as
// fgets reads, without the newline. got is false only at the end of the
// output with nothing read; an empty line is a line.
func readLine(r *bufio.Reader, line []byte, max int) (_ []byte, got bool, _ error) {
	for len(line) < max {
		c, err := r.ReadByte()
		if err != nil {
			return line, len(line) > 0, err
		}
		if c == '\n' {
			return line, true, nil
		}
		line = append(line, c)
	}
	return line, true, nil
}
