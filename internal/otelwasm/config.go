package otelwasm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/wasmhost"
)

// Keys are the configuration keys of every otelwasm plugin; timeout is
// wasm_timeout's default.
func Keys(timeout string) []plugin.Key {
	return []plugin.Key{
		{Name: "path", Desc: "path to the OTelWasm module (required)"},
		{Name: "plugin_config", Desc: "guest configuration: a JSON value (or plugin_config.<a>.<b> keys, or a YAML map)"},
		{Name: "wasm_timeout", Type: plugin.Seconds, Default: timeout, Desc: "deadline of each call; a call past it is stopped and the instance replaced (0: none, faster code)"},
		{Name: "wasm_memory_limit", Type: plugin.Size, Default: "128M", Desc: "cap on the module's linear memory"},
	}
}

// Settings are the keys every otelwasm plugin has.
type Settings struct {
	Path     string
	Config   []byte        // plugin_config as JSON
	Timeout  time.Duration // < 0: none
	MemLimit int64
	Keep     bool // on_error keep (filters)
}

// ParseSettings reads the keys of spec (built with Keys) from p, refusing
// keys neither spec nor plugin_config.<path> names.
func ParseSettings(p *plugin.Props, spec *plugin.Spec) (Settings, error) {
	var s Settings
	known := map[string]bool{}
	for _, k := range spec.Keys {
		known[k.Name] = true
	}
	for _, k := range plugin.CommonKeys(spec.Kind) {
		known[k.Name] = true
	}
	for _, prop := range p.Section.Props {
		k := strings.ToLower(prop.Key)
		if !known[k] && !strings.HasPrefix(k, "plugin_config.") {
			return s, p.Errorf(prop.Key, "unknown key for %s plugin \"otelwasm\"", spec.Kind)
		}
	}
	s.Path = strings.TrimSpace(p.String("path"))
	if s.Path == "" {
		return s, p.Errorf("path", "no OTelWasm module path was given (path)")
	}
	cfg, err := ConfigJSON(p)
	if err != nil {
		return s, err
	}
	s.Config = cfg
	s.Timeout = time.Duration(p.Seconds("wasm_timeout") * float64(time.Second))
	if s.Timeout <= 0 {
		s.Timeout = -1
	}
	s.MemLimit = p.Size("wasm_memory_limit")
	if s.MemLimit <= 0 {
		s.MemLimit = wasmhost.DefaultMemoryLimit
	}
	s.Keep = !strings.EqualFold(strings.TrimSpace(p.String("on_error")), "drop")
	return s, nil
}

// ConfigJSON builds the JSON of plugin_config from its three spellings: a
// JSON value; plugin_config.<a>.<b> keys (numeric elements index arrays, a
// JSON number, true, false or null stays typed, a JSON string literal is
// that string, a repeated key makes an array); a YAML map or list under
// plugin_config, nested to any depth (flattened to such keys by the YAML
// parser). Unset: null.
func ConfigJSON(p *plugin.Props) ([]byte, error) {
	var root any
	set := false
	if p.Has("plugin_config") {
		v := strings.TrimSpace(p.String("plugin_config"))
		if err := json.Unmarshal([]byte(v), &root); err != nil {
			return nil, p.Errorf("plugin_config", "not a JSON value: %v (use a JSON value, or plugin_config.<key> keys)", err)
		}
		set = true
	}
	type kv struct{ path, value, key string }
	var dotted []kv
	for _, prop := range p.Section.Props {
		if strings.HasPrefix(strings.ToLower(prop.Key), "plugin_config.") {
			dotted = append(dotted, kv{prop.Key[len("plugin_config."):], prop.Value, prop.Key})
		}
	}
	for _, g := range p.Section.Groups {
		if strings.EqualFold(g.Name, "plugin_config") {
			for _, prop := range g.Props {
				dotted = append(dotted, kv{prop.Key, prop.Value, "plugin_config." + prop.Key})
			}
		}
	}
	if len(dotted) > 0 && set {
		return nil, p.Errorf(dotted[0].key, "plugin_config is given both as a value and as keys; use one")
	}
	if len(dotted) > 0 {
		var err error
		for _, d := range dotted {
			if root, err = insert(root, strings.Split(d.path, "."), scalar(d.value)); err != nil {
				return nil, p.Errorf(d.key, "%v", err)
			}
		}
	}
	return json.Marshal(root)
}

// scalar keeps JSON numbers, booleans and null typed and decodes a JSON
// string literal ("7" stays the string 7); anything else is a string.
func scalar(v string) any {
	t := strings.TrimSpace(v)
	if strings.HasPrefix(t, `"`) {
		var str string
		if json.Unmarshal([]byte(t), &str) == nil {
			return str
		}
	}
	switch t {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n := json.Number(t); t != "" {
		if _, err := strconv.ParseFloat(t, 64); err == nil && json.Valid([]byte(t)) {
			return n
		}
	}
	return v
}

// insert sets path in node (a map, an array or nil) to v; a repeated leaf
// becomes an array.
func insert(node any, path []string, v any) (any, error) {
	if len(path) == 0 {
		switch old := node.(type) {
		case nil:
			return v, nil
		case []any:
			return append(old, v), nil
		case map[string]any:
			return nil, errors.New("a key cannot be both a value and a map")
		default:
			return []any{old, v}, nil
		}
	}
	k := path[0]
	if k == "" {
		return nil, errors.New("empty element in the key path")
	}
	if i, err := strconv.Atoi(k); err == nil && i >= 0 {
		arr, _ := node.([]any)
		if node != nil && arr == nil {
			return nil, fmt.Errorf("element %s: index into a non-array", k)
		}
		if i > len(arr) {
			return nil, fmt.Errorf("element %s: array index skips %d (indexes start at 0, in order)", k, len(arr))
		}
		if i == len(arr) {
			arr = append(arr, nil)
		}
		child, err := insert(arr[i], path[1:], v)
		if err != nil {
			return nil, err
		}
		arr[i] = child
		return arr, nil
	}
	m, _ := node.(map[string]any)
	if node != nil && m == nil {
		return nil, fmt.Errorf("element %s: a key cannot be both a value and a map", k)
	}
	if m == nil {
		m = map[string]any{}
	}
	child, err := insert(m[k], path[1:], v)
	if err != nil {
		return nil, err
	}
	m[k] = child
	return m, nil
}
