package vivo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/event"
)

func TestV1ChunkFormat(t *testing.T) {
	e := newEnv(t)
	data, n := logs(`{"message":"vivo"}`)
	e.publish("logs", "dummy.logs", "dummy.0", data, n)
	data, n = logs(`{"a":1}`, `{"b":"ż"}`)
	e.publish("logs", "app", "my_alias", data, n)
	res := e.get("/api/v1/logs")
	want := []string{
		`{"source_type":"dummy","source_name":"dummy.0","tag":"dummy.logs","records":[[[1679416945459254000,{}],{"message":"vivo"}]]}`,
		`{"source_type":"my_alias","source_name":"my_alias","tag":"app","records":[[[1679416945459254000,{}],{"a":1}],[[1679416945959254000,{}],{"b":"\u017c"}]]}`,
	}
	if got := lines(res.body); !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", res.body, strings.Join(want, "\n"))
	}
	for _, l := range lines(res.body) {
		if !json.Valid([]byte(l)) {
			t.Errorf("not JSON: %s", l)
		}
	}
	if start, end, next := res.ids(); start != "0" || end != "1" || next != "2" {
		t.Errorf("ids %s %s %s", start, end, next)
	}
}

func groupStart(meta, attrs event.Map) event.Event {
	return event.Event{Time: event.Time{Sec: event.GroupStartSec}, Meta: meta, Body: attrs}
}

func groupEnd() event.Event { return event.Event{Time: event.Time{Sec: event.GroupEndSec}} }

func record(sec int64, body event.Map) event.Event {
	return event.Event{Time: event.Time{Sec: sec}, Body: body}
}

func encode(evs ...event.Event) ([]byte, int) {
	var b []byte
	n := 0
	for _, ev := range evs {
		b = ev.AppendMsgpack(b)
		if ev.Kind() == event.KindRecord {
			n++
		}
	}
	return b, n
}

func TestV1Groups(t *testing.T) {
	e := newEnv(t)
	otlpMeta := event.Map{kv("schema", "otlp"), kv("resource_id", int64(0))}
	otlpAttrs := event.Map{kv("resource", event.Map{kv("attributes", event.Map{kv("service.name", "shop")})}), kv("scope", event.Map{kv("name", "lib")})}
	data, n := encode(groupStart(otlpMeta, otlpAttrs), record(1, event.Map{kv("m", "a")}), record(2, event.Map{kv("m", "b")}), groupEnd())
	e.publish("logs", "otel", "opentelemetry.0", data, n)
	data, n = encode(groupStart(event.Map{kv("k", "v")}, event.Map{kv("g", true)}), record(3, event.Map{kv("m", "c")}), groupEnd())
	e.publish("logs", "grp", "forward.1", data, n)
	data, n = encode(groupStart(event.Map{kv("k", 1)}, nil), record(4, event.Map{kv("m", "d")}), groupEnd(),
		groupStart(event.Map{kv("k", 2)}, nil), record(5, event.Map{kv("m", "e")}), groupEnd())
	e.publish("logs", "mixed", "forward.1", data, n)
	data, n = encode(record(6, event.Map{kv("m", "f")}), groupStart(event.Map{kv("k", 3)}, nil), record(7, event.Map{kv("m", "g")}), groupEnd())
	e.publish("logs", "half", "forward.1", data, n)
	got := lines(e.get("/api/v1/logs").body)
	want := []string{
		`{"source_type":"opentelemetry","source_name":"opentelemetry.0","tag":"otel","records":[[[1000000000,{}],{"m":"a"}],[[2000000000,{}],{"m":"b"}]],"otlp":{"resource":{"attributes":{"service.name":"shop"}},"scope":{"name":"lib"}}}`,
		`{"source_type":"forward","source_name":"forward.1","tag":"grp","records":[[[3000000000,{}],{"m":"c"}]],"flb_group":{"metadata":{"k":"v"},"body":{"g":true}}}`,
		`{"source_type":"forward","source_name":"forward.1","tag":"mixed","records":[[[4000000000,{}],{"m":"d"}],[[5000000000,{}],{"m":"e"}]]}`,
		`{"source_type":"forward","source_name":"forward.1","tag":"half","records":[[[6000000000,{}],{"m":"f"}],[[7000000000,{}],{"m":"g"}]]}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The documented API shows the records only.
	seed := lines(e.get("/logs").body)
	if len(seed) != 7 || seed[0] != `[[1000000000,{"_tag":"otel"}],{"m":"a"}]` {
		t.Errorf("seed rendering of grouped chunks: %q", seed)
	}
}

// Query quirks of stream_get_query_properties: substring search, atol,
// defaults -1, to=0 meaning no upper bound, negative limit unlimited.
func TestV1QueryQuirks(t *testing.T) {
	e := newEnv(t)
	for i := range 6 {
		e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
	}
	cases := []struct {
		query      string
		start, end string
	}{
		{"", "0", "5"},
		{"?to=0", "0", "5"}, // 0 = no upper bound
		{"?from=2&to=0", "2", "5"},
		{"?to=3", "0", "3"},
		{"?to=-1", "0", "5"},
		{"?to=-2", "", ""}, // every id is above it
		{"?from=-7", "0", "5"},
		{"?from=abc", "0", "5"}, // atol("abc") = 0
		{"?from=3abc", "3", "5"},
		{"?from=%203", "0", "5"}, // raw query: "%" stops atol
		{"?from=+4", "4", "5"},
		{"?auto=2", "0", "2"},    // "to=" found inside "auto="
		{"?xfrom=4", "4", "5"},   // likewise
		{"?limit=abc", "0", "5"}, // 0 = unlimited
		{"?limit=-3", "0", "5"},  // negative = unlimited
		{"?limit=2&from=1", "1", "2"},
		{"?from=1&to=3&limit=1", "1", "1"},
		{"?from=6", "", ""},
		{"?from=99999999999999999999999", "", ""}, // clamps to LONG_MAX
		{"?to=99999999999999999999999", "0", "5"},
		{"?limit=99999999999999999999999", "0", "5"},
		{"?from=-99999999999999999999999", "0", "5"},
		{"?to=-99999999999999999999999", "", ""},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			res := e.get("/api/v1/logs" + c.query)
			if res.status != http.StatusOK {
				t.Fatalf("status %d", res.status)
			}
			start, end, next := res.ids()
			if start != c.start || end != c.end || next != "6" {
				t.Errorf("start,end,next = %q,%q,%q want %q,%q,6", start, end, next, c.start, c.end)
			}
			if c.start == "" && (res.body != "" || res.header.Get("Content-Length") != "0") {
				t.Errorf("empty result: body %q, content-length %q", res.body, res.header.Get("Content-Length"))
			}
			if c.start != "" {
				if got, want := len(lines(res.body)), atoi(t, c.end)-atoi(t, c.start)+1; got != want {
					t.Errorf("%d chunks, want %d", got, want)
				}
			}
		})
	}
}

// Upstream's HTTP server lowercases every header name it sets.
func TestV1LowercaseHeadersAndPaths(t *testing.T) {
	e := newEnv(t, "http_cors_allow_origin", "https://app.example")
	e.publishLogs("app", `{"a":1}`)
	for _, path := range []string{"/api/v1/logs", "/api/v1/metrics", "/api/v1/logs?from=5", "/", "/api/v1/internal/metrics"} {
		head, _ := e.raw("GET", path)
		for _, name := range headerNames(head) {
			switch name {
			case "Content-Length", "Transfer-Encoding", "Connection": // framing: Go's server
				continue
			}
			if name != strings.ToLower(name) {
				t.Errorf("%s: header %q is not lowercase", path, name)
			}
		}
	}
	head, body := e.raw("GET", "/")
	if head[0] != "HTTP/1.1 200 OK" || body != "Fluent Bit Vivo Exporter\n" {
		t.Errorf("/: %q %q", head[0], body)
	}
	if _, ok := rawHeader(head, "content-type"); ok {
		t.Error("/ has a content-type")
	}
	if v, _ := rawHeader(head, "Content-Length"); v != "25" {
		t.Errorf("/ content-length %q", v)
	}
	for _, p := range []string{"/api/v1/logs/", "/logs/", "/api/v1", "/api/v2/logs", "/LOGS", "/favicon.ico", "/api/v1/internal/metrics/"} {
		if res := e.get(p); res.status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, res.status)
		}
	}
	// any method is served, as upstream
	req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/logs", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("vivo-stream-start-id") != "0" {
		t.Errorf("POST: %d %v", res.StatusCode, res.Header)
	}
}

func TestInternalMetrics(t *testing.T) {
	e := newEnv(t)
	e.publishLogs("app", `{"a":1}`)
	e.get("/api/v1/logs")
	res := e.get("/api/v1/internal/metrics")
	if res.status != 200 || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", res.status, res.header)
	}
	var doc struct {
		ResourceMetrics []struct {
			ScopeMetrics []struct {
				Metrics []struct {
					Name  string
					Gauge *struct {
						DataPoints []struct {
							AsDouble   float64
							Attributes []struct {
								Key   string
								Value struct{ StringValue string }
							}
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(res.body), &doc); err != nil {
		t.Fatalf("%v: %s", err, res.body)
	}
	found := false
	for _, m := range doc.ResourceMetrics[0].ScopeMetrics[0].Metrics {
		if m.Name == "vivo_stream_next_id" {
			for _, dp := range m.Gauge.DataPoints {
				if dp.Attributes[0].Value.StringValue == "logs" && dp.AsDouble == 1 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("vivo_stream_next_id{signal=logs}=1 not in %s", res.body)
	}
}
