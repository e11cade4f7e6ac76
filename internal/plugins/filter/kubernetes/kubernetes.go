// Package kubernetes is Fluent Bit's kubernetes filter
// (plugins/filter_kubernetes): it reads the pod, namespace and container a
// record comes from out of its tag, fetches the pod's metadata from the
// API server (or the kubelet) and appends it to each record under
// "kubernetes", optionally merging a JSON (or parsed) "log" field into the
// record.
//
// As in Fluent Bit:
//   - kube_tag_prefix's length is cut from the tag and the rest is matched
//     with the built-in regex (<pod>_<namespace>_<container>-<id>.log) or
//     with regex_parser's; a tag that does not match leaves the chunk as is;
//   - the "kubernetes" map holds pod_name, namespace_name, pod_id, labels,
//     annotations, ownerReferences (owner_references on), host, pod_ip,
//     container_name, docker_id, container_hash, container_image, in that
//     order; label and annotation maps keep the API server's key order;
//   - namespace_labels / namespace_annotations add "kubernetes_namespace"
//     with name, labels and annotations;
//   - merge_log parses the first "log" field with the pod's
//     fluentbit.io/parser (k8s-logging.parser on), else merge_parser, else
//     as a JSON object, and appends its fields (under merge_log_key when
//     set), trimming trailing newlines of string values (merge_log_trim);
//     keep_log off drops "log" once merged; a parser's time becomes the
//     record's (the current time when the parser found none);
//   - fluentbit.io/exclude (k8s-logging.exclude on) drops a pod's records,
//     per stream and per container with the _stdout/_stderr and -container
//     suffixes;
//   - when the metadata cannot be fetched the records go on without the
//     "kubernetes" key (merge_log still applies).
//
// Floe's differences: the cache is shared by the filter stage's workers and
// concurrent lookups of one pod make one request; a failed lookup is retried
// after a backoff that doubles from one second up to
// kube_meta_negative_cache_ttl, each failure is logged and counted in the
// filter's error metric, and an expired cache entry whose refresh fails is
// kept until the next try; a pod missing from the kubelet's list gets the tag's
// metadata (as Fluent Bit) but is looked up again after the backoff instead
// of being cached; a record without a stream gets the pod's parser when its
// stdout and stderr parsers are the same (upstream compares pointers and so
// never applies it). use_journal and the aws_* keys are not supported.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

// Spec describes the kubernetes filter.
func Spec() *plugin.Spec {
	return &plugin.Spec{
		Kind: plugin.KindFilter,
		Name: "kubernetes",
		Desc: "Filter to append Kubernetes metadata",
		Keys: []plugin.Key{
			{Name: "buffer_size", Type: plugin.Size, Default: "32k", Desc: "largest API server answer read; 0 for no limit"},
			{Name: "kube_url", Default: "https://kubernetes.default.svc:443", Desc: "API server URL"},
			{Name: "kube_ca_file", Default: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", Desc: "CA certificate file"},
			{Name: "kube_ca_path", Desc: "directory of CA certificate files"},
			{Name: "kube_token_file", Default: "/var/run/secrets/kubernetes.io/serviceaccount/token", Desc: "service account token file"},
			{Name: "kube_token_command", Desc: "command printing the token (run with /bin/sh -c)"},
			{Name: "kube_token_ttl", Type: plugin.Seconds, Default: "600", Desc: "read the token again after this long"},
			{Name: "kube_tag_prefix", Default: "kube.var.log.containers.", Desc: "tag prefix put by the tail input"},
			{Name: "kube_namespace_file", Default: "/var/run/secrets/kubernetes.io/serviceaccount/namespace", Desc: "accepted for compatibility; unused"},
			{Name: "kube_meta_preload_cache_dir", Desc: "directory of <namespace>_<pod>.meta pod JSON files read before asking the API server"},
			{Name: "kube_meta_cache_ttl", Type: plugin.Seconds, Default: "0", Desc: "time pod metadata is cached; 0 for as long as it fits"},
			{Name: "kube_meta_namespace_cache_ttl", Type: plugin.Seconds, Default: "900", Desc: "time namespace metadata is cached; 0 for as long as it fits"},
			{Name: "kube_meta_negative_cache_ttl", Type: plugin.Seconds, Default: "60", Desc: "longest wait before a failed lookup is retried (backoff from 1s); 0 retries every chunk"},
			{Name: "kube_meta_io_timeout", Type: plugin.Seconds, Default: "30", Desc: "timeout of one metadata request; 0 for none"},
			{Name: "merge_log", Type: plugin.Bool, Default: "off", Desc: "merge the JSON (or parsed) 'log' field into the record"},
			{Name: "merge_log_key", Desc: "put the merged fields under this key"},
			{Name: "merge_log_trim", Type: plugin.Bool, Default: "on", Desc: "trim trailing newlines of merged string values"},
			{Name: "merge_parser", Desc: "parser for the 'log' field instead of JSON"},
			{Name: "keep_log", Type: plugin.Bool, Default: "on", Desc: "keep 'log' once merged"},
			{Name: "tls.debug", Type: plugin.Int, Default: "0", Desc: "accepted for compatibility; unused"},
			{Name: "tls.verify", Type: plugin.Bool, Default: "on", Desc: "verify the server's certificate chain"},
			{Name: "tls.verify_hostname", Type: plugin.Bool, Default: "off", Desc: "also verify the server's host name"},
			{Name: "tls.vhost", Desc: "TLS server name (SNI)"},
			{Name: "use_journal", Type: plugin.Bool, Default: "off", Desc: "journald records (not supported)"},
			{Name: "cache_use_docker_id", Type: plugin.Bool, Default: "off", Desc: "cache metadata per container id too"},
			{Name: "regex_parser", Desc: "parser extracting pod_name, namespace_name, container_name, docker_id from the tag"},
			{Name: "k8s-logging.parser", Type: plugin.Bool, Default: "off", Desc: "allow pods to suggest a parser (fluentbit.io/parser)"},
			{Name: "k8s-logging.exclude", Type: plugin.Bool, Default: "off", Desc: "allow pods to exclude their logs (fluentbit.io/exclude)"},
			{Name: "labels", Type: plugin.Bool, Default: "on", Desc: "include pod labels"},
			{Name: "annotations", Type: plugin.Bool, Default: "on", Desc: "include pod annotations"},
			{Name: "owner_references", Type: plugin.Bool, Default: "off", Desc: "include pod owner references"},
			{Name: "namespace_labels", Type: plugin.Bool, Default: "off", Desc: "include namespace labels"},
			{Name: "namespace_annotations", Type: plugin.Bool, Default: "off", Desc: "include namespace annotations"},
			{Name: "namespace_metadata_only", Type: plugin.Bool, Default: "off", Desc: "fetch namespace metadata only"},
			{Name: "dummy_meta", Type: plugin.Bool, Default: "off", Desc: "append dummy metadata (tests)"},
			{Name: "dns_retries", Type: plugin.Int, Default: "6", Desc: "accepted for compatibility; Floe does not wait for DNS at start"},
			{Name: "dns_wait_time", Type: plugin.Seconds, Default: "30", Desc: "accepted for compatibility; unused"},
			{Name: "use_tag_for_meta", Type: plugin.Bool, Default: "off", Desc: "take metadata from the tag only, without requests"},
			{Name: "use_kubelet", Type: plugin.Bool, Default: "off", Desc: "get pods from the kubelet's /pods instead of the API server"},
			{Name: "kubelet_host", Default: "127.0.0.1", Desc: "kubelet host"},
			{Name: "kubelet_port", Type: plugin.Int, Default: "10250", Desc: "kubelet port"},
		},
		NewFilter: New,
		Check: func(ctx context.Context, set plugin.Settings, p *plugin.Props) error {
			_, err := newFilter(set, p)
			return err
		},
	}
}

// cacheSize bounds each metadata cache, as Fluent Bit's hash table.
const cacheSize = 8192

// Stats are the filter's counters since it started.
type Stats struct {
	CacheHits  uint64 // chunks whose pod metadata came from the cache
	Requests   uint64 // metadata requests made (pod, namespace, kubelet list)
	Failures   uint64 // requests that failed
	Unenriched uint64 // records passed on without pod metadata because of a failure
}

// Filter is one kubernetes filter instance; safe for concurrent use.
type Filter struct {
	log *slog.Logger

	tags          tagParser
	cacheDockerID bool
	dummy         bool
	tagOnly       bool
	nsOnly        bool
	nsLabels      bool
	nsAnnotations bool
	useKubelet    bool
	preloadDir    string
	opts          metaOptions

	mergeLog    bool
	mergeKey    string
	mergeTrim   bool
	keepLog     bool
	mergeParser plugin.Parser

	api, kubelet *apiClient
	pods         *metaCache[podMeta]
	namespaces   *metaCache[[]byte]
	podLists     *metaCache[[]byte] // the kubelet's /pods, coalesced

	tagWarned sync.Map // tags already warned about (at most 1000)
	tagWarnN  atomic.Int64
	// tagCache memoizes parsed tags: a node has a few hundred log files,
	// each chunk repeats one, and the regex costs more than the rest of
	// a cache hit. Bounded by tagCacheN.
	tagCache  sync.Map // string -> tagMeta
	tagCacheN atomic.Int64

	errors                                   *telemetry.Counter
	hits, requests, failures, unenrichedRecs atomic.Uint64
}

// New builds a kubernetes filter.
func New(_ context.Context, set plugin.Settings, p *plugin.Props) (plugin.Filter, error) {
	return newFilter(set, p)
}

func seconds(p *plugin.Props, key string) time.Duration {
	return time.Duration(p.Seconds(key) * float64(time.Second))
}

func newFilter(set plugin.Settings, p *plugin.Props) (*Filter, error) {
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("filter", set.DisplayName())
	f := &Filter{
		log:           log,
		cacheDockerID: p.Bool("cache_use_docker_id"),
		dummy:         p.Bool("dummy_meta"),
		tagOnly:       p.Bool("use_tag_for_meta"),
		nsOnly:        p.Bool("namespace_metadata_only"),
		nsLabels:      p.Bool("namespace_labels"),
		nsAnnotations: p.Bool("namespace_annotations"),
		useKubelet:    p.Bool("use_kubelet"),
		preloadDir:    p.String("kube_meta_preload_cache_dir"),
		mergeLog:      p.Bool("merge_log"),
		mergeKey:      p.String("merge_log_key"),
		mergeTrim:     p.Bool("merge_log_trim"),
		keepLog:       p.Bool("keep_log"),
		opts: metaOptions{
			labels:          p.Bool("labels"),
			annotations:     p.Bool("annotations"),
			ownerReferences: p.Bool("owner_references"),
			k8sParser:       p.Bool("k8s-logging.parser"),
			k8sExclude:      p.Bool("k8s-logging.exclude"),
			parsers:         set.Parsers,
		},
	}
	f.opts.warn = log.Warn
	if set.Telemetry != nil {
		f.errors = &set.Telemetry.Filter(set.DisplayName()).Errors
	}
	if p.Bool("use_journal") {
		return nil, p.Errorf("use_journal", "use_journal is not supported by Floe's kubernetes filter")
	}
	lookupParser := func(key string) (plugin.Parser, error) {
		name := p.String(key)
		if name == "" {
			return nil, nil
		}
		if set.Parsers != nil {
			if ps, ok := set.Parsers.Lookup(name); ok {
				return ps, nil
			}
		}
		return nil, p.Errorf(key, "parser %q not found", name)
	}
	f.tags.prefix = p.String("kube_tag_prefix")
	rp, err := lookupParser("regex_parser")
	if err != nil {
		return nil, err
	}
	if rp != nil {
		f.tags.parser = rp
	} else {
		f.tags.re = defaultTagRE
	}
	if f.mergeParser, err = lookupParser("merge_parser"); err != nil {
		return nil, err
	}

	negTTL := seconds(p, "kube_meta_negative_cache_ttl")
	f.pods = newMetaCache[podMeta](seconds(p, "kube_meta_cache_ttl"), cacheSize, time.Second, negTTL)
	f.namespaces = newMetaCache[[]byte](seconds(p, "kube_meta_namespace_cache_ttl"), cacheSize, time.Second, negTTL)
	// The kubelet's list answers every pod of the node: reuse it for a
	// moment so a burst of new pods makes one request.
	f.podLists = newMetaCache[[]byte](time.Second, 1, time.Second, negTTL)
	if f.dummy || f.tagOnly {
		return f, nil
	}

	// Network.
	base, err := url.Parse(p.String("kube_url"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, p.Errorf("kube_url", "kube_url %q is not an http:// or https:// URL", p.String("kube_url"))
	}
	tlsOpt := tlsOptions{
		verify:         p.Bool("tls.verify"),
		verifyHostname: p.Bool("tls.verify_hostname"),
		vhost:          p.String("tls.vhost"),
		caFile:         p.String("kube_ca_file"),
		caPath:         p.String("kube_ca_path"),
	}
	needTLS := base.Scheme == "https" || f.useKubelet
	client := newHTTPClient(nil, seconds(p, "kube_meta_io_timeout"))
	if needTLS {
		cfg, warnings, err := tlsOpt.tlsConfig()
		if err != nil {
			key := "kube_ca_file"
			var te *tlsError
			if errors.As(err, &te) {
				key = te.key
			}
			return nil, p.Errorf(key, "%v", err)
		}
		for _, w := range warnings {
			log.Warn("kubernetes: " + w)
		}
		client = newHTTPClient(cfg, seconds(p, "kube_meta_io_timeout"))
	}
	tokens := &tokenSource{
		file:    p.String("kube_token_file"),
		command: p.String("kube_token_command"),
		ttl:     seconds(p, "kube_token_ttl"),
		now:     time.Now,
		warn:    log.Warn,
	}
	maxBody := p.Size("buffer_size")
	f.api = &apiClient{base: base, http: client, token: tokens, maxBody: maxBody}
	if f.useKubelet {
		host := p.String("kubelet_host")
		port := p.Int("kubelet_port")
		if port <= 0 || port > 65535 {
			return nil, p.Errorf("kubelet_port", "kubelet_port %d is not a TCP port", port)
		}
		// The kubelet serves HTTPS only.
		kb := &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))}
		f.kubelet = &apiClient{base: kb, http: client, token: tokens, maxBody: maxBody}
	}
	return f, nil
}

// Stats returns the filter's counters.
func (f *Filter) Stats() Stats {
	return Stats{
		CacheHits:  f.hits.Load(),
		Requests:   f.requests.Load(),
		Failures:   f.failures.Load(),
		Unenriched: f.unenrichedRecs.Load(),
	}
}

// Close releases idle connections.
func (f *Filter) Close(context.Context) error {
	for _, c := range []*apiClient{f.api, f.kubelet} {
		if c != nil {
			c.http.CloseIdleConnections()
		}
	}
	return nil
}

// chunkMeta is what one chunk's records get.
type chunkMeta struct {
	kube, ns []byte // encoded maps, nil when absent
	props    props
	failed   bool // the pod lookup failed: records are counted as unenriched
}

// lookup finds the metadata of a chunk's tag; ok is false when the tag
// tells no pod and the chunk is to be left as is.
func (f *Filter) lookup(ctx context.Context, tag string) (chunkMeta, bool) {
	var cm chunkMeta
	if f.dummy {
		// Fluent Bit's dummy map: the local time as asctime(3) writes it.
		b := event.AppendMapHeader(nil, 1)
		b = event.AppendString(b, "dummy")
		cm.kube = event.AppendString(b, time.Now().Format("Mon Jan _2 15:04:05 2006"))
		return cm, true
	}
	tm, err := f.parseTag(tag)
	if err != nil {
		if _, seen := f.tagWarned.LoadOrStore(tag, true); !seen && f.tagWarnN.Add(1) <= 1000 {
			f.log.Warn("kubernetes: records left without metadata", "error", err)
		}
		return cm, false
	}
	if f.tagOnly {
		pm, _ := buildPodMeta(tm, nil, &f.opts)
		cm.kube = pm.kube
		return cm, true
	}
	if (f.nsLabels || f.nsAnnotations) && tm.namespace != "" {
		ns, _, err := f.namespaces.get(ctx, tm.namespace, func(ctx context.Context) ([]byte, error) {
			return f.fetchNamespace(ctx, tm.namespace)
		})
		if err == nil {
			cm.ns = ns
		}
	}
	if f.nsOnly {
		return cm, true
	}
	if tm.pod == "" || tm.namespace == "" {
		// Fluent Bit has no cache key then and finds nothing.
		return cm, true
	}
	key := tm.namespace + ":" + tm.pod
	if tm.container != "" {
		key += ":" + tm.container
	}
	if f.cacheDockerID && tm.dockerID != "" {
		key += ":" + tm.dockerID
	}
	pm, res, err := f.pods.get(ctx, key, func(ctx context.Context) (podMeta, error) {
		return f.fetchPod(ctx, tm)
	})
	if res == resultHit {
		f.hits.Add(1)
	}
	cm.kube, cm.props = pm.kube, pm.props
	cm.failed = err != nil
	return cm, true
}

// tagCacheMax bounds the parsed-tag memo; past it tags are parsed each time.
const tagCacheMax = 16384

func (f *Filter) parseTag(tag string) (tagMeta, error) {
	if v, ok := f.tagCache.Load(tag); ok {
		return v.(tagMeta), nil
	}
	tm, err := f.tags.parse(tag)
	if err == nil && f.tagCacheN.Add(1) <= tagCacheMax {
		f.tagCache.Store(tag, tm)
	}
	return tm, err
}

// fetchPod gets one pod's metadata from the preload directory, the kubelet
// or the API server. On failure it returns the fallback the records get.
func (f *Filter) fetchPod(ctx context.Context, tm tagMeta) (podMeta, error) {
	if body, ok := f.preloaded(tm.namespace + "_" + tm.pod + ".meta"); ok {
		return f.podFromJSON(tm, body)
	}
	if f.useKubelet {
		list, _, err := f.podLists.get(ctx, "pods", func(ctx context.Context) ([]byte, error) {
			return f.request(ctx, f.kubelet, "/pods")
		})
		if err != nil {
			f.podFailure(tm, err)
			return podMeta{}, err
		}
		pod, err := findPod(list, tm.namespace, tm.pod)
		if err != nil {
			f.podFailure(tm, err)
			return podMeta{}, err
		}
		if pod == nil {
			// Fluent Bit then gives the tag's metadata alone; unlike it,
			// look again later: the pod may be too new for the list.
			pm, _ := buildPodMeta(tm, nil, &f.opts)
			err := fmt.Errorf("pod %s/%s is not in the kubelet's pod list", tm.namespace, tm.pod)
			f.log.Debug("kubernetes: " + err.Error())
			return pm, err
		}
		pm, err := buildPodMeta(tm, pod, &f.opts)
		if err != nil {
			f.podFailure(tm, err)
		}
		return pm, err
	}
	body, err := f.request(ctx, f.api, "/api/v1/namespaces/"+url.PathEscape(tm.namespace)+"/pods/"+url.PathEscape(tm.pod))
	if err != nil {
		f.podFailure(tm, err)
		return podMeta{}, err
	}
	return f.podFromJSON(tm, body)
}

func (f *Filter) podFromJSON(tm tagMeta, body []byte) (podMeta, error) {
	var pod podJSON
	if err := json.Unmarshal(body, &pod); err != nil {
		err = fmt.Errorf("decoding pod %s/%s: %w", tm.namespace, tm.pod, err)
		f.podFailure(tm, err)
		return podMeta{}, err
	}
	pm, err := buildPodMeta(tm, &pod, &f.opts)
	if err != nil {
		f.podFailure(tm, err)
	}
	return pm, err
}

func (f *Filter) podFailure(tm tagMeta, err error) {
	f.log.Warn("kubernetes: could not get metadata for pod; its records pass without it until a later lookup succeeds",
		"namespace", tm.namespace, "pod", tm.pod, "error", err)
}

func (f *Filter) fetchNamespace(ctx context.Context, name string) ([]byte, error) {
	body, ok := f.preloaded(name + ".namespace_meta")
	if !ok {
		var err error
		body, err = f.request(ctx, f.api, "/api/v1/namespaces/"+url.PathEscape(name))
		if err != nil {
			f.log.Warn("kubernetes: could not get namespace metadata", "namespace", name, "error", err)
			return nil, err
		}
	}
	var ns namespaceJSON
	if err := json.Unmarshal(body, &ns); err != nil {
		return nil, fmt.Errorf("decoding namespace %s: %w", name, err)
	}
	return buildNamespaceMeta(name, &ns, f.nsLabels, f.nsAnnotations)
}

// preloaded reads a file of kube_meta_preload_cache_dir.
func (f *Filter) preloaded(name string) ([]byte, bool) {
	if f.preloadDir == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(f.preloadDir, name))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return b, true
}

func (f *Filter) request(ctx context.Context, c *apiClient, path string) ([]byte, error) {
	if c == nil {
		return nil, errors.New("no metadata source configured")
	}
	f.requests.Add(1)
	b, err := c.get(ctx, path)
	if err != nil {
		f.failures.Add(1)
		if f.errors != nil {
			f.errors.Add(1)
		}
	}
	return b, err
}
