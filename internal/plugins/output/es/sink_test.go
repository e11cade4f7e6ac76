package es

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/testutil/freeport"
)

// bulkSink is an HTTP server applying the bulk API's item semantics as
// Elasticsearch and OpenSearch do: documents keyed by index and _id, create
// refused with 409 when the _id exists, index overwriting, update needing an
// existing document unless doc_as_upsert, a mapping error (400) for a seq
// that is not a number, per-item status and "errors":true when any item
// failed.
type bulkSink struct {
	addr string
	srv  *http.Server

	mu        sync.Mutex
	docs      map[string]map[string]any // index + "\x00" + _id
	order     []string
	autoID    int
	fault     *outputtest.Fault
	requests  []bulkRequest
	user      string
	pass      string
	tlsConfig func(*http.Server, net.Listener) net.Listener
}

// bulkRequest is what the sink received in one request.
type bulkRequest struct {
	Path    string
	Query   string
	Header  http.Header
	Actions []map[string]map[string]any
	Docs    []map[string]any
	Raw     []byte
}

func newBulkSink(t testing.TB) *bulkSink {
	s := &bulkSink{docs: map[string]map[string]any{}}
	s.listen(t, freeport.Addr(t))
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *bulkSink) listen(t testing.TB, addr string) {
	ln, err := freeport.Listen(addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	if s.tlsConfig != nil {
		ln = s.tlsConfig(s.srv, ln)
	}
	go s.srv.Serve(ln)
}

func (s *bulkSink) Config() []string {
	host, port, _ := net.SplitHostPort(s.addr)
	return []string{"host " + host, "port " + port, "suppress_type_name on"}
}

func (s *bulkSink) Seqs(testing.TB) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for _, k := range s.order {
		if d, ok := s.docs[k]; ok {
			if f, ok := d["seq"].(float64); ok {
				out = append(out, int64(f))
			}
		}
	}
	return out
}

func (s *bulkSink) Inject(f outputtest.Fault) bool {
	s.mu.Lock()
	s.fault = &f
	s.mu.Unlock()
	return true
}

func (s *bulkSink) Restart(t testing.TB) {
	addr := s.addr
	s.srv.Close()
	s.listen(t, addr)
}

func (s *bulkSink) reqs() []bulkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bulkRequest(nil), s.requests...)
}

func (s *bulkSink) docsByID() map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]any{}
	for k, v := range s.docs {
		out[k] = v
	}
	return out
}

func errJSON(w http.ResponseWriter, status int, typ, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"type":%q,"reason":%q},"status":%d}`, typ, reason, status)
}

func (s *bulkSink) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || len(r.URL.Path) < 6 || r.URL.Path[len(r.URL.Path)-6:] != "/_bulk" {
		errJSON(w, http.StatusNotFound, "not_found", r.Method+" "+r.URL.Path)
		return
	}
	if s.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.user || p != s.pass {
			errJSON(w, http.StatusUnauthorized, "security_exception", "missing authentication credentials")
			return
		}
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			errJSON(w, http.StatusBadRequest, "parse_exception", err.Error())
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		errJSON(w, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	req := bulkRequest{Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Raw: raw}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var action map[string]map[string]any
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || len(action) != 1 {
			errJSON(w, http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("malformed action line %q", sc.Text()))
			return
		}
		if !sc.Scan() {
			errJSON(w, http.StatusBadRequest, "illegal_argument_exception", "action without document")
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			errJSON(w, http.StatusBadRequest, "parse_exception", fmt.Sprintf("document %q: %v", sc.Text(), err))
			return
		}
		req.Actions = append(req.Actions, action)
		req.Docs = append(req.Docs, doc)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	f := s.fault
	s.fault = nil
	type item map[string]map[string]any
	var items []item
	anyErr := false
	for i, action := range req.Actions {
		var op string
		var meta map[string]any
		for op, meta = range action {
		}
		index, _ := meta["_index"].(string)
		id, hasID := meta["_id"].(string)
		res := map[string]any{"_index": index}
		fail := func(status int, typ, reason string) {
			res["status"] = status
			res["error"] = map[string]any{"type": typ, "reason": reason}
			anyErr = true
		}
		doc := req.Docs[i]
		switch {
		case f != nil && *f == outputtest.Transient && i%2 == 1:
			fail(429, "es_rejected_execution_exception", "rejected execution of coordinating operation")
		case f != nil && *f == outputtest.Permanent:
			fail(400, "mapper_parsing_exception", "failed to parse field [seq] of type [long]")
		case index == "":
			fail(400, "action_request_validation_exception", "index is missing")
		default:
			if seq, ok := doc["seq"]; ok {
				if _, num := seq.(float64); !num {
					if op == "update" {
						seq = nil
					}
					if seq != nil {
						fail(400, "mapper_parsing_exception", fmt.Sprintf("failed to parse field [seq] of type [long]: %v", seq))
						break
					}
				}
			}
			if !hasID {
				s.autoID++
				id = fmt.Sprintf("auto-%d", s.autoID)
			}
			res["_id"] = id
			key := index + "\x00" + id
			_, exists := s.docs[key]
			switch op {
			case "create":
				if exists {
					fail(409, "version_conflict_engine_exception", "["+id+"]: version conflict, document already exists")
					break
				}
				s.put(key, doc)
				res["status"], res["result"] = 201, "created"
			case "index":
				s.put(key, doc)
				res["status"], res["result"] = 201, "created"
				if exists {
					res["status"], res["result"] = 200, "updated"
				}
			case "update":
				inner, _ := doc["doc"].(map[string]any)
				if !exists {
					if up, _ := doc["doc_as_upsert"].(bool); !up {
						fail(404, "document_missing_exception", "["+id+"]: document missing")
						break
					}
					s.put(key, inner)
					res["status"], res["result"] = 201, "created"
					break
				}
				for k, v := range inner {
					s.docs[key][k] = v
				}
				res["status"], res["result"] = 200, "updated"
			default:
				fail(400, "illegal_argument_exception", "unknown action "+op)
			}
		}
		items = append(items, item{op: res})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": anyErr, "items": items})
}

func (s *bulkSink) put(key string, doc map[string]any) {
	if _, ok := s.docs[key]; !ok {
		s.order = append(s.order, key)
	}
	s.docs[key] = doc
}

func sortedKeys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
