package kubernetes

import (
	"context"
	"fmt"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	ra "github.com/floe-io/floe/internal/plugins/filter/recordaccessor"
)

// merge outcomes of the "log" field, as Fluent Bit's merge_log_handler.
const (
	mergeUnset  = iota // no "log" string or map (or merge_log off)
	mergeNone          // "log" could not be parsed: kept as it is
	mergeParsed        // "log" parsed into fields
	mergeMap           // "log" already a map
)

type stream int

const (
	streamNone stream = iota // no "stream" key, or another value
	streamStdout
	streamStderr
)

// scratch is one FilterChunk call's reusable buffers.
type scratch struct {
	pairs, merged []ra.Pair
	parsed        []byte
}

// FilterChunk enriches the chunk's records. A chunk whose tag names no pod
// is passed on as it is.
func (f *Filter) FilterChunk(ctx context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	cm, ok := f.lookup(ctx, c.Tag)
	if !ok {
		return []*chunk.Chunk{c}, nil
	}
	p := &cm.props
	needStream := p.stdoutExclude != unset || p.stderrExclude != unset ||
		(f.mergeLog && (p.stdoutParser != "" || p.stderrParser != ""))
	if cm.kube == nil && cm.ns == nil && !f.mergeLog && !needStream {
		if cm.failed {
			n := c.Records
			if n == 0 {
				n, _ = event.Count(c.Data)
			}
			f.unenrichedRecs.Add(uint64(n))
		}
		return []*chunk.Chunk{c}, nil
	}
	extra := 0
	if cm.kube != nil {
		extra++
	}
	if cm.ns != nil {
		extra++
	}
	perRecord := len(cm.kube) + len(cm.ns) + 32
	out := make([]byte, 0, len(c.Data)+max(c.Records, 1)*perRecord)
	var sc scratch
	n := 0
	it := event.NewIter(c.Data)
	for it.Next() {
		ev := it.Event()
		if ev.Kind() != event.KindRecord {
			out = append(out, ev.Raw...)
			continue
		}
		var parser plugin.Parser
		if needStream {
			switch streamOf(ev.Body) {
			case streamStdout:
				if p.stdoutExclude == yes {
					continue
				}
				parser = p.stdoutParserImpl
			case streamStderr:
				if p.stderrExclude == yes {
					continue
				}
				parser = p.stderrParserImpl
			default:
				if p.stdoutExclude == yes && p.stderrExclude == yes {
					continue
				}
				if p.stdoutParser != "" && p.stdoutParser == p.stderrParser {
					parser = p.stdoutParserImpl
				}
			}
		}
		n++
		if !f.mergeLog {
			cnt, off, ok := ra.MapHeader(ev.Body)
			if !ok {
				return nil, fmt.Errorf("record at byte offset %d: body is not a map", ev.Offset)
			}
			out = appendHead(out, ev.Time, ev.Meta)
			out = event.AppendMapHeader(out, cnt+extra)
			out = append(out, ev.Body[off:]...)
			out = appendMeta(out, &cm)
			continue
		}
		var err error
		out, err = f.mergeRecord(out, ev, parser, &cm, extra, &sc)
		if err != nil {
			return nil, fmt.Errorf("record at byte offset %d: %w", ev.Offset, err)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if cm.failed {
		f.unenrichedRecs.Add(uint64(n))
	}
	if n == 0 {
		return nil, nil
	}
	return []*chunk.Chunk{{Tag: c.Tag, Type: c.Type, Records: n, Data: out, Source: c.Source}}, nil
}

func appendHead(b []byte, t event.Time, meta []byte) []byte {
	b = append(b, 0x92, 0x92)
	b = t.AppendMsgpack(b)
	return append(b, meta...)
}

func appendMeta(b []byte, cm *chunkMeta) []byte {
	if cm.kube != nil {
		b = event.AppendString(b, "kubernetes")
		b = append(b, cm.kube...)
	}
	if cm.ns != nil {
		b = event.AppendString(b, "kubernetes_namespace")
		b = append(b, cm.ns...)
	}
	return b
}

// streamOf reads the first "stream" key of a body.
func streamOf(body []byte) stream {
	n, off, ok := ra.MapHeader(body)
	if !ok {
		return streamNone
	}
	for range n {
		kEnd, err := event.Skip(body, off)
		if err != nil {
			return streamNone
		}
		vEnd, err := event.Skip(body, kEnd)
		if err != nil {
			return streamNone
		}
		if k, ok := ra.Str(body[off:kEnd]); ok && string(k) == "stream" {
			v, _ := ra.Str(body[kEnd:vEnd])
			switch string(v) {
			case "stdout":
				return streamStdout
			case "stderr":
				return streamStderr
			}
			return streamNone
		}
		off = vEnd
	}
	return streamNone
}

func isMap(v []byte) bool {
	_, _, ok := ra.MapHeader(v)
	return ok
}

// mergeRecord writes one record with its "log" merged, as Fluent Bit's
// pack_map_content: the original fields (without "log" when keep_log is
// off and it merged), the merged fields (under merge_log_key when set and
// there are some), then kubernetes and kubernetes_namespace.
func (f *Filter) mergeRecord(out []byte, ev *event.RawEvent, parser plugin.Parser, cm *chunkMeta, extra int, sc *scratch) ([]byte, error) {
	var err error
	sc.pairs, err = ra.AppendPairs(sc.pairs[:0], ev.Body)
	if err != nil {
		return out, err
	}
	logIdx := -1
	for i, pr := range sc.pairs {
		if k, ok := ra.StrOrBin(pr.Key); ok && string(k) == "log" {
			logIdx = i
			break
		}
	}
	status := mergeUnset
	t := ev.Time
	sc.merged = sc.merged[:0]
	if logIdx >= 0 {
		v := sc.pairs[logIdx].Val
		if isMap(v) {
			status = mergeMap
			if sc.merged, err = ra.AppendPairs(sc.merged, v); err != nil {
				return out, err
			}
		} else if s, ok := ra.Str(v); ok {
			status = mergeNone
			var m []byte
			var pt event.Time
			if m, pt, ok = f.parseLog(s, parser, sc); ok {
				if sc.merged, err = ra.AppendPairs(sc.merged, m); err == nil {
					status = mergeParsed
					if pt != (event.Time{}) {
						t = pt
					}
				}
			}
		}
	}
	n := len(sc.pairs) + extra
	dropLog := logIdx >= 0 && !f.keepLog && status != mergeNone
	if dropLog {
		n--
	}
	nested := false
	if status == mergeParsed || status == mergeMap {
		switch {
		case len(sc.merged) == 0:
		case f.mergeKey != "":
			nested = true
			n++
		default:
			n += len(sc.merged)
		}
	}
	out = appendHead(out, t, ev.Meta)
	out = event.AppendMapHeader(out, n)
	for i, pr := range sc.pairs {
		if i == logIdx && dropLog {
			continue
		}
		out = append(out, pr.Key...)
		out = append(out, pr.Val...)
	}
	if len(sc.merged) > 0 && (status == mergeParsed || status == mergeMap) {
		if nested {
			out = event.AppendString(out, f.mergeKey)
			out = event.AppendMapHeader(out, len(sc.merged))
		}
		trim := status == mergeParsed && f.mergeTrim
		for _, pr := range sc.merged {
			out = append(out, pr.Key...)
			if s, ok := ra.Str(pr.Val); ok && trim {
				if n := trimSize(s); n != len(s) {
					out = event.AppendStringBytes(out, s[:n])
					continue
				}
			}
			out = append(out, pr.Val...)
		}
	}
	return appendMeta(out, cm), nil
}

// parseLog parses a "log" string with the pod's parser, else merge_parser,
// else as a JSON object (only one of them is tried). It returns the fields
// as an encoded map, and the parser's time (the current time when a parser
// found none, as Fluent Bit; zero for JSON, which keeps the record's).
func (f *Filter) parseLog(s []byte, parser plugin.Parser, sc *scratch) ([]byte, event.Time, bool) {
	if parser == nil {
		parser = f.mergeParser
	}
	if parser != nil {
		pt, m, err := parser.Parse(s)
		if err != nil {
			return nil, event.Time{}, false
		}
		if pt == (event.Time{}) {
			pt = event.Now()
		}
		sc.parsed = m.AppendMsgpack(sc.parsed[:0])
		return sc.parsed, pt, true
	}
	b, err := event.AppendFromJSON(sc.parsed[:0], s)
	if err != nil || !isMap(b) {
		return nil, event.Time{}, false
	}
	sc.parsed = b
	return b, event.Time{}, true
}

// trimSize is Fluent Bit's value_trim_size: the length of s without its
// trailing newlines and escaped "\n" / "\r" sequences (the first byte is
// never cut).
func trimSize(s []byte) int {
	size := len(s)
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == '\n' {
			size--
			continue
		}
		if s[i-1] == '\\' && (s[i] == 'n' || s[i] == 'r') {
			size -= 2
			i--
			continue
		}
		break
	}
	return size
}
