package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/multiline"
	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

// The pod of Fluent Bit's documented tail + kubernetes workflow.
const (
	docPod       = "apache-logs-annotated"
	docNamespace = "default"
	docContainer = "apache"
	docID        = "aeeccc7a9f00f6e4e066aeff0434cf80621215071f1b20a51e8340aa7c35eac6"
	docTag       = "kube.var.log.containers." + docPod + "_" + docNamespace + "_" + docContainer + "-" + docID + ".log"
	docImageID   = "docker-pullable://edsiper/apache_logs@sha256:3ac5ea2d6e5bb3a1d6d2b4b4e0b8a55d1cd6b43b8fd1d1d0c2e3a6b1e0f1a2b3"
)

func boolp(b bool) *bool { return &b }

// newPod is a v1 Pod as the API server serves it, built with client-go's types.
func newPod(namespace, name, container string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   namespace,
			UID:         types.UID("c759a5f5-1d2b-4c3d-9117-8a1dc0b1f907"),
			Labels:      map[string]string{"app": name, "tier": "web"},
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-7d4b9c",
				UID: types.UID("1a12c3e2-d6c4-4a8a-b877-dd3c857d1aea"), Controller: boolp(true), BlockOwnerDeletion: boolp(true),
			}},
		},
		Spec: corev1.PodSpec{
			NodeName:   "node-1",
			Containers: []corev1.Container{{Name: container, Image: "edsiper/apache_logs"}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			PodIP: "10.128.0.111",
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "sidecar", Image: "busybox:1.36", ImageID: "docker-pullable://busybox@sha256:0000", ContainerID: "containerd://" + strings.Repeat("b", 64)},
				{Name: container, Image: "edsiper/apache_logs:latest", ImageID: docImageID, ContainerID: "containerd://" + docID, Ready: true},
			},
		},
	}
}

func newNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{"kubernetes.io/metadata.name": name, "team": "blue"},
			Annotations: map[string]string{"owner": "ops"},
		},
	}
}

// apiServer is a fake Kubernetes API server serving pods and namespaces
// marshalled from client-go's types.
type apiServer struct {
	mu         sync.Mutex
	pods       map[string]*corev1.Pod // "ns/name"
	namespaces map[string]*corev1.Namespace
	tokens     []string // Authorization headers seen
	requests   atomic.Int64
	delay      time.Duration
}

func newAPIServer(pods ...*corev1.Pod) *apiServer {
	a := &apiServer{pods: map[string]*corev1.Pod{}, namespaces: map[string]*corev1.Namespace{}}
	for _, p := range pods {
		a.pods[p.Namespace+"/"+p.Name] = p
		a.namespaces[p.Namespace] = newNamespace(p.Namespace)
	}
	return a
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	a.mu.Lock()
	a.tokens = append(a.tokens, r.Header.Get("Authorization"))
	delay := a.delay
	a.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var obj any
	a.mu.Lock()
	switch {
	case len(parts) == 6 && parts[0] == "api" && parts[2] == "namespaces" && parts[4] == "pods":
		if p, ok := a.pods[parts[3]+"/"+parts[5]]; ok {
			obj = p
		}
	case len(parts) == 4 && parts[0] == "api" && parts[2] == "namespaces":
		if ns, ok := a.namespaces[parts[3]]; ok {
			obj = ns
		}
	case len(parts) == 1 && parts[0] == "pods": // the kubelet
		list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, p := range a.pods {
			list.Items = append(list.Items, *p)
		}
		obj = list
	}
	a.mu.Unlock()
	if obj == nil {
		http.Error(w, `{"kind":"Status","status":"Failure","reason":"NotFound","code":404}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(obj)
}

func (a *apiServer) seenTokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.tokens)
}

// start serves a over plain HTTP on 127.0.0.1.
func (a *apiServer) start(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

func httptestServer(tb testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// parsers are Fluent Bit's stock parsers (apache, json, cri, ...).
func parsers(t testing.TB) plugin.Parsers {
	t.Helper()
	reg, err := parser.Load(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func newTestFilter(t testing.TB, lines ...string) *Filter {
	t.Helper()
	return newTestFilterTel(t, nil, lines...)
}

func newTestFilterTel(t testing.TB, tel *telemetry.Registry, lines ...string) *Filter {
	t.Helper()
	spec := Spec()
	f, err := spec.NewFilter(context.Background(), plugin.Settings{Name: "kubernetes.0", Parsers: parsers(t), Telemetry: tel}, plugintest.Props(spec, lines...))
	if err != nil {
		t.Fatalf("NewFilter: %v", err)
	}
	t.Cleanup(func() { _ = plugin.Close(context.Background(), f) })
	return f.(*Filter)
}

// criRecords reads container runtime log lines as the tail input does with
// multiline.parser cri, and returns the records as a chunk tagged tag.
func criRecords(t testing.TB, tag string, lines ...string) *chunk.Chunk {
	t.Helper()
	mp, ok := multiline.Builtin("cri")
	if !ok {
		t.Fatal("no built-in cri multiline parser")
	}
	s := multiline.NewStream([]*multiline.Parser{mp}, multiline.Options{})
	var data []byte
	n := 0
	emit := func(r multiline.Record) {
		if r.Body == nil {
			t.Fatalf("cri parser did not parse the line: %q", r.Text)
		}
		ev := event.Event{Time: r.Time, Body: r.Body.Clone()}
		data = ev.AppendMsgpack(data)
		n++
	}
	for _, l := range lines {
		s.Feed([]byte(l), event.Time{Sec: 1700000000}, 0, int64(len(l)), time.Now(), emit)
	}
	s.FlushAll(emit)
	return &chunk.Chunk{Tag: tag, Type: chunk.Logs, Records: n, Data: data}
}

// records renders the records a user sees downstream, one string each:
// the body, with the time in seconds when withTime.
func records(t testing.TB, out []*chunk.Chunk, tag string) []string {
	t.Helper()
	var got []string
	for _, c := range out {
		if c.Tag != tag {
			t.Errorf("chunk tag %q, want %q", c.Tag, tag)
		}
		it := event.NewIter(c.Data)
		n := 0
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			n++
			got = append(got, plugintest.Render(ev.Body))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != c.Records {
			t.Errorf("chunk says %d records, holds %d", c.Records, n)
		}
	}
	return got
}

// times returns the records' times.
func times(t testing.TB, out []*chunk.Chunk) []event.Time {
	t.Helper()
	var got []event.Time
	for _, c := range out {
		it := event.NewIter(c.Data)
		for it.Next() {
			got = append(got, it.Event().Time)
		}
	}
	return got
}

func run(t testing.TB, f *Filter, c *chunk.Chunk) []*chunk.Chunk {
	t.Helper()
	orig := bytes.Clone(c.Data)
	out, err := f.FilterChunk(context.Background(), c)
	if err != nil {
		t.Fatalf("FilterChunk: %v", err)
	}
	if !bytes.Equal(orig, c.Data) {
		t.Fatal("input chunk bytes were modified")
	}
	return out
}

// kubeMap is the expected "kubernetes" value for the documented pod.
func kubeMap(fields ...string) string {
	return "{" + strings.Join(fields, ",") + "}"
}

// freePort reserves a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// regexParser builds a [PARSER] of format regex.
func regexParser(t testing.TB, name, regex string) *parser.Parser {
	t.Helper()
	s := &config.Section{Type: config.TypeParser, File: "test.conf"}
	s.Props = []config.Prop{{Key: "name", Value: name}, {Key: "format", Value: "regex"}, {Key: "regex", Value: regex}}
	p, err := parser.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
