package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// ExternalLoader turns a plugin file named in a plugins_file, a YAML
// `plugins:` list or `-e` into a spec: a fluent-bit-go shared object or an
// SDK plugin executable. It is set by the build (internal/plugins/all), so
// core packages need not know how plugins are run.
type ExternalLoader func(ctx context.Context, path string) (*Spec, error)

// SetExternalLoader sets how LoadExternal loads plugin files.
func (r *Registry) SetExternalLoader(l ExternalLoader) *Registry {
	r.loader = l
	return r
}

// LoadExternal loads the plugin at path and registers it under the name it
// registers itself with. Loading the same file again (a configuration
// reload) returns the spec already loaded.
func (r *Registry) LoadExternal(ctx context.Context, path string) (*Spec, error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if s, ok := r.loaded[path]; ok {
		return s, nil
	}
	if r.loader == nil {
		return nil, fmt.Errorf("plugin %s: this build of Floe cannot load external plugins", path)
	}
	spec, err := r.loader(ctx, path)
	if err != nil {
		return nil, err
	}
	for _, k := range spec.Keys {
		if IsReservedKey(k.Name) {
			return nil, fmt.Errorf("plugin %s (%s) declares the reserved key %q; reserved keys belong to Floe and cannot be plugin keys", spec.Name, path, k.Name)
		}
	}
	if prev, ok := r.Lookup(spec.Kind, spec.Name); ok {
		where := "built in"
		if prev.Path != "" {
			where = "loaded from " + prev.Path
		}
		return nil, fmt.Errorf("plugin %s registers the %s name %q, already %s", path, spec.Kind, spec.Name, where)
	}
	spec.Path = path
	if err := r.Add(spec); err != nil {
		return nil, err
	}
	if r.loaded == nil {
		r.loaded = map[string]*Spec{}
	}
	r.loaded[path] = spec
	return spec, nil
}

// ReservedKeys are the keys Fluent Bit keeps for itself and a custom plugin
// must not use (Calyptia Core / fluent-bit-go's published list).
var ReservedKeys = []string{
	"alias", "host", "ipv6", "listen", "log_level", "log_suppress_interval", "match",
	"match_regex", "mem_buf_limit", "port", "retry_limit", "routable",
	"storage.pause_on_chunks_overlimit", "storage.total_limit_size", "storage.type", "tag",
	"threaded", "tls", "tls.ca_file", "tls.ca_path", "tls.crt_file", "tls.debug",
	"tls.key_file", "tls.key_passwd", "tls.verify", "tls.vhost", "workers",
}

// IsReservedKey reports whether a plugin may not declare key.
func IsReservedKey(key string) bool {
	key = strings.ToLower(key)
	for _, k := range ReservedKeys {
		if k == key {
			return true
		}
	}
	return strings.HasPrefix(key, "tls.")
}

// IsCoreOutputKey reports whether an output key is consumed by Floe's core
// and so never given to an external plugin (Fluent Bit's
// flb_output_set_property: name, match, alias, retry_limit, workers, tls*,
// net.*, oauth2*, storage.* ...).
func IsCoreOutputKey(key string) bool {
	key = strings.ToLower(key)
	switch key {
	case "name", "match", "match_regex", "alias", "log_level", "log_suppress_interval",
		"host", "port", "ipv6", "retry_limit", "tls", "workers":
		return true
	}
	for _, p := range []string{"tls.", "net.", "oauth2", "storage."} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// PluginProps returns the properties of an output section that an external
// plugin is given: every key but the core ones, in order, keys lowercased.
func PluginProps(p *Props) [][2]string {
	var out [][2]string
	for _, prop := range p.Section.Props {
		if IsCoreOutputKey(prop.Key) {
			continue
		}
		out = append(out, [2]string{strings.ToLower(prop.Key), prop.Value})
	}
	return out
}
