package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

// Service is the [SERVICE] section with Fluent Bit's and Floe's defaults applied.
type Service struct {
	Flush       time.Duration
	Grace       time.Duration
	LogLevel    string
	LogFormat   string
	LogFile     string
	HTTPServer  bool
	HTTPListen  string
	HTTPPort    string
	HealthCheck bool
	Pprof       bool // http.pprof: /debug/pprof/ on the HTTP server
	// MemorySoftLimit: memory.soft_limit, the floor of the Go heap's soft
	// limit (internal/memlimit); 0 = Go's default pacing.
	MemorySoftLimit int64
	Health          telemetry.HealthOptions
	HotReload       bool

	StoragePath string
	// Compression: storage.compression, what chunk.SetCompression is given.
	Compression       string
	StorageTotalLimit int64 // FLOE_IN byte limit
	MaxFileStore      int64 // storage.max_file_store: the embedded server's JetStream file-store limit
	Replicas          int
	DedupWindow       time.Duration

	NATS          jsx.ConnectOptions
	NATSListen    string
	ServerName    string
	ClusterName   string
	ClusterListen string
	Routes        []string

	SchedulerBase time.Duration
	SchedulerCap  time.Duration
	JSON          event.JSONOptions
	ParsersFiles  []string
	PluginsFile   string
	FilterWorkers int
	RouterWorkers int
	Ordered       bool          // ordering per_tag
	AckWait       time.Duration // nats.ack_wait
	// Fuse: filter and router in one process hand chunks over in memory,
	// without the FLOE_FILTERED hop.
	Fuse bool
}

// serviceKeys lists every [SERVICE] key Floe accepts: Fluent Bit's (some
// accepted for compatibility and not used) and Floe's own.
var serviceKeys = []plugin.Key{
	{Name: "flush", Type: plugin.Seconds, Default: "1"},
	{Name: "grace", Type: plugin.Seconds, Default: "5"},
	{Name: "daemon", Type: plugin.Bool, Default: "off", Desc: "accepted; Floe never forks (run it under a supervisor)"},
	{Name: "log_level", Default: "info", Enum: []string{"off", "error", "warn", "warning", "info", "debug", "trace"}},
	{Name: "log_file"},
	{Name: "log_format", Default: "text", Enum: []string{"text", "json"}},
	{Name: "parsers_file", Multi: true},
	{Name: "plugins_file"},
	{Name: "streams_file"},
	{Name: "http_server", Type: plugin.Bool, Default: "off"},
	{Name: "http_listen", Default: "0.0.0.0"},
	{Name: "http_port", Type: plugin.Int, Default: "2020"},
	{Name: "health_check", Type: plugin.Bool, Default: "off"},
	{Name: "http.pprof", Type: plugin.Bool, Default: "off", Desc: "Floe: serve Go's pprof profiles under /debug/pprof/ on the HTTP server"},
	{Name: "memory.soft_limit", Type: plugin.Size, Default: "0", Desc: "Floe: collect garbage early enough to keep the Go heap near this size, raised automatically above 1.5x what is live; 0 leaves Go's default pacing (GOMEMLIMIT in the environment overrides it)"},
	{Name: "hc_errors_count", Type: plugin.Int, Default: "5"},
	{Name: "hc_retry_failure_count", Type: plugin.Int, Default: "5"},
	{Name: "hc_period", Type: plugin.Int, Default: "60"},
	{Name: "hot_reload", Type: plugin.Bool, Default: "off"},
	{Name: "storage.path"},
	{Name: "storage.compression", Enum: []string{chunk.EncodingS2, chunk.EncodingNone}, Default: chunk.EncodingS2, Desc: "Floe: how the chunks this process publishes are compressed in JetStream and between stages (s2: S2, several times smaller for logs at GB/s; none); every stage reads both"},
	{Name: "storage.sync", Enum: []string{"normal", "full"}, Default: "normal"},
	{Name: "storage.checksum", Type: plugin.Bool, Default: "off"},
	{Name: "storage.metrics", Type: plugin.Bool, Default: "on"},
	{Name: "storage.backlog.mem_limit", Type: plugin.Size, Default: "100M"},
	{Name: "storage.max_chunks_up", Type: plugin.Int, Default: "128"},
	{Name: "storage.delete_irrecoverable_chunks", Type: plugin.Bool},
	{Name: "storage.total_limit_size", Type: plugin.Size, Desc: "Floe: byte limit of FLOE_IN"},
	{Name: "storage.max_file_store", Type: plugin.Size, Desc: "Floe: file-store limit of the embedded server; FLOE_IN and FLOE_FILTERED get at most a quarter each"},
	{Name: "storage.replicas", Type: plugin.Int, Default: "1", Enum: []string{"1", "3"}},
	{Name: "storage.dedup_window", Type: plugin.Seconds, Default: "120"},
	{Name: "storage.type"},
	{Name: "storage.inherit", Type: plugin.Bool},
	{Name: "storage.keep.rejected", Type: plugin.Bool},
	{Name: "storage.rejected.path"},
	{Name: "scheduler.base", Type: plugin.Seconds, Default: "5"},
	{Name: "scheduler.cap", Type: plugin.Seconds, Default: "2000"},
	{Name: "json.escape_unicode", Type: plugin.Bool, Default: "on"},
	{Name: "json.convert_nan_to_null", Type: plugin.Bool, Default: "off"},
	{Name: "coro_stack_size", Type: plugin.Int},
	{Name: "dns.mode"},
	{Name: "dns.resolver"},
	{Name: "dns.prefer_ipv4", Type: plugin.Bool},
	{Name: "enable_chunk_trace", Type: plugin.Bool},
	{Name: "nats.url"},
	{Name: "nats.creds"},
	{Name: "nats.nkey"},
	{Name: "nats.user"},
	{Name: "nats.password"},
	{Name: "nats.token"},
	{Name: "nats.tls.ca_file"},
	{Name: "nats.tls.crt_file"},
	{Name: "nats.tls.key_file"},
	{Name: "nats.listen", Default: "127.0.0.1:4222"},
	{Name: "nats.server_name"},
	{Name: "nats.cluster.name", Default: "floe"},
	{Name: "nats.cluster.listen"},
	{Name: "nats.cluster.routes", Multi: true, Desc: "comma separated nats-route://host:port; may repeat"},
	{Name: "nats.ack_wait", Type: plugin.Seconds, Default: "10", Desc: "Floe: how long a stage may hold a chunk without acknowledging it before JetStream hands it to another replica (long work sends progress, so only a stalled or killed stage waits this long)"},
	{Name: "ordering", Default: "none", Enum: []string{"none", "per_tag"}, Desc: "per_tag: chunks of a tag reach the outputs in the order they were ingested"},
	{Name: "filter.workers", Type: plugin.Int, Default: "2"},
	{Name: "router.workers", Type: plugin.Int, Default: "2"},
	{Name: "fuse", Type: plugin.Bool, Default: "on", Desc: "Floe: when filter and router run in one process, filtered chunks go straight to the output streams, skipping FLOE_FILTERED; off sends them through it (debugging)"},
}

func serviceKey(name string) (plugin.Key, bool) {
	name = strings.ToLower(name)
	for _, k := range serviceKeys {
		if k.Name == name {
			return k, true
		}
	}
	return plugin.Key{}, false
}

func validateService(s *config.Section) config.ErrorList {
	var errs config.ErrorList
	for _, p := range s.Props {
		k, ok := serviceKey(p.Key)
		if !ok {
			errs = append(errs, &config.Error{File: p.File, Line: p.Line, Key: p.Key, Msg: "unknown [SERVICE] key"})
			continue
		}
		if err := plugin.CheckValue(k, p.Value); err != nil {
			errs = append(errs, &config.Error{File: p.File, Line: p.Line, Key: p.Key, Msg: err.Error()})
			continue
		}
		if k.Name == "nats.ack_wait" {
			// keepAlive sends progress every third of it; under a second a busy
			// stage could miss a beat and see its chunk handed to another replica.
			if v, err := config.ParseSeconds(p.Value); err == nil && v < 1 {
				errs = append(errs, &config.Error{File: p.File, Line: p.Line, Key: p.Key, Msg: "at least 1 second"})
			}
		}
		if k.Name == "storage.max_file_store" {
			if n, err := config.ParseSize(p.Value); err == nil && n < minFileStore {
				errs = append(errs, &config.Error{File: p.File, Line: p.Line, Key: p.Key,
					Msg: fmt.Sprintf("%d bytes is too small: at least 4M, so that a quarter of it holds a whole chunk", n)})
			}
		}
	}
	return errs
}

func svcString(s *config.Section, key string) string {
	if v, ok := s.Get(key); ok {
		return v
	}
	k, _ := serviceKey(key)
	return k.Default
}

func svcSeconds(s *config.Section, key string) time.Duration {
	v, _ := config.ParseSeconds(svcString(s, key))
	return time.Duration(v * float64(time.Second))
}

func svcBool(s *config.Section, key string) bool {
	v, _ := config.ParseBool(svcString(s, key))
	return v
}

func svcInt(s *config.Section, key string) int {
	v, _ := strconv.Atoi(strings.TrimSpace(svcString(s, key)))
	return v
}

// ParseService applies defaults to a validated [SERVICE] section.
func ParseService(s *config.Section) (*Service, error) {
	if errs := validateService(s); len(errs) > 0 {
		return nil, errs
	}
	svc := &Service{
		Flush:       svcSeconds(s, "flush"),
		Grace:       svcSeconds(s, "grace"),
		LogLevel:    strings.ToLower(svcString(s, "log_level")),
		LogFormat:   strings.ToLower(svcString(s, "log_format")),
		LogFile:     svcString(s, "log_file"),
		HTTPServer:  svcBool(s, "http_server"),
		HTTPListen:  svcString(s, "http_listen"),
		HTTPPort:    svcString(s, "http_port"),
		HealthCheck: svcBool(s, "health_check"),
		Pprof:       svcBool(s, "http.pprof"),
		Health: telemetry.HealthOptions{
			ErrorsCount:       svcInt(s, "hc_errors_count"),
			RetryFailureCount: svcInt(s, "hc_retry_failure_count"),
			Period:            time.Duration(svcInt(s, "hc_period")) * time.Second,
		},
		HotReload:     svcBool(s, "hot_reload"),
		StoragePath:   svcString(s, "storage.path"),
		Compression:   svcString(s, "storage.compression"),
		Replicas:      svcInt(s, "storage.replicas"),
		DedupWindow:   svcSeconds(s, "storage.dedup_window"),
		NATSListen:    svcString(s, "nats.listen"),
		ServerName:    svcString(s, "nats.server_name"),
		ClusterName:   svcString(s, "nats.cluster.name"),
		ClusterListen: svcString(s, "nats.cluster.listen"),
		Routes:        splitList(s.GetAll("nats.cluster.routes")),
		SchedulerBase: svcSeconds(s, "scheduler.base"),
		SchedulerCap:  svcSeconds(s, "scheduler.cap"),
		JSON: event.JSONOptions{
			EscapeUnicode: svcBool(s, "json.escape_unicode"),
			NaNToNull:     svcBool(s, "json.convert_nan_to_null"),
		},
		ParsersFiles:  s.GetAll("parsers_file"),
		PluginsFile:   svcString(s, "plugins_file"),
		FilterWorkers: svcInt(s, "filter.workers"),
		Ordered:       strings.EqualFold(svcString(s, "ordering"), "per_tag"),
		AckWait:       svcSeconds(s, "nats.ack_wait"),
		RouterWorkers: svcInt(s, "router.workers"),
		Fuse:          svcBool(s, "fuse"),
		NATS: jsx.ConnectOptions{
			URL:      svcString(s, "nats.url"),
			Creds:    svcString(s, "nats.creds"),
			NKeySeed: svcString(s, "nats.nkey"),
			User:     svcString(s, "nats.user"),
			Password: svcString(s, "nats.password"),
			Token:    svcString(s, "nats.token"),
			TLSCA:    svcString(s, "nats.tls.ca_file"),
			TLSCert:  svcString(s, "nats.tls.crt_file"),
			TLSKey:   svcString(s, "nats.tls.key_file"),
		},
	}
	if v, ok := s.Get("storage.total_limit_size"); ok {
		n, err := config.ParseSize(v)
		if err != nil {
			return nil, fmt.Errorf("storage.total_limit_size: %w", err)
		}
		svc.StorageTotalLimit = n
	}
	n, err := config.ParseSize(svcString(s, "memory.soft_limit"))
	if err != nil {
		return nil, fmt.Errorf("memory.soft_limit: %w", err)
	}
	svc.MemorySoftLimit = n
	if v, ok := s.Get("storage.max_file_store"); ok {
		n, err := config.ParseSize(v)
		if err != nil {
			return nil, fmt.Errorf("storage.max_file_store: %w", err)
		}
		svc.MaxFileStore = n
	}
	return svc, nil
}

// minFileStore keeps a quarter of storage.max_file_store (FLOE_IN's and
// FLOE_FILTERED's share) above the largest chunk (512 KiB plus headers).
const minFileStore = 4_000_000

// RetryLimit parses an output's retry_limit as Fluent Bit does: N retries,
// no_limits/false/off for unlimited (-1), no_retries for none; anything
// else invalid falls back to 1.
func RetryLimit(v string) (int, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "1":
		return 1, true
	case "no_limits", "false", "off":
		return -1, true
	case "no_retries":
		return 0, true
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 1, false
	}
	return n, true
}

// splitList flattens repeated, comma separated values.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}
