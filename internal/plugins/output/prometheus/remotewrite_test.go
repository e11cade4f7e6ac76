package prometheus

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// writeRequestType is prompb.WriteRequest built from the message
// definitions of Prometheus' prompb/types.proto and remote.proto, so the
// test decodes with protobuf-go's own decoder.
var writeRequestType = func() protoreflect.MessageType {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	f := func(name string, n int32, l *descriptorpb.FieldDescriptorProto_Label, t descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Label: l, Type: t.Enum(), JsonName: proto.String(name)}
		if typeName != "" {
			fd.TypeName = proto.String(typeName)
		}
		return fd
	}
	msg, str := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_TYPE_STRING
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("prompb/remote.proto"), Package: proto.String("prometheus"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("WriteRequest"), Field: []*descriptorpb.FieldDescriptorProto{f("timeseries", 1, rep, msg, ".prometheus.TimeSeries")}},
			{Name: proto.String("TimeSeries"), Field: []*descriptorpb.FieldDescriptorProto{
				f("labels", 1, rep, msg, ".prometheus.Label"), f("samples", 2, rep, msg, ".prometheus.Sample")}},
			{Name: proto.String("Label"), Field: []*descriptorpb.FieldDescriptorProto{f("name", 1, opt, str, ""), f("value", 2, opt, str, "")}},
			{Name: proto.String("Sample"), Field: []*descriptorpb.FieldDescriptorProto{
				f("value", 1, opt, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, ""),
				f("timestamp", 2, opt, descriptorpb.FieldDescriptorProto_TYPE_INT64, "")}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessageType(fd.Messages().ByName("WriteRequest"))
}()

// rwSink is a remote write receiver: it checks the protocol headers,
// decodes snappy + protobuf, and keeps samples by series and timestamp.
type rwSink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	samples map[string]float64 // "series@ms"
	seqs    []int64            // the seq label of every sample received, duplicates included
	header  http.Header
	status  int
}

func newRWSink(t *testing.T) *rwSink {
	s := &rwSink{samples: map[string]float64{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *rwSink) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.header = r.Header.Clone()
	if s.status != 0 {
		http.Error(w, "injected", s.status)
		s.status = 0
		return
	}
	if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("X-Prometheus-Remote-Write-Version") == "" {
		http.Error(w, "not remote write 1.0", http.StatusUnsupportedMediaType)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	dec, err := snappy.Decode(nil, raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := writeRequestType.New()
	if err := proto.Unmarshal(dec, m.Interface()); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ts := m.Get(m.Descriptor().Fields().ByName("timeseries")).List()
	for i := range ts.Len() {
		s1 := ts.Get(i).Message()
		fs := s1.Descriptor().Fields()
		ls := s1.Get(fs.ByName("labels")).List()
		var parts []string
		seq := int64(-1)
		prev := ""
		for j := range ls.Len() {
			l := ls.Get(j).Message()
			lf := l.Descriptor().Fields()
			name := l.Get(lf.ByName("name")).String()
			if name < prev {
				http.Error(w, "labels not sorted", http.StatusBadRequest)
				return
			}
			prev = name
			parts = append(parts, name+"="+l.Get(lf.ByName("value")).String())
			if name == "seq" {
				if n, err := strconv.ParseInt(l.Get(lf.ByName("value")).String(), 10, 64); err == nil {
					seq = n
				}
			}
		}
		sm := s1.Get(fs.ByName("samples")).List()
		for j := range sm.Len() {
			x := sm.Get(j).Message()
			xf := x.Descriptor().Fields()
			key := strings.Join(parts, ",") + "@" + time.UnixMilli(x.Get(xf.ByName("timestamp")).Int()).UTC().Format(time.RFC3339)
			s.samples[key] = x.Get(xf.ByName("value")).Float()
			if seq >= 0 {
				s.seqs = append(s.seqs, seq)
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func openRW(t *testing.T, s *rwSink, lines ...string) plugin.Output {
	host, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	out, err := RemoteWriteSpec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(RemoteWriteSpec(),
		append([]string{"host " + host, "port " + port, "uri /api/v1/write"}, lines...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plugin.Close(context.Background(), out) })
	return out
}

func TestRemoteWriteSeries(t *testing.T) {
	s := newRWSink(t)
	out := openRW(t, s, "add_label job floe", "http_user u", "http_passwd p")
	if err := out.Flush(context.Background(), metricsChunk(t, 10, []uint64{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	at := "@2023-11-14T22:13:20Z"
	want := map[string]float64{
		"__name__=fluentbit_input_records_total,job=floe,name=dummy.0" + at: 10,
		"__name__=fluentbit_input_records_total,job=floe,name=tail.1" + at:  20,
		"__name__=process_open_fds,job=floe" + at:                           42,
		"__name__=request_seconds_bucket,job=floe,le=0.1" + at:              1,
		"__name__=request_seconds_bucket,job=floe,le=1" + at:                3,
		"__name__=request_seconds_bucket,job=floe,le=+Inf" + at:             6,
		"__name__=request_seconds_sum,job=floe" + at:                        3.5,
		"__name__=request_seconds_count,job=floe" + at:                      6,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var got []string
	for k, v := range s.samples {
		got = append(got, k)
		if w, ok := want[k]; !ok || w != v {
			t.Errorf("sample %s = %v, want %v (known %v)", k, v, w, ok)
		}
	}
	sort.Strings(got)
	if len(got) != len(want) {
		t.Errorf("%d samples, want %d: %v", len(got), len(want), got)
	}
	if u, p, ok := (&http.Request{Header: s.header}).BasicAuth(); !ok || u != "u" || p != "p" {
		t.Errorf("basic auth missing")
	}
}

func TestRemoteWriteAnswers(t *testing.T) {
	s := newRWSink(t)
	out := openRW(t, s)
	for _, tc := range []struct {
		status    int
		permanent bool
	}{{400, true}, {429, false}, {500, false}, {503, false}} {
		s.mu.Lock()
		s.status = tc.status
		s.mu.Unlock()
		err := out.Flush(context.Background(), metricsChunk(t, 1, []uint64{1, 1, 1}))
		if err == nil || plugin.IsPermanent(err) != tc.permanent {
			t.Errorf("status %d: %v, want permanent=%v", tc.status, err, tc.permanent)
		}
	}
	if err := out.Flush(context.Background(), metricsChunk(t, 1, []uint64{1, 1, 1})); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	if err := out.Flush(context.Background(), outputtest.Chunk(0, 2)); !plugin.IsPermanent(err) {
		t.Errorf("logs chunk: %v, want ERROR", err)
	}
}
