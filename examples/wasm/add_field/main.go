// add_field appends "platform":"wasm" to every record without decoding it
// (the batch-ABI counterpart of the go_msgpack_add test guest).
package main

import "github.com/floe-io/floe/pkg/wasmsdk"

func init() {
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		ev.Add("platform", "wasm")
		out.Emit(ev)
		return nil
	})
}

func main() {}
