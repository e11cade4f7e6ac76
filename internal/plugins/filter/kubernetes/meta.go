package kubernetes

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// defaultTagRegex is Fluent Bit's built-in tag regex (kube_regex.h), applied
// to the tag after kube_tag_prefix: the file name kubelet gives a
// container's log, <pod>_<namespace>_<container>-<64 hex id>.log.
const defaultTagRegex = `(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_(?<namespace_name>[^_]+)_(?<container_name>.+)-(?<docker_id>[a-z0-9]{64})\.log$`

var defaultTagRE = regexp.MustCompile(defaultTagRegex)

// tagMeta is what the tag tells: the first non-empty capture of each name.
type tagMeta struct {
	pod, namespace, container, dockerID, containerHash string
}

// set records one named capture, as Fluent Bit's cb_results: empty
// captures and unknown names are ignored, and the first value wins.
func (m *tagMeta) set(name, v string) {
	if v == "" {
		return
	}
	var dst *string
	switch name {
	case "pod_name":
		dst = &m.pod
	case "namespace_name":
		dst = &m.namespace
	case "container_name":
		dst = &m.container
	case "docker_id":
		dst = &m.dockerID
	case "container_hash":
		dst = &m.containerHash
	default:
		return
	}
	if *dst == "" {
		*dst = v
	}
}

// tagParser extracts tagMeta from a tag.
type tagParser struct {
	prefix string
	re     *regexp.Regexp // the built-in regex, or nil
	parser plugin.Parser  // regex_parser
}

func (p *tagParser) parse(tag string) (tagMeta, error) {
	var m tagMeta
	// As Fluent Bit, the prefix's length is cut from the tag, whatever
	// the tag starts with.
	if len(p.prefix)+1 >= len(tag) {
		return m, fmt.Errorf("tag %q is shorter than kube_tag_prefix %q", tag, p.prefix)
	}
	s := tag[len(p.prefix):]
	if p.re != nil {
		idx := p.re.FindStringSubmatchIndex(s)
		if idx == nil {
			return m, fmt.Errorf("tag %q does not match the pod log file pattern <pod>_<namespace>_<container>-<id>.log after kube_tag_prefix %q", tag, p.prefix)
		}
		for i, name := range p.re.SubexpNames() {
			if name != "" && idx[2*i] >= 0 {
				m.set(name, s[idx[2*i]:idx[2*i+1]])
			}
		}
		return m, nil
	}
	_, rec, err := p.parser.Parse([]byte(s))
	if err != nil {
		return m, fmt.Errorf("tag %q does not match regex_parser: %w", tag, err)
	}
	for _, kv := range rec {
		if v, ok := kv.Value.(string); ok {
			m.set(kv.Key, v)
		}
	}
	return m, nil
}

// podJSON is the part of a v1 Pod the filter reads. The maps stay raw so
// they keep the API server's key order and values, as Fluent Bit copies them.
type podJSON struct {
	Metadata struct {
		Name            string          `json:"name"`
		Namespace       string          `json:"namespace"`
		UID             json.RawMessage `json:"uid"`
		Labels          json.RawMessage `json:"labels"`
		Annotations     json.RawMessage `json:"annotations"`
		OwnerReferences json.RawMessage `json:"ownerReferences"`
	} `json:"metadata"`
	Spec struct {
		NodeName json.RawMessage `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		PodIP                 json.RawMessage   `json:"podIP"`
		InitContainerStatuses []containerStatus `json:"initContainerStatuses"`
		ContainerStatuses     []containerStatus `json:"containerStatuses"`
	} `json:"status"`
}

type containerStatus struct {
	Name        string `json:"name"`
	Image       string `json:"image"`
	ImageID     string `json:"imageID"`
	ContainerID string `json:"containerID"`
}

type podListJSON struct {
	Items []json.RawMessage `json:"items"`
}

type namespaceJSON struct {
	Metadata struct {
		Labels      json.RawMessage `json:"labels"`
		Annotations json.RawMessage `json:"annotations"`
	} `json:"metadata"`
}

// findPod picks namespace/pod out of the kubelet's /pods list.
func findPod(list []byte, namespace, pod string) (*podJSON, error) {
	var l podListJSON
	if err := json.Unmarshal(list, &l); err != nil {
		return nil, fmt.Errorf("decoding the kubelet's pod list: %w", err)
	}
	for _, raw := range l.Items {
		var p podJSON
		if err := json.Unmarshal(raw, &p); err != nil {
			continue
		}
		if p.Metadata.Name == pod && p.Metadata.Namespace == namespace {
			return &p, nil
		}
	}
	return nil, nil
}

// triState is an annotation that may be unset.
type triState uint8

const (
	unset triState = iota
	yes
	no
)

// props are the behaviours a pod asks for through fluentbit.io/ annotations.
type props struct {
	stdoutParser, stderrParser         string
	stdoutExclude, stderrExclude       triState
	stdoutParserImpl, stderrParserImpl plugin.Parser
}

// podMeta is what the cache holds per pod and container: the encoded
// value of the record's "kubernetes" key (nil: none) and the pod's props.
type podMeta struct {
	kube  []byte
	props props
}

// metaOptions are the switches that shape the kubernetes map.
type metaOptions struct {
	labels, annotations, ownerReferences bool
	k8sParser, k8sExclude                bool
	parsers                              plugin.Parsers
	warn                                 func(msg string, args ...any)
}

// encodeRaw converts a JSON value to MessagePack as Fluent Bit's
// flb_pack_json does.
func encodeRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	return event.AppendFromJSON(b, raw)
}

// buildPodMeta makes the kubernetes map in Fluent Bit's key order:
// pod_name, namespace_name, pod_id, labels, annotations, ownerReferences,
// host, pod_ip, container_name, docker_id, container_hash, container_image.
// pod is nil when only the tag is known.
func buildPodMeta(tm tagMeta, pod *podJSON, o *metaOptions) (podMeta, error) {
	type kv struct {
		key string
		raw []byte // encoded value
	}
	var fields []kv
	str := func(k, v string) {
		if v != "" {
			fields = append(fields, kv{k, event.AppendString(nil, v)})
		}
	}
	js := func(k string, raw json.RawMessage) error {
		if raw == nil {
			return nil
		}
		b, err := encodeRaw(nil, raw)
		if err != nil {
			return fmt.Errorf("pod %s/%s: %s: %w", tm.namespace, tm.pod, k, err)
		}
		fields = append(fields, kv{k, b})
		return nil
	}
	str("pod_name", tm.pod)
	str("namespace_name", tm.namespace)
	var pr props
	dockerID, hash, image := tm.dockerID, tm.containerHash, ""
	if pod != nil {
		md := &pod.Metadata
		if err := js("pod_id", md.UID); err != nil {
			return podMeta{}, err
		}
		if o.labels {
			if err := js("labels", md.Labels); err != nil {
				return podMeta{}, err
			}
		}
		if o.annotations {
			if err := js("annotations", md.Annotations); err != nil {
				return podMeta{}, err
			}
		}
		if o.ownerReferences {
			if err := js("ownerReferences", md.OwnerReferences); err != nil {
				return podMeta{}, err
			}
		}
		if err := js("host", pod.Spec.NodeName); err != nil {
			return podMeta{}, err
		}
		if err := js("pod_ip", pod.Status.PodIP); err != nil {
			return podMeta{}, err
		}
		if tm.container != "" {
			for _, list := range [][]containerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
				for _, cs := range list {
					if cs.Name != tm.container {
						continue
					}
					if dockerID == "" {
						dockerID = extractHash(cs.ContainerID)
					}
					if hash == "" {
						hash = extractHash(cs.ImageID)
					}
					image = cs.Image
				}
			}
		}
		if md.Annotations != nil {
			ann, err := event.MapFromJSON(md.Annotations)
			if err == nil {
				pr = o.props(tm, ann)
			}
		}
	}
	str("container_name", tm.container)
	str("docker_id", dockerID)
	str("container_hash", hash)
	str("container_image", image)
	b := event.AppendMapHeader(nil, len(fields))
	for _, f := range fields {
		b = event.AppendString(b, f.key)
		b = append(b, f.raw...)
	}
	return podMeta{kube: b, props: pr}, nil
}

// extractHash is Fluent Bit's extract_hash: "docker://ID" gives ID,
// "docker-pullable://img@sha256:H" gives img@sha256:H, and a value whose
// colon is not followed by a slash ("sha256:H") is kept whole.
func extractHash(s string) string {
	if len(s) <= 1 {
		return ""
	}
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return ""
	}
	j := colon
	for j+1 < len(s) && s[j+1] == '/' {
		j++
	}
	if j == colon {
		return s
	}
	return s[j+1:]
}

// props reads the fluentbit.io/ annotations, in the forms
// parser|exclude[_stdout|_stderr][-container]. A container-specific one
// overrides the pod-wide one whatever their order.
func (o *metaOptions) props(tm tagMeta, ann event.Map) props {
	var p props
	for _, kv := range ann {
		name, ok := strings.CutPrefix(kv.Key, "fluentbit.io/")
		if !ok || name == "" {
			continue
		}
		val, _ := kv.Value.(string)
		o.setProp(&p, tm, name, val)
	}
	return p
}

func (o *metaOptions) setProp(p *props, tm tagMeta, name, val string) {
	warn := func(msg string) {
		o.warn("kubernetes: "+msg, "annotation", "fluentbit.io/"+name, "namespace", tm.namespace, "pod", tm.pod)
	}
	isParser := false
	rest := ""
	switch {
	case strings.HasPrefix(name, "parser"):
		isParser, rest = true, name[len("parser"):]
	case strings.HasPrefix(name, "exclude"):
		rest = name[len("exclude"):]
	default:
		warn("unknown annotation")
		return
	}
	stdout, stderr := true, true
	if r, ok := strings.CutPrefix(rest, "_"); ok {
		switch {
		case strings.HasPrefix(r, "stdout"):
			stderr, rest = false, r[len("stdout"):]
		case strings.HasPrefix(r, "stderr"):
			stdout, rest = false, r[len("stderr"):]
		default:
			warn("invalid stream in annotation")
			return
		}
	}
	specific := false
	if r, ok := strings.CutPrefix(rest, "-"); ok {
		if r == "" {
			warn("invalid container in annotation")
			return
		}
		if r != tm.container {
			return // for another container of the pod
		}
		specific, rest = true, ""
	}
	if rest != "" {
		warn("invalid annotation")
		return
	}
	if isParser {
		if !o.k8sParser {
			warn("annotation not allowed (k8s-logging.parser is off)")
			return
		}
		var ps plugin.Parser
		found := false
		if o.parsers != nil {
			ps, found = o.parsers.Lookup(val)
		}
		if !found {
			o.warn("kubernetes: annotation parser not found", "parser", val, "namespace", tm.namespace, "pod", tm.pod, "container", tm.container)
			return
		}
		if stdout && (specific || p.stdoutParser == "") {
			p.stdoutParser, p.stdoutParserImpl = val, ps
		}
		if stderr && (specific || p.stderrParser == "") {
			p.stderrParser, p.stderrParserImpl = val, ps
		}
		return
	}
	if !o.k8sExclude {
		warn("annotation not allowed (k8s-logging.exclude is off)")
		return
	}
	v := no
	if b, err := config.ParseBool(val); err == nil && b {
		v = yes
	}
	if stdout && (specific || p.stdoutExclude == unset) {
		p.stdoutExclude = v
	}
	if stderr && (specific || p.stderrExclude == unset) {
		p.stderrExclude = v
	}
}

// buildNamespaceMeta makes the kubernetes_namespace map: name, then labels
// and annotations as switched on.
func buildNamespaceMeta(name string, ns *namespaceJSON, labels, annotations bool) ([]byte, error) {
	n := 1
	var lb, ab []byte
	var err error
	if labels && ns.Metadata.Labels != nil {
		if lb, err = encodeRaw(nil, ns.Metadata.Labels); err != nil {
			return nil, fmt.Errorf("namespace %s: labels: %w", name, err)
		}
		n++
	}
	if annotations && ns.Metadata.Annotations != nil {
		if ab, err = encodeRaw(nil, ns.Metadata.Annotations); err != nil {
			return nil, fmt.Errorf("namespace %s: annotations: %w", name, err)
		}
		n++
	}
	b := event.AppendMapHeader(nil, n)
	b = event.AppendString(b, "name")
	b = event.AppendString(b, name)
	if lb != nil {
		b = append(event.AppendString(b, "labels"), lb...)
	}
	if ab != nil {
		b = append(event.AppendString(b, "annotations"), ab...)
	}
	return b, nil
}
