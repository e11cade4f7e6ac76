package vivo

import (
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugin"
)

func props(t *testing.T, kv ...string) *plugin.Props {
	t.Helper()
	sec := &config.Section{Type: config.TypeOutput, File: "t.conf", Line: 1}
	sec.Props = append(sec.Props, config.Prop{Key: "name", Value: Name})
	for i := 0; i+1 < len(kv); i += 2 {
		sec.Props = append(sec.Props, config.Prop{Key: kv[i], Value: kv[i+1]})
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindOutput, sec); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return plugin.NewProps(Spec(), sec)
}

func TestDefaults(t *testing.T) {
	s, err := Parse(props(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{StreamQueueSize: 20000000, Host: "0.0.0.0", Port: 2025, HTTP2: true,
		IdleTimeout: 10 * time.Second, MaxHeaderBytes: 4000000}
	if s != want {
		t.Errorf("defaults %+v, want %+v", s, want)
	}
	if s.Addr() != "0.0.0.0:2025" {
		t.Errorf("addr %s", s.Addr())
	}
}

func TestKeys(t *testing.T) {
	s, err := Parse(props(t, "Empty_Stream_On_Read", "on", "stream_queue_size", "1.5M", "http_cors_allow_origin", "*",
		"host", "127.0.0.1", "port", "3000", "http2", "off", "http_server.idle_timeout", "1m", "buffer_max_size", "64K",
		"http_server.max_connections", "10"))
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{EmptyStreamOnRead: true, StreamQueueSize: 1500000, CORSAllowOrigin: "*", Host: "127.0.0.1", Port: 3000,
		IdleTimeout: time.Minute, MaxHeaderBytes: 64000, MaxConnections: 10}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	for _, bad := range [][]string{{"port", "-1"}, {"port", "65536"}, {"host", "a b"}, {"tls", "on"}} {
		if _, err := Parse(props(t, bad...)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if errs := plugin.NewRegistry().MustAdd(Spec()).ValidateSection(plugin.KindOutput, &config.Section{Type: config.TypeOutput,
		Props: []config.Prop{{Key: "name", Value: Name}, {Key: "stream_queue_size", Value: "lots"}}}); len(errs) != 1 {
		t.Errorf("bad size: %v", errs)
	}
}

func TestSourceType(t *testing.T) {
	for in, want := range map[string]string{
		"dummy.0": "dummy", "tail.12": "tail", "my_alias": "my_alias", "a.b": "a.b", "": "", "x.": "x.", ".3": ".3",
		"fluentbit_metrics.1": "fluentbit_metrics", "web.v2": "web.v2",
	} {
		if got := SourceType(in); got != want {
			t.Errorf("SourceType(%q) = %q, want %q", in, got, want)
		}
	}
}
