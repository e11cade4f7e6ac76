// redact_email replaces every e-mail address in the record's string fields
// (nested maps and arrays included) with "[email redacted]".
package main

import (
	"regexp"

	"github.com/floe-io/floe/pkg/wasmsdk"
)

var email = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

const mask = "[email redacted]"

// redact returns v with addresses masked, and whether it changed.
func redact(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		if email.MatchString(x) {
			return email.ReplaceAllString(x, mask), true
		}
	case wasmsdk.Map:
		changed := false
		for i := range x {
			if nv, ok := redact(x[i].Value); ok {
				x[i].Value, changed = nv, true
			}
		}
		return x, changed
	case []any:
		changed := false
		for i := range x {
			if nv, ok := redact(x[i]); ok {
				x[i], changed = nv, true
			}
		}
		return x, changed
	}
	return v, false
}

func init() {
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		if body, changed := redact(ev.Body()); changed {
			ev.SetBody(body.(wasmsdk.Map))
		}
		out.Emit(ev)
		return nil
	})
}

func main() {}
