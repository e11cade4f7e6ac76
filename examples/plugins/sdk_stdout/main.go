// sdk_stdout is a Floe output plugin written with pkg/pluginsdk: an ordinary
// Go program that Floe starts and talks to over gRPC.
// Build: go build -o sdk_stdout ./examples/plugins/sdk_stdout
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/floe-io/floe/pkg/pluginsdk"
)

type stdoutOut struct{ prefix string }

func (o *stdoutOut) Flush(_ context.Context, c pluginsdk.Chunk) error {
	switch c.EventType {
	case pluginsdk.Logs:
		events, err := c.Events()
		if err != nil {
			return pluginsdk.Permanent(err) // undecodable: ERROR, to the dead-letter stream
		}
		for _, e := range events {
			fmt.Printf("%s[%s] %s %v\n", o.prefix, c.Tag, e.Time.UTC().Format(time.RFC3339Nano), e.Record)
		}
	case pluginsdk.Metrics:
		fmt.Printf("%s[%s] metrics chunk, %d bytes of OTLP\n", o.prefix, c.Tag, len(c.Data))
	}
	return nil // OK; any other error means RETRY, pluginsdk.RetryAfter sets the delay
}

func main() {
	pluginsdk.Serve(pluginsdk.Definition{
		Name:        "sdk_stdout",
		Description: "prints events (SDK example)",
		EventTypes:  []pluginsdk.EventType{pluginsdk.Logs, pluginsdk.Metrics},
		ConfigKeys:  []pluginsdk.ConfigKey{{Name: "prefix", Default: "", Description: "printed before each line"}},
		New: func(_ context.Context, cfg pluginsdk.Config) (pluginsdk.Output, error) {
			return &stdoutOut{prefix: cfg.Get("prefix")}, nil
		},
	})
}
