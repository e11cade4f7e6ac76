package wasmsdk

import (
	"fmt"
	"unicode/utf8"
)

// The filter's plugin_config, handed over by the host through the
// floe_configure export when the instance starts, before any chunk.
var (
	configJSON = []byte("null")
	configVal  any
	onConfig   func(cfg any) error
)

// Config is the filter's plugin_config, decoded as ParseJSON does (an
// object is a Map): nil when the filter sets none. It is valid in handlers
// and in the OnConfig hook, not in init (the host configures the instance
// after its init functions ran).
func Config() any { return configVal }

// ConfigJSON is plugin_config as the host sent it (JSON, "null" when unset).
func ConfigJSON() []byte { return configJSON }

// OnConfig registers a hook run when the host hands over plugin_config (once
// per instance, before the first chunk): it reads and checks its settings;
// an error refuses the configuration and the filter fails to start with
// that message. Call it from init.
func OnConfig(fn func(cfg any) error) { onConfig = fn }

// SetConfig installs plugin_config (JSON) and runs the OnConfig hook, as
// floe_configure does; a filter's native tests can call it.
func SetConfig(json []byte) error {
	if !utf8.Valid(json) {
		return fmt.Errorf("plugin_config: not UTF-8 JSON")
	}
	v, err := ParseJSON(string(json))
	if err != nil {
		return fmt.Errorf("plugin_config: %w", err)
	}
	configJSON, configVal = append([]byte(nil), json...), v
	if onConfig != nil {
		return onConfig(v)
	}
	return nil
}
