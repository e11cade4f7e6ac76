// sample keeps 1 record in N (N = 10): the 1st, 11th, 21st … record each
// instance sees; the others are dropped. The count lives in the instance,
// so it restarts when Floe recycles one, and each pooled instance counts on
// its own.
package main

import "github.com/floe-io/floe/pkg/wasmsdk"

const N = 10

var seen uint64

func init() {
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		if seen%N == 0 {
			out.Emit(ev)
		}
		seen++
		return nil
	})
}

func main() {}
