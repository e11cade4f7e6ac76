package config

// ParsePluginsFile reads a plugins file (the `plugins_file` service key):
// classic `[PLUGINS]` sections with `Path` lines, or a YAML file with a
// top-level `plugins:` list. It returns one Prop per plugin path, positioned
// at its line; other sections and keys are ignored, as Fluent Bit does.
func ParsePluginsFile(path string, env Lookup) ([]Prop, error) {
	data, err := readConfigFile(osFS{}, path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: err.Error()}}
	}
	var cfg *Config
	if isYAMLPath(path) {
		cfg, err = parseYAML(osFS{}, path, data, env)
	} else {
		cfg, err = parseClassic(osFS{}, path, data, env, false)
	}
	if cfg == nil {
		return nil, err
	}
	var out []Prop
	for _, s := range cfg.Plugins {
		for _, p := range s.Props {
			if asciiEqualFold(p.Key, "path") {
				out = append(out, p)
			}
		}
	}
	return out, err
}
