// split_lines turns a record whose "log" field holds several lines into one
// event per non-empty line, each with the record's other fields, time and
// metadata, plus "line" (1-based). A record with one line passes unchanged.
package main

import (
	"strings"

	"github.com/floe-io/floe/pkg/wasmsdk"
)

func init() {
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		msg, ok := ev.GetString("log")
		if !ok || !strings.Contains(msg, "\n") {
			out.Emit(ev)
			return nil
		}
		n := 0
		for line := range strings.SplitSeq(msg, "\n") {
			line = strings.TrimRight(line, "\r")
			if line == "" {
				continue
			}
			n++
			// The same event, changed and emitted again for each line.
			ev.Set("log", line)
			ev.Set("line", int64(n))
			out.Emit(ev)
		}
		return nil
	})
}

func main() {}
