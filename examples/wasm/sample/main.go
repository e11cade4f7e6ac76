// sample keeps 1 record in N: the 1st, N+1st, 2N+1st … record each instance
// sees; the others are dropped. N is plugin_config's "n" (default 10):
//
//	[FILTER]
//	    Name            wasm
//	    Match           *
//	    wasm_path       sample.wasm
//	    plugin_config   {"n": 100}
//
// The count lives in the instance, so it restarts when Floe recycles one,
// and each pooled instance counts on its own.
package main

import (
	"fmt"

	"github.com/floe-io/floe/pkg/wasmsdk"
)

var (
	n    uint64 = 10
	seen uint64
)

func init() {
	wasmsdk.OnConfig(func(cfg any) error {
		m, _ := cfg.(wasmsdk.Map)
		v, ok := m.Get("n")
		if !ok {
			return nil
		}
		if i, isInt := v.(int64); isInt && i >= 1 {
			n = uint64(i)
			return nil
		}
		return fmt.Errorf("sample: plugin_config n must be an integer of at least 1, not %v", v)
	})
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		if seen%n == 0 {
			out.Emit(ev)
		}
		seen++
		return nil
	})
}

func main() {}
