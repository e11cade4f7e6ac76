package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/app"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/dlq"
	"github.com/floe-io/floe/internal/plugins/output/format"
	"github.com/floe-io/floe/internal/tag"
)

const dlqUsage = `Usage:
  floe dlq list    [flags]               dead letters: sequence, time, stage, tag, records, reason
  floe dlq show    [flags] SEQ           one dead letter's headers and events
  floe dlq replay  [flags] [SEQ...]      resend to where they came from, then remove them
  floe dlq purge   [flags] [SEQ...|--all] delete them

Flags:
  -c FILE            configuration (for nats.url, credentials and storage.path)
  --nats-url URL     NATS server (default: the configuration's, else the embedded storage)
  --storage-path DIR embedded storage directory (when floe is not running)
  --stage NAME       only letters set aside by this stage or output id (e.g. filter, stdout_0)
  --tag PATTERN      only letters whose tag matches this Fluent Bit Match pattern
  --all              purge: every letter matching the other flags
`

// runDLQ implements `floe dlq`.
func runDLQ(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("dlq "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("c", "", "configuration file")
	natsURL := fs.String("nats-url", "", "NATS server URL")
	storage := fs.String("storage-path", "", "embedded storage directory")
	stage := fs.String("stage", "", "stage or output id")
	tagPat := fs.String("tag", "", "tag pattern")
	all := fs.Bool("all", false, "purge every matching letter")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	f := dlq.Filter{Stage: *stage}
	if *tagPat != "" {
		m, err := tag.NewMatcher(*tagPat, "")
		if err != nil {
			fmt.Fprintf(stderr, "floe dlq: --tag: %v\n", err)
			return 2
		}
		f.Tag = m
	}
	for _, a := range fs.Args() {
		seq, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "floe dlq: %q is not a sequence number\n", a)
			return 2
		}
		f.Seqs = append(f.Seqs, seq)
	}
	cfg := &config.Config{Service: &config.Section{Type: config.TypeService}}
	if *cfgFile != "" {
		loaded, err := config.Load(*cfgFile)
		if err != nil {
			printConfigError(stderr, err)
			return 1
		}
		cfg = loaded
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := app.ConnectAdmin(ctx, cfg, *natsURL, *storage)
	if err != nil {
		fmt.Fprintf(stderr, "floe dlq: %v\n", err)
		return 1
	}
	defer admin.Close()
	store := dlq.New(admin.JS)
	switch verb {
	case "list":
		letters, err := store.List(ctx, f)
		if err != nil {
			fmt.Fprintf(stderr, "floe dlq: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%-6s %-20s %-12s %-24s %7s  %s\n", "SEQ", "TIME", "STAGE", "TAG", "RECORDS", "REASON")
		for _, l := range letters {
			fmt.Fprintf(stdout, "%-6d %-20s %-12s %-24s %7d  %s\n", l.Seq, l.Time.UTC().Format("2006-01-02T15:04:05Z"),
				l.Stage, l.Tag, l.Records, oneLine(l.Reason))
		}
		fmt.Fprintf(stdout, "%d dead letter(s)\n", len(letters))
	case "show":
		if len(f.Seqs) != 1 {
			fmt.Fprintln(stderr, "floe dlq show: give exactly one sequence number")
			return 2
		}
		letters, err := store.List(ctx, f)
		if err != nil || len(letters) == 0 {
			fmt.Fprintf(stderr, "floe dlq: dead letter %d not found %v\n", f.Seqs[0], errOrNil(err))
			return 1
		}
		l := letters[0]
		fmt.Fprintf(stdout, "seq:     %d\ntime:    %s\nstage:   %s\ntag:     %s\nrecords: %d\nbytes:   %d\norigin:  %s\nreason:  %s\n\n",
			l.Seq, l.Time.UTC().Format(time.RFC3339Nano), l.Stage, l.Tag, l.Records, l.Bytes, l.Origin, l.Reason)
		out, err := format.AppendPrintChunk(nil, l.Tag, l.Data)
		stdout.Write(out)
		if err != nil {
			fmt.Fprintf(stdout, "(the rest of the chunk does not decode: %v)\n", err)
		}
	case "replay":
		n, err := store.Replay(ctx, f)
		fmt.Fprintf(stdout, "replayed %d dead letter(s)\n", n)
		if err != nil {
			fmt.Fprintf(stderr, "floe dlq: %v\n", err)
			return 1
		}
	case "purge":
		if len(f.Seqs) == 0 && !*all {
			fmt.Fprintln(stderr, "floe dlq purge: give sequence numbers or --all")
			return 2
		}
		n, err := store.Purge(ctx, f)
		fmt.Fprintf(stdout, "purged %d dead letter(s)\n", n)
		if err != nil {
			fmt.Fprintf(stderr, "floe dlq: %v\n", err)
			return 1
		}
	default:
		fmt.Fprintf(stderr, "floe dlq: unknown command %q\n\n%s", verb, dlqUsage)
		return 2
	}
	return 0
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func errOrNil(err error) error {
	if err == nil {
		return errors.New("")
	}
	return err
}
