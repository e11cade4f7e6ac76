package loki

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/floe-io/floe/internal/testutil/freeport"
)

// pushRequestType is Loki's logproto.PushRequest built from the message
// definitions of pkg/push/push.proto (Loki's module is AGPL as a whole and
// cannot be a dependency), so the test decodes with protobuf-go's own
// decoder rather than with anything the output shares.
var pushRequestType = func() protoreflect.MessageType {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	u64 := descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, n int32, l *descriptorpb.FieldDescriptorProto_Label, t *descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Label: l, Type: t, JsonName: proto.String(name)}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("pkg/push/push.proto"),
		Package:    proto.String("logproto"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("PushRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("streams", 1, rep, msg, ".logproto.StreamAdapter")}},
			{Name: proto.String("StreamAdapter"), Field: []*descriptorpb.FieldDescriptorProto{
				field("labels", 1, opt, str, ""),
				field("entries", 2, rep, msg, ".logproto.EntryAdapter"),
				field("hash", 3, opt, u64, "")}},
			{Name: proto.String("LabelPairAdapter"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, opt, str, ""),
				field("value", 2, opt, str, "")}},
			{Name: proto.String("EntryAdapter"), Field: []*descriptorpb.FieldDescriptorProto{
				field("timestamp", 1, opt, msg, ".google.protobuf.Timestamp"),
				field("line", 2, opt, str, ""),
				field("structuredMetadata", 3, rep, msg, ".logproto.LabelPairAdapter")}},
		},
	}
	// Resolve google/protobuf/timestamp.proto from the global registry,
	// where importing timestamppb registered it.
	_ = timestamppb.New
	f, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessageType(f.Messages().ByName("PushRequest"))
}()

// pushedEntry is one entry as Loki stores it.
type pushedEntry struct {
	Labels string
	TS     time.Time
	Line   string
	Meta   map[string]string
	Tenant string
}

// decodePush decodes a push request body the way Loki's distributor does
// (snappy + protobuf, or JSON, gzip allowed).
func decodePush(r *http.Request) ([]pushedEntry, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	tenant := r.Header.Get("X-Scope-OrgID")
	var out []pushedEntry
	switch ct := r.Header.Get("Content-Type"); ct {
	case "application/x-protobuf":
		dec, err := snappy.Decode(nil, raw)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		m := pushRequestType.New()
		if err := proto.Unmarshal(dec, m.Interface()); err != nil {
			return nil, fmt.Errorf("protobuf: %w", err)
		}
		fs := m.Descriptor().Fields()
		streams := m.Get(fs.ByName("streams")).List()
		for i := range streams.Len() {
			s := streams.Get(i).Message()
			sf := s.Descriptor().Fields()
			labels := s.Get(sf.ByName("labels")).String()
			ents := s.Get(sf.ByName("entries")).List()
			for j := range ents.Len() {
				e := ents.Get(j).Message()
				ef := e.Descriptor().Fields()
				ts := e.Get(ef.ByName("timestamp")).Message()
				tf := ts.Descriptor().Fields()
				pe := pushedEntry{Labels: labels, Tenant: tenant,
					TS:   time.Unix(ts.Get(tf.ByName("seconds")).Int(), ts.Get(tf.ByName("nanos")).Int()),
					Line: e.Get(ef.ByName("line")).String()}
				md := e.Get(ef.ByName("structuredMetadata")).List()
				for k := range md.Len() {
					p := md.Get(k).Message()
					pf := p.Descriptor().Fields()
					if pe.Meta == nil {
						pe.Meta = map[string]string{}
					}
					pe.Meta[p.Get(pf.ByName("name")).String()] = p.Get(pf.ByName("value")).String()
				}
				out = append(out, pe)
			}
		}
	case "application/json":
		var req struct {
			Streams []struct {
				Stream map[string]string   `json:"stream"`
				Values [][]json.RawMessage `json:"values"`
			} `json:"streams"`
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		for _, s := range req.Streams {
			labels := promLabels(s.Stream)
			for _, v := range s.Values {
				if len(v) < 2 || len(v) > 3 {
					return nil, fmt.Errorf("value of %d elements", len(v))
				}
				var tss, line string
				if err := json.Unmarshal(v[0], &tss); err != nil {
					return nil, fmt.Errorf("timestamp must be a string: %w", err)
				}
				ns, err := strconv.ParseInt(tss, 10, 64)
				if err != nil {
					return nil, err
				}
				if err := json.Unmarshal(v[1], &line); err != nil {
					return nil, err
				}
				pe := pushedEntry{Labels: labels, TS: time.Unix(0, ns), Line: line, Tenant: tenant}
				if len(v) == 3 {
					if err := json.Unmarshal(v[2], &pe.Meta); err != nil {
						return nil, err
					}
				}
				out = append(out, pe)
			}
		}
	default:
		return nil, fmt.Errorf("unsupported Content-Type %q", ct)
	}
	return out, nil
}

// promLabels renders a label map as Loki's canonical string.
func promLabels(m map[string]string) string {
	var ls [][2]string
	for k, v := range m {
		ls = append(ls, [2]string{k, v})
	}
	for i := range ls {
		for j := i + 1; j < len(ls); j++ {
			if ls[j][0] < ls[i][0] {
				ls[i], ls[j] = ls[j], ls[i]
			}
		}
	}
	return labelString(ls)
}

// lokiSink is a push API server with Loki's ingestion semantics: an entry
// equal in stream, timestamp and line to a stored one is dropped as a
// duplicate; 204 on success; 429 when rate limited; 400 for a refused push.
type lokiSink struct {
	addr string
	srv  *http.Server

	mu       sync.Mutex
	entries  []pushedEntry
	seen     map[string]bool
	fault    *faultKind
	requests []*http.Request
}

type faultKind int

const (
	faultRetry faultKind = iota
	faultRefuse
)

func newLokiSink(t testing.TB) *lokiSink {
	s := &lokiSink{seen: map[string]bool{}}
	s.listen(t, freeport.Addr(t))
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *lokiSink) listen(t testing.TB, addr string) {
	ln, err := freeport.Listen(addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go s.srv.Serve(ln)
}

func (s *lokiSink) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/loki/api/v1/push" {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	ents, err := decodePush(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
	if f := s.fault; f != nil {
		s.fault = nil
		if *f == faultRetry {
			http.Error(w, "Ingestion rate limit exceeded for user fake", http.StatusTooManyRequests)
		} else {
			http.Error(w, "entry for stream has timestamp too old", http.StatusBadRequest)
		}
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, e := range ents {
		k := e.Tenant + "\x00" + e.Labels + "\x00" + strconv.FormatInt(e.TS.UnixNano(), 10) + "\x00" + e.Line
		if s.seen[k] {
			continue
		}
		s.seen[k] = true
		s.entries = append(s.entries, e)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *lokiSink) stored() []pushedEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pushedEntry(nil), s.entries...)
}
