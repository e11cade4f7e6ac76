package vivo

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The seed document's example: dummy events tagged "events", chunk 1
// holding two events.
func seedStream(e *env) {
	e.publishLogs("events", `{"message":"dummy"}`)
	e.publishLogs("events", `{"message":"dummy"}`, `{"message":"dummy"}`)
	e.publishLogs("events", `{"message":"dummy"}`, `{"message":"dummy"}`)
	e.publishLogs("events", `{"message":"dummy"}`, `{"message":"dummy"}`)
}

// curl -i http://127.0.0.1:2025/logs
func TestSeedCurlAll(t *testing.T) {
	e := newEnv(t)
	seedStream(e)
	head, body := e.raw("GET", "/logs")
	if head[0] != "HTTP/1.1 200 OK" {
		t.Fatalf("status line %q", head[0])
	}
	for name, want := range map[string]string{
		"Transfer-Encoding":    "chunked",
		"Content-Type":         "application/json",
		"Vivo-Stream-Start-ID": "0",
		"Vivo-Stream-End-ID":   "3",
	} {
		if got, ok := rawHeader(head, name); !ok || got != want {
			t.Errorf("header %s = %q (present %v), want %q; head:\n%s", name, got, ok, want, strings.Join(head, "\n"))
		}
	}
	res := e.get("/logs")
	got := lines(res.body)
	if len(got) != 7 {
		t.Fatalf("want 7 lines (one per event), got %d:\n%s", len(got), res.body)
	}
	if got[0] != `[[1679416945459254000,{"_tag":"events"}],{"message":"dummy"}]` {
		t.Errorf("line format: %s", got[0])
	}
	if got[2] != `[[1679416945959254000,{"_tag":"events"}],{"message":"dummy"}]` {
		t.Errorf("second event of chunk 1: %s", got[2])
	}
	if !strings.Contains(body, `{"_tag":"events"}`) {
		t.Errorf("raw body (chunked) lacks the events: %q", body)
	}
}

// curl -i "http://127.0.0.1:2025/logs?from=1&to=3&limit=1"
func TestSeedCurlRange(t *testing.T) {
	e := newEnv(t)
	seedStream(e)
	head, _ := e.raw("GET", "/logs?from=1&to=3&limit=1")
	for name, want := range map[string]string{
		"Transfer-Encoding": "chunked", "Content-Type": "application/json",
		"Vivo-Stream-Start-ID": "1", "Vivo-Stream-End-ID": "1",
	} {
		if got, _ := rawHeader(head, name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	res := e.get("/logs?from=1&to=3&limit=1")
	want := []string{
		`[[1679416945459254000,{"_tag":"events"}],{"message":"dummy"}]`,
		`[[1679416945959254000,{"_tag":"events"}],{"message":"dummy"}]`,
	}
	if got := lines(res.body); !slices.Equal(got, want) {
		t.Errorf("body:\n%s\nwant:\n%s", res.body, strings.Join(want, "\n"))
	}
}

// Event metadata stays beside _tag.
func TestSeedLogsKeepMetadata(t *testing.T) {
	e := newEnv(t)
	data, _ := logs(`{"log":"x"}`)
	// rebuild with metadata
	ev := mustEvent(t, data)
	ev.Meta = append(ev.Meta, kv("trace_id", "abc"))
	e.publish("logs", "app", "tail.0", ev.AppendMsgpack(nil), 1)
	res := e.get("/logs")
	if want := `[[1679416945459254000,{"_tag":"app","trace_id":"abc"}],{"log":"x"}]` + "\n"; res.body != want {
		t.Errorf("got %q want %q", res.body, want)
	}
}

// from/to/limit as the seed documents them: ids start at 0 and only grow,
// a missing from id gives the next one, a to id not found gives the whole
// stream (from from), limit counts chunks, 0 = everything. Values that are
// not non-negative integers are ignored.
func TestSeedRanges(t *testing.T) {
	e := newEnv(t, "stream_queue_size", "0")
	for i := range 10 {
		e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
	}
	// Evict ids 0..2 so that "not found" below the stream happens too.
	purgeBefore(t, e, "logs", 4)
	cases := []struct {
		query      string
		start, end string // "" = empty result
	}{
		{"", "3", "9"},
		{"?from=0", "3", "9"}, // missing id: the next one
		{"?from=5", "5", "9"},
		{"?from=9", "9", "9"},
		{"?from=10", "", ""},
		{"?from=5&to=7", "5", "7"},
		{"?to=7", "3", "7"},
		{"?to=1", "3", "9"},  // id 1 not found (evicted): whole stream
		{"?to=42", "3", "9"}, // not found (future): whole stream
		{"?from=6&to=1", "6", "9"},
		{"?from=7&to=5", "", ""}, // to found, below from
		{"?limit=2", "3", "4"},
		{"?limit=0", "3", "9"},
		{"?from=4&limit=3", "4", "6"},
		{"?from=4&to=8&limit=10", "4", "8"},
		{"?from=4&to=8&limit=2", "4", "5"},
		{"?from=abc", "3", "9"},
		{"?from=-4", "3", "9"},
		{"?to=-1", "3", "9"},
		{"?to=x5", "3", "9"},
		{"?limit=-1", "3", "9"},
		{"?limit=1.5", "3", "9"},
		{"?from=99999999999999999999999", "3", "9"},
		{"?from=9223372036854775807", "", ""},
		{"?to=9223372036854775807", "3", "9"},
		{"?limit=9223372036854775807", "3", "9"},
		{"?from=%zz", "3", "9"},
		{"?from=5&from=7", "5", "9"}, // first value
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			res := e.get("/logs" + c.query)
			if res.status != http.StatusOK {
				t.Fatalf("status %d", res.status)
			}
			start, end, next := res.ids()
			if start != c.start || end != c.end {
				t.Errorf("start,end = %q,%q want %q,%q", start, end, c.start, c.end)
			}
			if next != "10" {
				t.Errorf("next id %q", next)
			}
			if res.header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", res.header.Get("Content-Type"))
			}
			if c.start == "" {
				if res.body != "" {
					t.Errorf("empty result has a body: %q", res.body)
				}
				return
			}
			n := atoi(t, c.end) - atoi(t, c.start) + 1
			if got := len(lines(res.body)); got != n {
				t.Errorf("%d lines, want %d", got, n)
			}
			first := fmt.Sprintf(`{"n":%s}]`, c.start)
			if !strings.HasSuffix(lines(res.body)[0], first) {
				t.Errorf("first line %s, want chunk %s", lines(res.body)[0], c.start)
			}
		})
	}
}

func TestSeedEndpointsPerSignal(t *testing.T) {
	e := newEnv(t)
	e.publishLogs("app", `{"a":1}`)
	for _, p := range []string{"/metrics", "/traces"} {
		res := e.get(p)
		if res.status != 200 || res.body != "" {
			t.Errorf("%s: %d %q", p, res.status, res.body)
		}
		if _, _, next := res.ids(); next != "0" {
			t.Errorf("%s next id %q", p, next)
		}
	}
}
