package es

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

func openES(t *testing.T, spec *plugin.Spec, s *bulkSink, lines ...string) *Output {
	t.Helper()
	// The test's lines come first: the first value of a key wins.
	cfg := append(append([]string(nil), lines...), s.Config()...)
	out, err := spec.NewOutput(context.Background(), plugin.Settings{Name: spec.Name + ".0"}, plugintest.Props(spec, cfg...))
	if err != nil {
		t.Fatalf("new output: %v", err)
	}
	t.Cleanup(func() { _ = plugin.Close(context.Background(), out) })
	return out.(*Output)
}

func logChunk(id string, bodies ...event.Map) *chunk.Chunk {
	var data []byte
	for i, b := range bodies {
		ev := event.Event{Time: event.Time{Sec: 1700000000 + int64(i), Nsec: 123456789}, Body: b}
		data = ev.AppendMsgpack(data)
	}
	return &chunk.Chunk{ID: id, Tag: "app.log", Type: chunk.Logs, Records: len(bodies), Data: data}
}

func TestBulkRequestShape(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s, "suppress_type_name off", "index logs", "type _doc", "include_tag_key on",
		"path /es/", "pipeline my-pipe")
	c := logChunk("c1", plugintest.KV("message", "hello", "n", 1))
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	reqs := s.reqs()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/es/_bulk" || r.Query != "pipeline=my-pipe" {
		t.Errorf("request to %s?%s, want /es/_bulk?pipeline=my-pipe", r.Path, r.Query)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSuffix(string(r.Raw), "\n"), "\n")
	id, _ := r.Actions[0]["create"]["_id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{24}-0$`).MatchString(id) {
		t.Errorf("_id %q is not the chunk digest and record index", id)
	}
	wantID := id
	want := []string{
		`{"create":{"_index":"logs","_type":"_doc","_id":"` + wantID + `"}}`,
		`{"@timestamp":"2023-11-14T22:13:20.123Z","_flb-key":"app.log","message":"hello","n":1}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("bulk body\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestLogstashFormatAndTimeKey(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, OpenSearchSpec(), s, "logstash_format on", "logstash_prefix app", "logstash_prefix_separator _",
		"logstash_dateformat %Y-%m", "time_key ts", "time_key_format %Y%m%d %H%M%S", "time_key_nanos on")
	c := logChunk("c2", plugintest.KV("message", "a"), plugintest.KV("message", "b", "ts", "own"))
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r := s.reqs()[0]
	for i, a := range r.Actions {
		if idx := a["create"]["_index"]; idx != "app_2023-11" {
			t.Errorf("item %d index %v, want app_2023-11", i, idx)
		}
		if _, ok := a["create"]["_type"]; ok {
			t.Errorf("item %d has _type although suppress_type_name is on", i)
		}
	}
	if got := r.Docs[0]["ts"]; got != "20231114 221320.123456789Z" {
		t.Errorf("time key %v", got)
	}
	// A record with its own time key keeps it (no duplicate field).
	if got := r.Docs[1]["ts"]; got != "own" {
		t.Errorf("record's own ts replaced: %v", got)
	}
	if !strings.Contains(string(r.Raw), `{"message":"b","ts":"own"}`) {
		t.Errorf("second document rendered as %s", r.Raw)
	}
}

func TestLogstashPrefixKey(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s, "logstash_format on", "logstash_prefix_key $kubernetes['ns']")
	c := logChunk("c3", plugintest.KV("kubernetes", plugintest.KV("ns", "prod")), plugintest.KV("x", 1),
		plugintest.KV("kubernetes", plugintest.KV("ns", `we"ird\`)))
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r := s.reqs()[0]
	if got := r.Actions[0]["create"]["_index"]; got != "prod-2023.11.14" {
		t.Errorf("index from prefix key %v", got)
	}
	if got := r.Actions[1]["create"]["_index"]; got != "logstash-2023.11.14" {
		t.Errorf("index without the key %v, want the logstash_prefix", got)
	}
	if got := r.Actions[2]["create"]["_index"]; got != `we"ird\-2023.11.14` {
		t.Errorf("index with characters JSON escapes: %v", got)
	}
}

func TestIDKeyAndGenerateID(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s, "id_key req_id", "write_operation index")
	c := logChunk("c4", plugintest.KV("req_id", "abc", "v", 1), plugintest.KV("req_id", "abc", "v", 2), plugintest.KV("v", 3))
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	docs := s.docsByID()
	if d := docs["fluent-bit\x00abc"]; d == nil || d["v"] != float64(2) {
		t.Errorf("doc abc = %v, want the later record (index overwrites)", d)
	}
	if len(docs) != 2 {
		t.Errorf("%d documents (%v), want abc and the stable id of the record without req_id", len(docs), sortedKeys(docs))
	}

	s2 := newBulkSink(t)
	out2 := openES(t, Spec(), s2, "generate_id on")
	same := plugintest.KV("msg", "dup")
	if err := out2.Flush(context.Background(), logChunk("g1", same)); err != nil {
		t.Fatal(err)
	}
	if err := out2.Flush(context.Background(), logChunk("g2", same)); err != nil {
		t.Fatalf("an identical record in another chunk: %v", err)
	}
	if n := len(s2.docsByID()); n != 1 {
		t.Errorf("generate_id: %d documents for one identical record sent twice, want 1", n)
	}
}

// A redelivered chunk (the output stage crashed after the sink took it)
// creates no second copy of any record.
func TestRedeliveryCreatesNothingNew(t *testing.T) {
	for _, op := range []string{"create", "index"} {
		t.Run(op, func(t *testing.T) {
			s := newBulkSink(t)
			c := outputtest.Chunk(0, 30)
			for range 3 {
				out := openES(t, Spec(), s, "write_operation "+op) // a fresh process each time: no state
				if err := out.Flush(context.Background(), c); err != nil {
					t.Fatal(err)
				}
			}
			if err := outputtest.Diff(seqs(0, 30), s.Seqs(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func seqs(first, n int64) []int64 {
	var out []int64
	for i := range n {
		out = append(out, first+i)
	}
	return out
}

// A bulk response with item errors retries only the failed items.
func TestRetrySendsOnlyFailedItems(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s)
	c := outputtest.Chunk(0, 10)
	s.Inject(outputtest.Transient) // odd items answered 429
	err := out.Flush(context.Background(), c)
	if err == nil || plugin.IsPermanent(err) {
		t.Fatalf("flush with 429 items answered %v, want RETRY", err)
	}
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatalf("retry: %v", err)
	}
	reqs := s.reqs()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	var got []int64
	for _, d := range reqs[1].Docs {
		got = append(got, int64(d["seq"].(float64)))
	}
	if err := outputtest.Diff([]int64{1, 3, 5, 7, 9}, got); err != nil {
		t.Errorf("the retry sent the wrong records: %v", err)
	}
	if out.state.len() != 0 {
		t.Errorf("state of a delivered chunk kept")
	}
	if err := outputtest.Diff(seqs(0, 10), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
}

// A mapping error on some items: the good ones are stored, the chunk
// answers ERROR once nothing is left to retry, naming the refused records.
func TestMappingErrorDeadLettersChunk(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s)
	c := logChunk("m1", plugintest.KV("seq", 1), plugintest.KV("seq", "not a number"), plugintest.KV("seq", 3))
	err := out.Flush(context.Background(), c)
	if !plugin.IsPermanent(err) {
		t.Fatalf("flush answered %v, want ERROR", err)
	}
	if !strings.Contains(err.Error(), "record 1: status 400") || !strings.Contains(err.Error(), "mapper_parsing_exception") {
		t.Errorf("error does not name the refused record: %v", err)
	}
	if err := outputtest.Diff([]int64{1, 3}, s.Seqs(t)); err != nil {
		t.Error(err)
	}

	// Mixed: one record refused for good, one rejected for now.
	s2 := newBulkSink(t)
	out2 := openES(t, Spec(), s2)
	c2 := logChunk("m2", plugintest.KV("seq", 1), plugintest.KV("seq", "bad"), plugintest.KV("seq", 3), plugintest.KV("seq", 4))
	s2.Inject(outputtest.Transient) // items 1 and 3 get 429
	if err := out2.Flush(context.Background(), c2); err == nil || plugin.IsPermanent(err) {
		t.Fatalf("first flush %v, want RETRY while a record is owed", err)
	}
	err = out2.Flush(context.Background(), c2)
	if !plugin.IsPermanent(err) {
		t.Fatalf("second flush %v, want ERROR for the record with the mapping error", err)
	}
	if err := outputtest.Diff([]int64{1, 3, 4}, s2.Seqs(t)); err != nil {
		t.Error(err)
	}
	// The dead letter replayed later: nothing doubles, the bad record is refused again.
	if err := out2.Flush(context.Background(), c2); !plugin.IsPermanent(err) {
		t.Fatalf("replay %v", err)
	}
	if err := outputtest.Diff([]int64{1, 3, 4}, s2.Seqs(t)); err != nil {
		t.Error(err)
	}
}

func TestRequestStatusClasses(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter string
		permanent  bool
		throttle   time.Duration
	}{
		{400, "", true, 0},
		{401, "", true, 0},
		{413, "", true, 0},
		{408, "", false, 0},
		{429, "7", false, 7 * time.Second},
		{500, "", false, 0},
		{503, "", false, 0},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			http.Error(w, `{"error":"x"}`, tc.status)
		}))
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		spec := Spec()
		o, err := spec.NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(spec, "host "+host, "port "+port))
		if err != nil {
			t.Fatal(err)
		}
		err = o.Flush(context.Background(), outputtest.Chunk(0, 2))
		srv.Close()
		if err == nil || plugin.IsPermanent(err) != tc.permanent {
			t.Errorf("status %d: %v, want permanent=%v", tc.status, err, tc.permanent)
		}
		if d, ok := plugin.ThrottleDelay(err); ok != (tc.throttle > 0) || d != tc.throttle {
			t.Errorf("status %d: throttle %v %v, want %v", tc.status, d, ok, tc.throttle)
		}
	}
}

func TestBasicAuthGzipAndAPIKey(t *testing.T) {
	s := newBulkSink(t)
	s.user, s.pass = "elastic", "s3cret"
	out := openES(t, Spec(), s, "http_user elastic", "http_passwd wrong")
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 1)); !plugin.IsPermanent(err) {
		t.Fatalf("wrong password: %v, want ERROR (401)", err)
	}
	out = openES(t, Spec(), s, "http_user elastic", "http_passwd s3cret", "compress gzip")
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 5)); err != nil {
		t.Fatal(err)
	}
	if err := outputtest.Diff(seqs(0, 5), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
	reqs := s.reqs()
	if reqs[len(reqs)-1].Header.Get("Content-Encoding") != "gzip" {
		t.Error("compress gzip did not send gzip")
	}

	s2 := newBulkSink(t)
	out = openES(t, Spec(), s2, "http_api_key a2V5OnNlY3JldA==")
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 1)); err != nil {
		t.Fatal(err)
	}
	if got := s2.reqs()[0].Header.Get("Authorization"); got != "ApiKey a2V5OnNlY3JldA==" {
		t.Errorf("Authorization %q", got)
	}
}

func TestTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.Certificate()
	ts.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pair := ts.TLS.Certificates
	s := &bulkSink{docs: map[string]map[string]any{}}
	s.tlsConfig = func(_ *http.Server, ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{Certificates: pair})
	}
	s.listen(t, freeport.Addr(t))
	t.Cleanup(func() { s.srv.Close() })

	out := openES(t, OpenSearchSpec(), s, "tls on", "tls.verify on", "tls.ca_file "+ca)
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 3)); err != nil {
		t.Fatalf("flush over TLS: %v", err)
	}
	if err := outputtest.Diff(seqs(0, 3), s.Seqs(t)); err != nil {
		t.Fatal(err)
	}
	untrusted := openES(t, OpenSearchSpec(), s, "tls on", "tls.verify on")
	if err := untrusted.Flush(context.Background(), outputtest.Chunk(3, 1)); err == nil || plugin.IsPermanent(err) {
		t.Fatalf("unknown CA answered %v, want RETRY", err)
	}
}

// A response larger than buffer_size is enough when it says errors:false;
// when it reports errors the items cannot be read and the chunk is retried
// with a message naming buffer_size.
func TestBufferSize(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s, "buffer_size 300")
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 20)); err != nil {
		t.Fatalf("successful bulk with a large response: %v", err)
	}
	s.Inject(outputtest.Permanent)
	err := out.Flush(context.Background(), outputtest.Chunk(20, 20))
	if err == nil || plugin.IsPermanent(err) || !strings.Contains(err.Error(), "buffer_size") {
		t.Fatalf("truncated error response: %v", err)
	}
	out = openES(t, Spec(), s, "buffer_size false")
	s.Inject(outputtest.Permanent)
	if err := out.Flush(context.Background(), outputtest.Chunk(20, 20)); !plugin.IsPermanent(err) {
		t.Fatalf("buffer_size false: %v", err)
	}
}

func TestReplaceDotsAndUpsert(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s, "replace_dots on", "write_operation upsert", "id_key id")
	c := logChunk("u1", plugintest.KV("id", "x", "a.b", plugintest.KV("c.d", []any{plugintest.KV("e.f", 1)})))
	if err := out.Flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r := s.reqs()[0]
	want := `{"doc_as_upsert":true,"doc":{"@timestamp":"2023-11-14T22:13:20.123Z","id":"x","a_b":{"c_d":[{"e_f":1}]}}}`
	if got := strings.Split(string(r.Raw), "\n")[1]; got != want {
		t.Errorf("document\n%s\nwant\n%s", got, want)
	}
	if a := r.Actions[0]["update"]; a == nil || a["_id"] != "x" {
		t.Errorf("action %v", r.Actions[0])
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string][]string{
		"aws_auth":            {"aws_auth on"},
		"logstash_dateformat": {"logstash_dateformat %Y.%Q"},
		"time_key_format":     {"time_key_format %"},
		"id_key":              {"id_key $a['b"},
		"buffer_size":         {"buffer_size lots"},
		"http_api_key":        {"http_api_key k", "http_user u"},
		"cloud_id":            {"cloud_id x:!!!"},
		"port":                {"port 70000"},
	}
	for key, lines := range cases {
		_, err := Spec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), lines...))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%v: error %v does not name %s", lines, err, key)
		}
	}
}

func TestCloudID(t *testing.T) {
	// "name:" + base64("us-east-1.aws.found.io$abc123$kib456")
	out, err := Spec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(Spec(),
		"cloud_id name:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyRhYmMxMjMka2liNDU2", "cloud_auth elastic:pw"))
	if err != nil {
		t.Fatal(err)
	}
	o := out.(*Output)
	if o.url != "https://abc123.us-east-1.aws.found.io:443/_bulk" || o.user != "elastic" || o.pass != "pw" {
		t.Errorf("cloud_id gave %s user %s", o.url, o.user)
	}
}

func TestCurrentTimeIndex(t *testing.T) {
	s := newBulkSink(t)
	out := openES(t, Spec(), s, "logstash_format on", "current_time_index on")
	out.now = func() time.Time { return time.Date(2031, 2, 3, 0, 30, 0, 0, time.FixedZone("X", 3600)) }
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 1)); err != nil {
		t.Fatal(err)
	}
	if got := s.reqs()[0].Actions[0]["create"]["_index"]; got != "logstash-2031.02.02" {
		t.Errorf("index %v, want the flush date in UTC", got)
	}
}
