// parse_json parses the JSON object in the "log" string field into fields
// of the record (keeping their order) and removes "log". A "log" that is
// not a JSON object is left as it is, with "parse_error" set.
package main

import "github.com/floe-io/floe/pkg/wasmsdk"

func init() {
	wasmsdk.Handle(func(tag string, ev *wasmsdk.Event, out *wasmsdk.Output) error {
		text, ok := ev.GetString("log")
		if !ok {
			out.Emit(ev)
			return nil
		}
		v, err := wasmsdk.ParseJSON(text)
		obj, isObj := v.(wasmsdk.Map)
		switch {
		case err != nil:
			ev.Set("parse_error", err.Error())
		case !isObj:
			ev.Set("parse_error", "not a JSON object")
		default:
			ev.Delete("log")
			for _, kv := range obj {
				ev.Set(kv.Key, kv.Value)
			}
		}
		out.Emit(ev)
		return nil
	})
}

func main() {}
