package vivo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	vivoout "github.com/floe-io/floe/internal/plugins/output/vivo"
	"github.com/floe-io/floe/internal/tag"
	"github.com/floe-io/floe/internal/telemetry"
)

// Header names as the documented API spells them. /api/v1 responses send
// them lowercased, as upstream's HTTP server does.
const (
	hdrStartID = "Vivo-Stream-Start-ID"
	hdrEndID   = "Vivo-Stream-End-ID"
	hdrNextID  = "Vivo-Stream-Next-ID"

	corsAllowHeaders  = "Origin, X-Requested-With, Content-Type, Accept"
	corsExposeHeaders = "vivo-stream-start-id, vivo-stream-end-id, vivo-stream-next-id"

	rootBody = "Fluent Bit Vivo Exporter\n"
)

// Timings.
const (
	stateTimeout   = 5 * time.Second  // stream info, purge
	stallTimeout   = 3 * time.Second  // a one-shot read waiting for a message that vanished
	keepaliveEvery = 15 * time.Second // SSE comment while following an idle stream
	flushEvery     = 32 << 10         // one-shot reads flush after this many bytes
)

var signals = [3]string{chunk.Logs, chunk.Metrics, chunk.Traces}

func signalIndex(s string) int {
	for i, x := range signals {
		if x == s {
			return i
		}
	}
	return 0
}

// exporter serves one vivo_exporter instance.
type exporter struct {
	svc  *Service
	name string
	id   string
	set  vivoout.Settings
	rend renderer
	ui   http.Handler

	requests atomic.Uint64
	notFound atomic.Uint64
	chunks   [3]atomic.Uint64 // served, per signal
	bytes    [3]atomic.Uint64
	purges   [3]atomic.Uint64
	follows  atomic.Int64 // open followers

	// malformed counts and logs (rate-limited) the records of stored chunks
	// that could not be rendered, on every read that meets them.
	malformed *telemetry.Dropper
}

func newExporter(s *Service, e Exporter, set vivoout.Settings) *exporter {
	malformed := s.cfg.Telemetry.Dropper(s.log.With("exporter", e.Name), telemetry.DropSite{
		Stage: "vivo", Plugin: e.Name, Reason: telemetry.DropMalformedChunk,
		Msg: "vivo: chunk not fully rendered", Level: slog.LevelWarn})
	return &exporter{svc: s, name: e.Name, id: e.ID, set: set, rend: renderer{json: s.cfg.JSON}, ui: uiHandler(),
		malformed: malformed}
}

// renderFailed accounts for a chunk render could not read to its end: the
// records after the decode error are left out of the response.
func (e *exporter) renderFailed(signal string, id uint64, c *chunk.Chunk, err error) {
	lost := telemetry.ChunkRecords(c)
	if signal == chunk.Logs {
		ok, _ := event.Count(c.Data)
		lost = max(lost-ok, 1)
	}
	e.malformed.Drop(lost, "signal", signal, "id", id, "tag", c.Tag, "error", err)
}

// ServeHTTP routes by exact path, as upstream (no trailing-slash tolerance);
// any method is served, OPTIONS answers a CORS preflight.
func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	switch p := r.URL.Path; p {
	case "/":
		e.headers(w, true)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, rootBody)
	case "/logs", "/metrics", "/traces":
		e.serveStream(w, r, p[1:], false)
	case "/api/v1/logs", "/api/v1/metrics", "/api/v1/traces":
		e.serveStream(w, r, p[len("/api/v1/"):], true)
	case "/api/v1/internal/metrics":
		e.serveInternalMetrics(w, r)
	case "/ui":
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	default:
		if strings.HasPrefix(p, "/ui/") {
			e.ui.ServeHTTP(w, r)
			return
		}
		e.notFound.Add(1)
		e.headers(w, true)
		w.WriteHeader(http.StatusNotFound)
	}
}

// headers writes the response headers an endpoint generation uses. With
// lower, names go on the wire lowercased (Go's own Date and Content-Type
// handling is switched off so that they are not sent twice; the framing
// headers Content-Length and Transfer-Encoding stay Go's).
type headers struct {
	h     http.Header
	lower bool
}

func (e *exporter) headers(w http.ResponseWriter, lower bool) headers {
	hd := headers{h: w.Header(), lower: lower}
	if lower {
		hd.h["Content-Type"] = nil // no sniffed Content-Type
		hd.h["Date"] = nil
		hd.set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	hd.set("Server", "Floe")
	return hd
}

func (hd headers) set(name, v string) {
	if hd.lower {
		name = strings.ToLower(name)
	}
	hd.h[name] = []string{v} // as spelled: Header.Set would make "…-Id"
}

// cors adds upstream's CORS headers when http_cors_allow_origin is set.
func (e *exporter) cors(hd headers, stream bool) {
	if e.set.CORSAllowOrigin == "" {
		return
	}
	hd.set("Access-Control-Allow-Origin", e.set.CORSAllowOrigin)
	hd.set("Access-Control-Allow-Headers", corsAllowHeaders)
	if stream {
		hd.set("Access-Control-Expose-Headers", corsExposeHeaders)
	}
}

func flush(w http.ResponseWriter) {
	_ = http.NewResponseController(w).Flush()
}

// unavailable answers when JetStream cannot be reached: 503, never 500.
func (e *exporter) unavailable(w http.ResponseWriter, hd headers, err error) {
	e.svc.log.Warn("vivo: stream unavailable", "exporter", e.name, "error", err)
	hd.set("Content-Type", "application/json")
	hd.set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	msg := strconv.Quote("stream unavailable: " + err.Error())
	_, _ = io.WriteString(w, `{"error":`+msg+"}\n")
}

// streamState returns the stream and its current state. A stream that is
// not found is an error, not an empty stream: every process declares the
// streams at start, so it means JetStream is still recovering them (a NATS
// restart), and "empty, next id 0" would send clients back to id 0.
func (e *exporter) streamState(ctx context.Context, name string) (jetstream.Stream, jetstream.StreamState, error) {
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	st, err := e.svc.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, jetstream.StreamState{}, fmt.Errorf("stream %s not declared (yet)", name)
	}
	if err != nil {
		return nil, jetstream.StreamState{}, err
	}
	return st, st.CachedInfo().State, nil
}

// purge removes every chunk below sequence before (empty_stream_on_read).
func (e *exporter) purge(st jetstream.Stream, signal string, before uint64) {
	if st == nil || before <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(before)); err != nil {
		e.svc.log.Warn("vivo: empty_stream_on_read: purge failed", "exporter", e.name, "signal", signal, "error", err)
		return
	}
	e.purges[signalIndex(signal)].Add(1)
}

// chunkOf rebuilds a chunk from a stream message. A chunk whose data does
// not decode comes back with its headers, no data and the error.
func chunkOf(m jetstream.Msg) (*chunk.Chunk, error) {
	return chunk.FromHeaders(m.Headers(), m.Data(), func() string {
		// floe.vivo.<id>.<signal>.<tag subject>
		parts := strings.SplitN(m.Subject(), ".", 5)
		if len(parts) < 5 {
			return ""
		}
		t, _ := tag.FromSubject(parts[4])
		return t
	})
}

// tagFilter compiles ?tag= into a subject filter and an exact check.
func (e *exporter) tagFilter(signal, pattern string) (string, func(string) bool) {
	if pattern == "" {
		return "", nil
	}
	subject := "floe.vivo." + e.id + "." + signal + "." + tag.SubjectFilter(pattern)
	return subject, func(t string) bool { return tag.Match(pattern, t) }
}

// serveStream answers /logs, /metrics, /traces (v1 false) and their
// /api/v1 forms.
func (e *exporter) serveStream(w http.ResponseWriter, r *http.Request, signal string, v1 bool) {
	ctx := r.Context()
	hd := e.headers(w, v1)
	if r.Method == http.MethodOptions {
		e.cors(hd, true)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := parseQuery(r, v1)
	name := jsx.VivoStreamName(e.id, signal)
	st, state, err := e.streamState(ctx, name)
	if err != nil {
		e.unavailable(w, hd, err)
		return
	}
	sp := q.resolve(state)
	filter, match := e.tagFilter(signal, q.pattern)
	if q.follow && !sp.empty {
		e.follow(w, r, hd, q, sp, state, signal, name, st, filter, match)
		return
	}
	reads := r.Method != http.MethodHead
	emptyOnRead := func() {
		if e.set.EmptyStreamOnRead && reads && state.Msgs > 0 {
			e.purge(st, signal, state.LastSeq+1)
		}
	}
	writeEmpty := func() {
		hd.set("Content-Type", "application/json")
		hd.set(hdrNextID, strconv.FormatUint(state.LastSeq, 10))
		e.cors(hd, true)
		w.WriteHeader(http.StatusOK)
	}
	if sp.empty {
		writeEmpty()
		emptyOnRead()
		return
	}
	// The range headers come before the body, so the last id must be known
	// before streaming it. Sequences of these streams have no holes (Limits
	// retention only removes the oldest, purges remove a prefix), so without
	// a tag filter the range follows from the first chunk read; otherwise a
	// headers-only pass finds it.
	first, last := sp.lo, sp.hi
	contiguous := state.NumDeleted == 0 && match == nil
	if !contiguous {
		var n int64
		first, last, n, err = e.prescan(ctx, name, filter, sp, match)
		if err != nil && ctx.Err() == nil {
			e.unavailable(w, hd, err)
			return
		}
		if n == 0 {
			writeEmpty()
			emptyOnRead()
			return
		}
	}
	sig := signalIndex(signal)
	var (
		started bool
		end     uint64
		count   int64
		pending int
		buf     []byte
		werr    error
	)
	err = e.svc.scan(ctx, scanOpts{stream: name, lo: first, hi: last, filter: filter}, func(m jetstream.Msg, seq uint64) (bool, error) {
		c, cerr := chunkOf(m)
		if match != nil && !match(c.Tag) {
			return true, nil
		}
		if !started {
			started = true
			end = last
			if contiguous && sp.limit > 0 {
				end = min(end, seq+uint64(sp.limit)-1)
			}
			hd.set("Content-Type", "application/json")
			hd.set(hdrNextID, strconv.FormatUint(state.LastSeq, 10))
			hd.set(hdrStartID, strconv.FormatUint(seq-1, 10))
			hd.set(hdrEndID, strconv.FormatUint(end-1, 10))
			e.cors(hd, true)
			w.WriteHeader(http.StatusOK)
			flush(w) // chunked from the start, as documented
			if !reads {
				return false, nil // HEAD: the headers are the answer
			}
		}
		if seq > end {
			return false, nil
		}
		var rerr error
		buf, rerr = e.rend.render(buf[:0], v1, signal, c)
		if cerr != nil {
			rerr = cerr
		}
		if rerr != nil {
			e.renderFailed(signal, seq-1, c, rerr)
		}
		if _, werr = w.Write(buf); werr != nil {
			return false, werr
		}
		e.chunks[sig].Add(1)
		e.bytes[sig].Add(uint64(len(buf)))
		if pending += len(buf); pending >= flushEvery {
			flush(w)
			pending = 0
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not keep a huge buffer for the small chunks after it
		}
		count++
		return !(sp.limit > 0 && count >= sp.limit) && seq < end, nil
	})
	if !started {
		if err != nil && ctx.Err() == nil {
			e.unavailable(w, hd, err)
			return
		}
		writeEmpty() // the chunks were evicted meanwhile
		if err == nil {
			emptyOnRead()
		}
		return
	}
	flush(w)
	if err == nil && werr == nil {
		emptyOnRead()
	} else if ctx.Err() == nil && werr == nil {
		e.svc.log.Warn("vivo: read ended early", "exporter", e.name, "signal", signal, "error", err)
	}
}

// prescan finds the first and last chunk a filtered read returns, reading
// headers only.
func (e *exporter) prescan(ctx context.Context, name, filter string, sp span, match func(string) bool) (first, last uint64, n int64, err error) {
	err = e.svc.scan(ctx, scanOpts{stream: name, lo: sp.lo, hi: sp.hi, filter: filter, headersOnly: true}, func(m jetstream.Msg, seq uint64) (bool, error) {
		if c, _ := chunkOf(m); match != nil && !match(c.Tag) {
			return true, nil
		}
		if n == 0 {
			first = seq
		}
		last = seq
		n++
		return !(sp.limit > 0 && n >= sp.limit), nil
	})
	return first, last, n, err
}

// follow streams chunks as they arrive until the client leaves, the stage
// stops, or to/limit is reached: NDJSON, or Server-Sent Events (one event
// per chunk, id = chunk id, one data line per rendered line).
func (e *exporter) follow(w http.ResponseWriter, r *http.Request, hd headers, q query, sp span, state jetstream.StreamState,
	signal, name string, st jetstream.Stream, filter string, match func(string) bool) {
	ctx := r.Context()
	e.follows.Add(1)
	defer e.follows.Add(-1)
	if q.sse {
		hd.set("Content-Type", "text/event-stream")
		hd.set("Cache-Control", "no-cache")
		hd.set("X-Accel-Buffering", "no")
	} else {
		hd.set("Content-Type", "application/json")
	}
	hd.set(hdrNextID, strconv.FormatUint(state.LastSeq, 10))
	e.cors(hd, true)
	w.WriteHeader(http.StatusOK)
	if q.sse {
		_, _ = io.WriteString(w, "retry: 2000\n\n")
	}
	flush(w)
	if r.Method == http.MethodHead {
		return
	}
	sig := signalIndex(signal)
	var buf, sse []byte
	var count int64
	onIdle := func() error {
		if !q.sse {
			return nil
		}
		if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
			return err
		}
		flush(w)
		return nil
	}
	err := e.svc.scan(ctx, scanOpts{stream: name, lo: sp.lo, hi: sp.hi, filter: filter, follow: true, idle: keepaliveEvery, onIdle: onIdle},
		func(m jetstream.Msg, seq uint64) (bool, error) {
			c, cerr := chunkOf(m)
			if match != nil && !match(c.Tag) {
				return true, nil
			}
			var rerr error
			buf, rerr = e.rend.render(buf[:0], q.v1, signal, c)
			if cerr != nil {
				rerr = cerr
			}
			if rerr != nil {
				e.renderFailed(signal, seq-1, c, rerr)
			}
			out := buf
			if q.sse {
				sse = appendSSE(sse[:0], seq-1, buf)
				out = sse
			}
			if _, err := w.Write(out); err != nil {
				return false, err
			}
			flush(w)
			e.chunks[sig].Add(1)
			e.bytes[sig].Add(uint64(len(buf)))
			if e.set.EmptyStreamOnRead {
				e.purge(st, signal, seq+1)
			}
			count++
			return !(sp.limit > 0 && count >= sp.limit), nil
		})
	if err != nil && ctx.Err() == nil {
		e.svc.log.Debug("vivo: follower ended", "exporter", e.name, "signal", signal, "error", err)
	}
}

// appendSSE frames one rendered chunk as a Server-Sent Event.
func appendSSE(b []byte, id uint64, rendered []byte) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '\n')
	for len(rendered) > 0 {
		line := rendered
		if i := bytes.IndexByte(rendered, '\n'); i >= 0 {
			line, rendered = rendered[:i], rendered[i+1:]
		} else {
			rendered = nil
		}
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}
