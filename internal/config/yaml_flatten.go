package config

import (
	"encoding/json"
	"strconv"

	"gopkg.in/yaml.v3"
)

// flattenKeys are property names whose YAML value may nest maps and lists
// to any depth (otelwasm's plugin_config, a collector component's config):
// it becomes dotted properties, key.a.0.b value, which the plugin rebuilds.
// Map keys are taken verbatim (no camelCase translation). A YAML string
// that would read as another JSON type is given as a JSON string literal.
var flattenKeys = map[string]bool{"plugin_config": true}

func (p *yamlParser) flatten(file string, s *Section, key string, vn *yaml.Node) {
	vn = resolve(vn)
	switch vn.Kind {
	case yaml.ScalarNode:
		v := vn.Value
		if vn.Tag == "!!str" && json.Valid([]byte(v)) {
			// A YAML string that reads as JSON (7, true, null, "x"):
			// quoted, so the plugin keeps it a string.
			b, _ := json.Marshal(v)
			v = string(b)
		}
		s.Props = append(s.Props, Prop{Key: key, Value: v, File: file, Line: vn.Line})
	case yaml.MappingNode:
		for i := 0; i+1 < len(vn.Content); i += 2 {
			k := resolve(vn.Content[i])
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				p.errs.add(file, k.Line, key, "map keys must be non-empty strings")
				continue
			}
			p.flatten(file, s, key+"."+k.Value, vn.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, e := range vn.Content {
			p.flatten(file, s, key+"."+strconv.Itoa(i), e)
		}
	default:
		p.errs.add(file, vn.Line, key, "invalid property value")
	}
}
