package kubernetes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

// The pieces of the documented pod's "kubernetes" map, in Fluent Bit's order.
var (
	kPod        = `"pod_name":"apache-logs-annotated"`
	kNamespace  = `"namespace_name":"default"`
	kPodID      = `"pod_id":"c759a5f5-1d2b-4c3d-9117-8a1dc0b1f907"`
	kLabels     = `"labels":{"app":"apache-logs-annotated","tier":"web"}`
	kOwners     = `"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"apache-logs-annotated-7d4b9c","uid":"1a12c3e2-d6c4-4a8a-b877-dd3c857d1aea","controller":true,"blockOwnerDeletion":true}]`
	kHost       = `"host":"node-1"`
	kPodIP      = `"pod_ip":"10.128.0.111"`
	kContainer  = `"container_name":"apache"`
	kDockerID   = `"docker_id":"aeeccc7a9f00f6e4e066aeff0434cf80621215071f1b20a51e8340aa7c35eac6"`
	kHash       = `"container_hash":"edsiper/apache_logs@sha256:3ac5ea2d6e5bb3a1d6d2b4b4e0b8a55d1cd6b43b8fd1d1d0c2e3a6b1e0f1a2b3"`
	kImage      = `"container_image":"edsiper/apache_logs:latest"`
	criLine     = `2024-03-05T10:11:12.123456789Z stdout F {"level":"info","msg":"hello\n"}`
	criFields   = `"time":"2024-03-05T10:11:12.123456789Z","stream":"stdout","_p":"F"`
	criLog      = `"log":"{\"level\":\"info\",\"msg\":\"hello\\n\"}"`
	fullKubeMap = kubeMap(kPod, kNamespace, kPodID, kLabels, kHost, kPodIP, kContainer, kDockerID, kHash, kImage)
)

// A CRI line read by tail (multiline.parser cri) and tagged by its file
// name, as in Fluent Bit's "Workflow of Tail and Kubernetes filter", is
// enriched from the API server.
func TestEnrichCRILine(t *testing.T) {
	tests := []struct {
		name  string
		ann   map[string]string
		lines []string
		want  string
	}{
		{
			name: "defaults",
			want: "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap + "}",
		},
		{
			name: "annotations are copied",
			ann:  map[string]string{"prometheus.io/scrape": "true", "a": "b"},
			want: "{" + criFields + "," + criLog + `,"kubernetes":` + kubeMap(kPod, kNamespace, kPodID, kLabels,
				`"annotations":{"a":"b","prometheus.io/scrape":"true"}`, kHost, kPodIP, kContainer, kDockerID, kHash, kImage) + "}",
		},
		{
			name:  "labels and annotations off",
			ann:   map[string]string{"a": "b"},
			lines: []string{"labels off", "annotations off"},
			want: "{" + criFields + "," + criLog + `,"kubernetes":` + kubeMap(kPod, kNamespace, kPodID, kHost, kPodIP,
				kContainer, kDockerID, kHash, kImage) + "}",
		},
		{
			name:  "owner references",
			lines: []string{"owner_references on"},
			want: "{" + criFields + "," + criLog + `,"kubernetes":` + kubeMap(kPod, kNamespace, kPodID, kLabels, kOwners,
				kHost, kPodIP, kContainer, kDockerID, kHash, kImage) + "}",
		},
		{
			name:  "namespace labels and annotations",
			lines: []string{"namespace_labels on", "namespace_annotations on"},
			want: "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap +
				`,"kubernetes_namespace":{"name":"default","labels":{"kubernetes.io/metadata.name":"default","team":"blue"},"annotations":{"owner":"ops"}}}`,
		},
		{
			name:  "namespace metadata only",
			lines: []string{"namespace_labels on", "namespace_metadata_only on"},
			want: "{" + criFields + "," + criLog +
				`,"kubernetes_namespace":{"name":"default","labels":{"kubernetes.io/metadata.name":"default","team":"blue"}}}`,
		},
		{
			name:  "merge_log appends the JSON fields, trimmed",
			lines: []string{"merge_log on"},
			want:  "{" + criFields + "," + criLog + `,"level":"info","msg":"hello","kubernetes":` + fullKubeMap + "}",
		},
		{
			name:  "merge_log_key, keep_log off",
			lines: []string{"merge_log on", "merge_log_key log_processed", "keep_log off"},
			want:  "{" + criFields + `,"log_processed":{"level":"info","msg":"hello"},"kubernetes":` + fullKubeMap + "}",
		},
		{
			name:  "merge_log_trim off",
			lines: []string{"merge_log on", "merge_log_trim off"},
			want:  "{" + criFields + "," + criLog + `,"level":"info","msg":"hello\n","kubernetes":` + fullKubeMap + "}",
		},
		{
			name:  "use_tag_for_meta makes no request",
			lines: []string{"use_tag_for_meta on", "kube_url http://127.0.0.1:1"},
			want:  "{" + criFields + "," + criLog + `,"kubernetes":` + kubeMap(kPod, kNamespace, kContainer, kDockerID) + "}",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newAPIServer(newPod(docNamespace, docPod, docContainer, tc.ann))
			srv := api.start(t)
			lines := append([]string{"kube_url " + srv.URL}, tc.lines...)
			if strings.Contains(strings.Join(tc.lines, "\n"), "kube_url") {
				lines = tc.lines
			}
			f := newTestFilter(t, lines...)
			in := criRecords(t, docTag, criLine)
			got := records(t, run(t, f, in), docTag)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("records:\n got %v\nwant [%s]", got, tc.want)
			}
			// The metadata and the record time are kept.
			if tm := times(t, run(t, f, in)); len(tm) != 1 || tm[0] != (event.Time{Sec: 1709633472, Nsec: 123456789}) {
				t.Errorf("times = %v", tm)
			}
		})
	}
}

// A tag the pattern does not match leaves the chunk untouched, with no request.
func TestTagNotMatching(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := api.start(t)
	f := newTestFilter(t, "kube_url "+srv.URL, "merge_log on")
	for _, tag := range []string{"kube.var.log.containers.not-a-pod-file.log", "kube", "app.log"} {
		in := criRecords(t, tag, criLine)
		out := run(t, f, in)
		if len(out) != 1 || out[0] != in {
			t.Errorf("tag %q: chunk changed: %v", tag, records(t, out, tag))
		}
	}
	if n := api.requests.Load(); n != 0 {
		t.Errorf("API server got %d requests", n)
	}
}

// Fluent Bit's "Custom tags for enhanced filtering" example: tail tags
// kube.<namespace>.<pod>.<container>.<id> and regex_parser reads it.
func TestRegexParser(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := api.start(t)
	spec := Spec()
	custom := regexParser(t, "custom-tag", `^(?<namespace_name>[^_]+)\.(?<pod_name>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)\.(?<container_name>.+)\.(?<container_id>[a-z0-9]{64})`)
	ps := mapParsers{"custom-tag": custom}
	fl, err := spec.NewFilter(context.Background(), plugin.Settings{Name: "kubernetes.0", Parsers: ps},
		plugintest.Props(spec, "kube_url "+srv.URL, "kube_tag_prefix kube.", "regex_parser custom-tag"))
	if err != nil {
		t.Fatal(err)
	}
	tag := "kube." + docNamespace + "." + docPod + "." + docContainer + "." + docID
	got := records(t, run(t, fl.(*Filter), criRecords(t, tag, criLine)), tag)
	// container_id is not one of the names the filter reads: docker_id
	// comes from the pod's container status.
	want := "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap + "}"
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %v\nwant [%s]", got, want)
	}
}

type mapParsers map[string]plugin.Parser

func (m mapParsers) Lookup(name string) (plugin.Parser, bool) { p, ok := m[name]; return p, ok }

// With the API server down, records pass through without metadata and are
// counted; the lookup is retried after a backoff (not on every chunk), and
// once the server answers the records are enriched.
func TestAPIServerDown(t *testing.T) {
	addr := freeAddr(t)
	tel := telemetry.NewRegistry("test")
	f := newTestFilterTel(t, tel, "kube_url http://"+addr, "kube_meta_negative_cache_ttl 1", "merge_log on", "kube_meta_io_timeout 2")
	f.pods.minBackoff = 500 * time.Millisecond
	in := criRecords(t, docTag, criLine, criLine)
	unenriched := "{" + criFields + "," + criLog + `,"level":"info","msg":"hello"}`
	enriched := "{" + criFields + "," + criLog + `,"level":"info","msg":"hello","kubernetes":` + fullKubeMap + "}"

	got := records(t, run(t, f, in), docTag)
	if strings.Join(got, "\n") != unenriched+"\n"+unenriched {
		t.Fatalf("server down: got %v", got)
	}
	st := f.Stats()
	if st.Requests != 1 || st.Failures != 1 || st.Unenriched != 2 {
		t.Fatalf("stats after the first chunk = %+v", st)
	}
	// The failure shows in the filter's error metric (floe_filter_errors_total).
	if n := tel.Filter("kubernetes.0").Errors.Load(); n != 1 {
		t.Fatalf("filter errors metric = %d, want 1", n)
	}
	// Within the backoff: no new request, records still flow.
	got = records(t, run(t, f, in), docTag)
	if len(got) != 2 || got[0] != unenriched {
		t.Fatalf("in backoff: got %v", got)
	}
	if st := f.Stats(); st.Requests != 1 || st.Unenriched != 4 {
		t.Fatalf("stats in backoff = %+v", st)
	}

	// The server comes back on the same address.
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: api}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	deadline := time.Now().Add(5 * time.Second)
	for {
		got = records(t, run(t, f, in), docTag)
		if len(got) == 2 && got[0] == enriched && got[1] == enriched {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never enriched after the server came back: %v (stats %+v)", got, f.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Once cached, no more requests.
	before := api.requests.Load()
	run(t, f, in)
	if api.requests.Load() != before {
		t.Error("cached metadata was fetched again")
	}
	if f.Stats().Failures < 1 || f.Stats().Requests < 2 {
		t.Errorf("stats = %+v", f.Stats())
	}
}

// A pod that does not exist (404) is not cached as found: its records go
// without metadata, and when it appears later it is enriched.
func TestPodAppearsLater(t *testing.T) {
	api := newAPIServer()
	srv := api.start(t)
	f := newTestFilter(t, "kube_url "+srv.URL, "kube_meta_negative_cache_ttl 0.1")
	in := criRecords(t, docTag, criLine)
	if got := records(t, run(t, f, in), docTag); len(got) != 1 || strings.Contains(got[0], "kubernetes") {
		t.Fatalf("got %v", got)
	}
	api.mu.Lock()
	api.pods[docNamespace+"/"+docPod] = newPod(docNamespace, docPod, docContainer, nil)
	api.mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	want := "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap + "}"
	if got := records(t, run(t, f, in), docTag); len(got) != 1 || got[0] != want {
		t.Fatalf("got %v", got)
	}
}

// The token is read from kube_token_file and read again after kube_token_ttl.
func TestTokenFileReread(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := api.start(t)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newTestFilter(t, "kube_url "+srv.URL, "kube_token_file "+tok, "kube_token_ttl 1", "kube_meta_cache_ttl 0.05")
	in := criRecords(t, docTag, criLine)
	run(t, f, in)
	if err := os.WriteFile(tok, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond) // cache expired, token not yet
	run(t, f, in)
	time.Sleep(1100 * time.Millisecond) // both expired
	run(t, f, in)
	got := api.seenTokens()
	want := []string{"Bearer first-token", "Bearer first-token", "Bearer second-token"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers = %q, want %q", got, want)
	}
}

// kube_url over TLS verified with kube_ca_file; without the CA the
// handshake fails and records go unenriched; tls.verify off accepts it.
func TestTLSWithCAFile(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.crt")
	// httptest servers all share one certificate: make an unrelated CA.
	if err := os.WriteFile(other, selfSignedCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	// The test server's certificate names 127.0.0.1 and example.com; reach
	// it as "localhost" to show the host name is not checked by default.
	localURL := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	want := "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap + "}"
	noMeta := "{" + criFields + "," + criLog + "}"
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"ca file", []string{"kube_url " + srv.URL, "kube_ca_file " + ca}, want},
		{"ca path", []string{"kube_url " + srv.URL, "kube_ca_file " + ca, "kube_ca_path " + dir}, want},
		{"host name not verified by default", []string{"kube_url " + localURL, "kube_ca_file " + ca}, want},
		{"tls.verify_hostname on refuses a name the certificate lacks", []string{"kube_url " + localURL, "kube_ca_file " + ca, "tls.verify_hostname on"}, noMeta},
		{"tls.verify_hostname on with tls.vhost", []string{"kube_url " + localURL, "kube_ca_file " + ca, "tls.verify_hostname on", "tls.vhost example.com"}, want},
		{"wrong CA", []string{"kube_url " + srv.URL, "kube_ca_file " + other}, noMeta},
		{"wrong CA, tls.verify off", []string{"kube_url " + srv.URL, "kube_ca_file " + other, "tls.verify off"}, want},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFilter(t, append(tc.lines, "kube_token_file "+filepath.Join(dir, "none"))...)
			got := records(t, run(t, f, criRecords(t, docTag, criLine)), docTag)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %v\nwant [%s] (stats %+v)", got, tc.want, f.Stats())
			}
		})
	}
}

// fluentbit.io/exclude drops a pod's records when k8s-logging.exclude is
// on, per stream and per container.
func TestExcludeAnnotation(t *testing.T) {
	stdout := `2024-03-05T10:11:12.000000001Z stdout F out line`
	stderr := `2024-03-05T10:11:12.000000002Z stderr F err line`
	tests := []struct {
		name  string
		ann   map[string]string
		lines []string
		want  []string // the log fields that come out
	}{
		{"exclude true", map[string]string{"fluentbit.io/exclude": "true"}, []string{"k8s-logging.exclude on"}, nil},
		{"exclude false", map[string]string{"fluentbit.io/exclude": "false"}, []string{"k8s-logging.exclude on"}, []string{"out line", "err line"}},
		{"not allowed", map[string]string{"fluentbit.io/exclude": "true"}, nil, []string{"out line", "err line"}},
		{"stderr only", map[string]string{"fluentbit.io/exclude_stderr": "on"}, []string{"k8s-logging.exclude on"}, []string{"out line"}},
		{"this container", map[string]string{"fluentbit.io/exclude-apache": "yes"}, []string{"k8s-logging.exclude on"}, nil},
		{"another container", map[string]string{"fluentbit.io/exclude-sidecar": "true"}, []string{"k8s-logging.exclude on"}, []string{"out line", "err line"}},
		{"container-specific overrides pod-wide", map[string]string{"fluentbit.io/exclude": "true", "fluentbit.io/exclude-apache": "false"}, []string{"k8s-logging.exclude on"}, []string{"out line", "err line"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newAPIServer(newPod(docNamespace, docPod, docContainer, tc.ann))
			srv := api.start(t)
			f := newTestFilter(t, append([]string{"kube_url " + srv.URL}, tc.lines...)...)
			out := run(t, f, criRecords(t, docTag, stdout, stderr))
			var logs []string
			for _, c := range out {
				it := event.NewIter(c.Data)
				for it.Next() {
					ev, _ := it.Event().Decode()
					v, _ := ev.Body.Get("log")
					logs = append(logs, v.(string))
					if _, ok := ev.Body.Get("kubernetes"); !ok {
						t.Error("record without kubernetes")
					}
				}
			}
			if strings.Join(logs, "|") != strings.Join(tc.want, "|") {
				t.Errorf("logs = %q, want %q", logs, tc.want)
			}
			if tc.want == nil && out != nil {
				t.Errorf("all records excluded, yet %d chunks came out", len(out))
			}
		})
	}
}

// fluentbit.io/parser (k8s-logging.parser on) parses "log" with the named
// parser, as Fluent Bit's documented apache example; the parser's time
// becomes the record's.
func TestParserAnnotation(t *testing.T) {
	apacheLine := `2024-03-05T10:11:12.000000001Z stdout F 192.168.2.20 - - [28/Jul/2006:10:27:10 -0300] "GET /cgi-bin/try/ HTTP/1.0" 200 3395`
	apacheFields := `"host":"192.168.2.20","user":"-","method":"GET","path":"/cgi-bin/try/","code":"200","size":"3395"`
	ann := map[string]string{"fluentbit.io/parser": "apache"}
	tests := []struct {
		name    string
		ann     map[string]string
		lines   []string
		parsed  bool
		wantSec int64
	}{
		{"parser annotation", ann, []string{"k8s-logging.parser on", "merge_log on"}, true, 1154093230},
		{"not allowed", ann, []string{"merge_log on"}, false, 1709633472},
		{"stream-specific, other stream", map[string]string{"fluentbit.io/parser_stderr": "apache"}, []string{"k8s-logging.parser on", "merge_log on"}, false, 1709633472},
		{"stream-specific, this stream", map[string]string{"fluentbit.io/parser_stdout-apache": "apache"}, []string{"k8s-logging.parser on", "merge_log on"}, true, 1154093230},
		{"unknown parser", map[string]string{"fluentbit.io/parser": "nope"}, []string{"k8s-logging.parser on", "merge_log on"}, false, 1709633472},
		{"annotation wins over merge_parser", ann, []string{"k8s-logging.parser on", "merge_log on", "merge_parser json"}, true, 1154093230},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newAPIServer(newPod(docNamespace, docPod, docContainer, tc.ann))
			srv := api.start(t)
			f := newTestFilter(t, append([]string{"kube_url " + srv.URL, "annotations off"}, tc.lines...)...)
			out := run(t, f, criRecords(t, docTag, apacheLine))
			got := records(t, out, docTag)
			if len(got) != 1 {
				t.Fatalf("got %v", got)
			}
			if has := strings.Contains(got[0], apacheFields); has != tc.parsed {
				t.Errorf("parsed = %v, want %v: %s", has, tc.parsed, got[0])
			}
			if tm := times(t, out); tm[0].Sec != tc.wantSec {
				t.Errorf("time = %v, want %d", tm[0], tc.wantSec)
			}
		})
	}
}

// merge_parser parses "log" when the pod suggests none; a failed parse
// keeps "log" (even with keep_log off).
func TestMergeParser(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := api.start(t)
	f := newTestFilter(t, "kube_url "+srv.URL, "merge_log on", "merge_parser apache", "keep_log off", "labels off")
	in := criRecords(t, docTag, `2024-03-05T10:11:12.000000001Z stdout F not an apache line`)
	got := records(t, run(t, f, in), docTag)
	if len(got) != 1 || !strings.Contains(got[0], `"log":"not an apache line"`) {
		t.Errorf("got %v", got)
	}
}

// Concurrent chunks of one pod make one request; the cache is shared.
func TestConcurrentLookupsCoalesce(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	api.delay = 300 * time.Millisecond
	srv := api.start(t)
	f := newTestFilter(t, "kube_url "+srv.URL)
	in := criRecords(t, docTag, criLine)
	var wg sync.WaitGroup
	results := make([][]string, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.FilterChunk(context.Background(), in)
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = records(t, out, docTag)
		}()
	}
	wg.Wait()
	want := "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap + "}"
	for i, r := range results {
		if len(r) != 1 || r[0] != want {
			t.Errorf("worker %d got %v", i, r)
		}
	}
	if n := api.requests.Load(); n != 1 {
		t.Errorf("API server got %d requests, want 1", n)
	}
}

// kube_meta_cache_ttl expires entries: the pod is fetched again and its
// new labels show.
func TestCacheTTL(t *testing.T) {
	pod := newPod(docNamespace, docPod, docContainer, nil)
	api := newAPIServer(pod)
	srv := api.start(t)
	f := newTestFilter(t, "kube_url "+srv.URL, "kube_meta_cache_ttl 0.5")
	in := criRecords(t, docTag, criLine)
	run(t, f, in)
	run(t, f, in)
	if n := api.requests.Load(); n != 1 {
		t.Fatalf("requests = %d before expiry", n)
	}
	api.mu.Lock()
	pod.Labels = map[string]string{"app": "v2"}
	api.mu.Unlock()
	time.Sleep(600 * time.Millisecond)
	got := records(t, run(t, f, in), docTag)
	if n := api.requests.Load(); n != 2 || !strings.Contains(got[0], `"labels":{"app":"v2"}`) {
		t.Errorf("requests = %d, record %v", n, got)
	}
}

// use_kubelet reads the kubelet's /pods over HTTPS and picks the pod.
func TestUseKubelet(t *testing.T) {
	api := newAPIServer(
		newPod("other", "someone-else", "c", nil),
		newPod(docNamespace, docPod, docContainer, nil),
	)
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	f := newTestFilter(t, "use_kubelet on", "kubelet_host "+host, "kubelet_port "+port, "tls.verify off",
		"kube_url http://127.0.0.1:1", "kube_meta_negative_cache_ttl 0.1")
	want := "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap + "}"
	got := records(t, run(t, f, criRecords(t, docTag, criLine)), docTag)
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %v\nwant [%s]", got, want)
	}
	// A pod missing from the list gets the tag's metadata, as Fluent Bit.
	tag := "kube.var.log.containers.newpod_default_app-" + strings.Repeat("c", 64) + ".log"
	got = records(t, run(t, f, criRecords(t, tag, criLine)), tag)
	wantTag := "{" + criFields + "," + criLog + `,"kubernetes":{"pod_name":"newpod","namespace_name":"default","container_name":"app","docker_id":"` + strings.Repeat("c", 64) + `"}}`
	if len(got) != 1 || got[0] != wantTag {
		t.Errorf("missing pod: got %v\nwant [%s]", got, wantTag)
	}
}

// dummy_meta appends {"dummy": <local time>} without any request.
func TestDummyMeta(t *testing.T) {
	f := newTestFilter(t, "dummy_meta on", "kube_url http://127.0.0.1:1")
	out := run(t, f, criRecords(t, "anything", criLine))
	it := event.NewIter(out[0].Data)
	it.Next()
	ev, _ := it.Event().Decode()
	k, _ := ev.Body.Get("kubernetes")
	m, ok := k.(event.Map)
	if !ok || len(m) != 1 || m[0].Key != "dummy" {
		t.Fatalf("kubernetes = %v", plugintest.Render(k))
	}
	if _, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", m[0].Value.(string), time.Local); err != nil {
		t.Errorf("dummy value %q is not an asctime date: %v", m[0].Value, err)
	}
}

// A pod answer larger than buffer_size is discarded: no metadata.
func TestBufferSize(t *testing.T) {
	ann := map[string]string{"big": strings.Repeat("x", 4000)}
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, ann))
	srv := api.start(t)
	for _, tc := range []struct {
		size     string
		enriched bool
	}{{"2k", false}, {"64k", true}, {"0", true}} {
		f := newTestFilter(t, "kube_url "+srv.URL, "buffer_size "+tc.size)
		got := records(t, run(t, f, criRecords(t, docTag, criLine)), docTag)
		if has := strings.Contains(got[0], `"kubernetes"`); has != tc.enriched {
			t.Errorf("buffer_size %s: enriched = %v", tc.size, has)
		}
	}
}

// Group markers and record metadata pass through.
func TestGroupsAndMetadata(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := api.start(t)
	f := newTestFilter(t, "kube_url "+srv.URL, "labels off")
	rec := event.Event{Time: event.Time{Sec: 1700000000, Nsec: 7}, Meta: plugintest.KV("otlp", "x"), Body: plugintest.KV("log", "hi")}
	var data []byte
	data = plugintest.GroupStart.AppendMsgpack(data)
	data = rec.AppendMsgpack(data)
	data = plugintest.GroupEnd.AppendMsgpack(data)
	out := run(t, f, &chunk.Chunk{Tag: docTag, Type: chunk.Logs, Records: 1, Data: data})
	it := event.NewIter(out[0].Data)
	var kinds []event.Kind
	for it.Next() {
		kinds = append(kinds, it.Event().Kind())
		if it.Event().Kind() == event.KindRecord {
			ev, _ := it.Event().Decode()
			if plugintest.Render(ev.Meta) != `{"otlp":"x"}` || ev.Time != rec.Time {
				t.Errorf("meta/time = %s %v", plugintest.Render(ev.Meta), ev.Time)
			}
		}
	}
	if len(kinds) != 3 || kinds[0] != event.KindGroupStart || kinds[2] != event.KindGroupEnd {
		t.Errorf("kinds = %v", kinds)
	}
}

// Configuration errors name their key.
func TestConfigErrors(t *testing.T) {
	spec := Spec()
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lines []string
		key   string
	}{
		{[]string{"merge_parser nope"}, "merge_parser"},
		{[]string{"regex_parser nope"}, "regex_parser"},
		{[]string{"kube_ca_file " + notPEM}, "kube_ca_file"},
		{[]string{"kube_ca_path /nonexistent"}, "kube_ca_path"},
		{[]string{"kube_url ftp://x"}, "kube_url"},
		{[]string{"use_journal on"}, "use_journal"},
		{[]string{"use_kubelet on", "kubelet_port 70000", "tls.verify off"}, "kubelet_port"},
	}
	for _, tc := range tests {
		_, err := spec.NewFilter(context.Background(), plugin.Settings{Name: "kubernetes.0", Parsers: parsers(t)}, plugintest.Props(spec, tc.lines...))
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != tc.key || ce.File != "test.conf" {
			t.Errorf("%v: err = %v, want a config error at key %s", tc.lines, err, tc.key)
		}
	}
	// The in-pod CA file is missing outside a cluster, where a DaemonSet's
	// configuration is checked: not an error.
	for _, lines := range [][]string{nil, {"kube_ca_file /var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}} {
		if _, err := spec.NewFilter(context.Background(), plugin.Settings{Name: "kubernetes.0"}, plugintest.Props(spec, lines...)); err != nil {
			t.Errorf("%v: %v", lines, err)
		}
	}
}

func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTrimSize(t *testing.T) {
	for in, want := range map[string]string{
		"hello\n":      "hello",
		"hello\n\n":    "hello",
		`hello\n`:      "hello",
		`hello\r\n`:    "hello",
		"hello\r":      "hello\r",
		"\n":           "\n",
		"a\n":          "a",
		`x\n` + "\n":   "x",
		"plain":        "plain",
		"":             "",
		"mid\nend":     "mid\nend",
		`ends in \\n`:  `ends in \`,
		"tab\t":        "tab\t",
		`\n`:           "", // the first byte is never cut, but an escape at 0-1 is
		"multi\\n\\r ": "multi\\n\\r ",
	} {
		if got := in[:trimSize([]byte(in))]; got != want {
			t.Errorf("trim(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExtractHash(t *testing.T) {
	for in, want := range map[string]string{
		"docker://" + docID:                     docID,
		"containerd://abc":                      "abc",
		"docker-pullable://nginx@sha256:0123":   "nginx@sha256:0123",
		"sha256:5163d2ab":                       "sha256:5163d2ab",
		"nocolon":                               "",
		"x":                                     "",
		"docker://":                             "",
		"registry.io:5000/app@sha256:1":         "registry.io:5000/app@sha256:1",
		"docker-pullable://registry:5000/a@s:1": "registry:5000/a@s:1",
	} {
		if got := extractHash(in); got != want {
			t.Errorf("extractHash(%q) = %q, want %q", in, got, want)
		}
	}
}

// kube_token_command's output is the token.
func TestTokenCommand(t *testing.T) {
	api := newAPIServer(newPod(docNamespace, docPod, docContainer, nil))
	srv := api.start(t)
	f := newTestFilter(t, "kube_url "+srv.URL, "kube_token_command printf 'cmd-token\\n'")
	run(t, f, criRecords(t, docTag, criLine))
	if got := api.seenTokens(); len(got) != 1 || got[0] != "Bearer cmd-token" {
		t.Errorf("Authorization headers = %q", got)
	}
}

// kube_meta_preload_cache_dir: <namespace>_<pod>.meta files are read
// instead of asking the API server.
func TestPreloadCacheDir(t *testing.T) {
	dir := t.TempDir()
	b, err := json.Marshal(newPod(docNamespace, docPod, docContainer, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, docNamespace+"_"+docPod+".meta"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newTestFilter(t, "kube_url http://"+freeAddr(t), "kube_meta_preload_cache_dir "+dir)
	want := "{" + criFields + "," + criLog + `,"kubernetes":` + fullKubeMap + "}"
	if got := records(t, run(t, f, criRecords(t, docTag, criLine)), docTag); len(got) != 1 || got[0] != want {
		t.Errorf("got %v\nwant [%s]", got, want)
	}
	if st := f.Stats(); st.Requests != 0 {
		t.Errorf("stats = %+v", st)
	}
}
