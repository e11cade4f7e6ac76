package vivo

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// query is a stream request's range. Both API generations end up here.
type query struct {
	v1 bool
	// v1: atol values with upstream's defaults (-1 = unset).
	// seed: -1 when absent or not a non-negative integer.
	from, to, limit int64
	pattern         string // ?tag=: a Match pattern; "" = every chunk
	follow          bool
	sse             bool
	lastEventID     int64 // Last-Event-ID of a reconnecting EventSource; -1 = none
}

// parseQuery reads a request's query string.
//
// /api/v1 (upstream's stream_get_query_properties): from=, to= and limit=
// are found by substring search anywhere in the raw query (so "auto=5" sets
// to) and parsed with atol: leading white space, a sign, digits up to the
// first other character; non-numeric gives 0. Defaults are -1.
//
// The documented API (/logs, …): proper query parameters; a value that is
// not a non-negative integer is ignored, as if the parameter were absent
// (whole stream, no upper bound, no limit).
//
// Both: ?tag=<Match pattern>, ?follow=1 (also true/on/yes), and Server-Sent
// Events when the client accepts text/event-stream.
func parseQuery(r *http.Request, v1 bool) query {
	q := query{v1: v1, from: -1, to: -1, limit: -1, lastEventID: -1}
	raw := r.URL.RawQuery
	vals, _ := url.ParseQuery(raw) // keeps what parsed
	if v1 {
		q.from = substrAtol(raw, "from=")
		q.to = substrAtol(raw, "to=")
		q.limit = substrAtol(raw, "limit=")
	} else {
		q.from = nonNegative(vals.Get("from"))
		q.to = nonNegative(vals.Get("to"))
		q.limit = nonNegative(vals.Get("limit"))
	}
	q.pattern = vals.Get("tag")
	switch strings.ToLower(vals.Get("follow")) {
	case "1", "true", "on", "yes":
		q.follow = true
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		q.sse, q.follow = true, true
	}
	if id := nonNegative(r.Header.Get("Last-Event-ID")); id >= 0 && q.sse {
		q.lastEventID = id
	}
	return q
}

func substrAtol(raw, key string) int64 {
	i := strings.Index(raw, key)
	if i < 0 {
		return -1
	}
	return atol(raw[i+len(key):])
}

// atol is C's atol (strtol base 10, clamped to the long range).
func atol(s string) int64 {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var v uint64
	over := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if v > (math.MaxUint64-9)/10 {
			over = true
			continue
		}
		v = v*10 + uint64(s[i]-'0')
	}
	switch {
	case neg && (over || v > 1<<63):
		return math.MinInt64
	case neg:
		return -int64(v)
	case over || v > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(v)
}

func nonNegative(s string) int64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return -1
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return -1
	}
	return v
}

// span is what a request reads, in stream sequences (id = seq − 1).
type span struct {
	lo    uint64 // first sequence wanted
	hi    uint64 // last sequence wanted; 0 = no bound (follow)
	limit int64  // chunks; 0 = no limit
	empty bool   // nothing can be selected
}

// resolve maps a query onto the stream's current state. st.LastSeq is the
// snapshot a one-shot read stops at.
func (q query) resolve(st jetstream.StreamState) span {
	sp := span{lo: max(1, st.FirstSeq)}
	if q.from >= 0 { // v1: negative values skip nothing
		sp.lo = max(sp.lo, uint64(q.from)+1)
	}
	if q.lastEventID >= 0 {
		sp.lo = max(sp.lo, uint64(q.lastEventID)+2)
	}
	var toBound uint64 // sequence; 0 = none
	if q.v1 {
		switch {
		case q.to == -1 || q.to == 0: // 0 means no upper bound (upstream quirk)
		case q.to < 0:
			sp.empty = true // every id is above it
		default:
			toBound = uint64(q.to) + 1
		}
	} else if q.to >= 0 {
		// Documented: "if not found, the whole stream will be provided".
		// A follower waits for an id still to come, so only an id already
		// gone (below the oldest kept) counts as not found for it.
		seq := uint64(q.to) + 1
		switch {
		case q.follow && seq >= max(st.FirstSeq, 1):
			toBound = seq
		case st.Msgs > 0 && seq >= st.FirstSeq && seq <= st.LastSeq:
			toBound = seq
		}
	}
	if q.limit > 0 {
		sp.limit = q.limit
	}
	if q.follow {
		sp.hi = toBound
		if toBound != 0 && sp.lo > toBound {
			sp.empty = true
		}
		return sp
	}
	sp.hi = st.LastSeq
	if toBound != 0 {
		sp.hi = min(sp.hi, toBound)
	}
	if st.Msgs == 0 || sp.lo > sp.hi {
		sp.empty = true
	}
	return sp
}
