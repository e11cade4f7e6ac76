// route_by_level re-tags every record with its level: a record of tag
// "app" with "level":"ERROR" leaves as "app.error", one without a level as
// "app.unknown". Floe routes each new tag by the outputs' Match rules.
package main

import (
	"strings"

	"github.com/floe-io/floe/pkg/wasmsdk"
)

func init() {
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		level, ok := ev.GetString("level")
		if !ok || level == "" {
			level = "unknown"
		}
		out.EmitTag(tag+"."+strings.ToLower(level), ev)
		return nil
	})
}

func main() {}
