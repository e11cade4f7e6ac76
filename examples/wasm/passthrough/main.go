// passthrough emits every record unchanged: the cost of the batch ABI itself.
package main

import "github.com/floe-io/floe/pkg/wasmsdk"

func init() {
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		out.Emit(ev)
		return nil
	})
}

func main() {}
