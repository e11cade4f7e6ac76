package vivo

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	vivoout "github.com/floe-io/floe/internal/plugins/output/vivo"
)

// renderer turns a chunk into the JSON an endpoint serves. Every rendering
// ends with a newline.
type renderer struct {
	json event.JSONOptions
}

// appendSeedLogs renders a logs chunk as the documented API does: one line
// per event, [[<time ns>,{"_tag":"<tag>",<metadata>…}],{<record>}]. Group
// markers are not events.
func (r *renderer) appendSeedLogs(b []byte, c *chunk.Chunk) ([]byte, error) {
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		if raw.Kind() != event.KindRecord {
			continue
		}
		ev, err := raw.Decode()
		if err != nil {
			return b, err
		}
		b = append(b, "[["...)
		b = strconv.AppendUint(b, uint64(ev.Time.UnixNano()), 10)
		meta := make(event.Map, 0, 1+len(ev.Meta))
		meta = append(meta, event.KV{Key: "_tag", Value: c.Tag})
		meta = append(meta, ev.Meta...)
		b = append(b, ',')
		b = event.AppendJSON(b, meta, r.json)
		b = append(b, "],"...)
		b = event.AppendJSON(b, ev.Body, r.json)
		b = append(b, "]\n"...)
	}
	return b, it.Err()
}

// group is the group an event belongs to: the offset of its GROUP_START
// marker (-1: none) and that marker's metadata and attributes.
type group struct {
	off   int
	meta  event.Map
	attrs event.Map
}

// appendV1Logs renders a logs chunk as current upstream does (format_logs):
// {"source_type":…,"source_name":…,"tag":…,"records":[[[ns,{meta}],{body}],…]}
// plus "otlp" or "flb_group" when every record belongs to the same group.
// On a decode error the records before it are kept and the error returned.
func (r *renderer) appendV1Logs(b []byte, c *chunk.Chunk) ([]byte, error) {
	b = append(b, `{"source_type":`...)
	b = event.AppendJSONString(b, vivoout.SourceType(c.Source), r.json)
	b = append(b, `,"source_name":`...)
	b = event.AppendJSONString(b, c.Source, r.json)
	b = append(b, `,"tag":`...)
	b = event.AppendJSONString(b, c.Tag, r.json)
	b = append(b, `,"records":[`...)
	cur := group{off: -1}
	var common *group
	mixed, n := false, 0
	it := event.NewIter(c.Data)
	var derr error
	for it.Next() {
		raw := it.Event()
		switch raw.Kind() {
		case event.KindGroupStart:
			ev, err := raw.Decode()
			if err != nil {
				derr = err
			}
			cur = group{off: raw.Offset, meta: ev.Meta, attrs: ev.Body}
			continue
		case event.KindGroupEnd:
			cur = group{off: -1}
			continue
		}
		if derr != nil {
			break
		}
		ev, err := raw.Decode()
		if err != nil {
			derr = err
			break
		}
		if n > 0 {
			b = append(b, ',')
		}
		switch {
		case n == 0:
			g := cur
			common = &g
		case common == nil || common.off != cur.off:
			mixed = true
		}
		n++
		b = append(b, "[["...)
		b = strconv.AppendUint(b, uint64(ev.Time.UnixNano()), 10)
		b = append(b, ',')
		b = appendMap(b, ev.Meta, r.json)
		b = append(b, "],"...)
		b = appendMap(b, ev.Body, r.json)
		b = append(b, ']')
	}
	if derr == nil {
		derr = it.Err()
	}
	b = append(b, ']')
	if n > 0 && !mixed && common != nil && common.off >= 0 {
		if s, ok := common.meta.Get("schema"); ok && isString(s, "otlp") {
			b = append(b, `,"otlp":{`...)
			first := true
			for _, k := range []string{"resource", "scope"} {
				if v, ok := common.attrs.Get(k); ok {
					if !first {
						b = append(b, ',')
					}
					first = false
					b = event.AppendJSONString(b, k, r.json)
					b = append(b, ':')
					b = event.AppendJSON(b, v, r.json)
				}
			}
			b = append(b, '}')
		} else {
			b = append(b, `,"flb_group":{"metadata":`...)
			b = appendMap(b, common.meta, r.json)
			b = append(b, `,"body":`...)
			b = appendMap(b, common.attrs, r.json)
			b = append(b, '}')
		}
	}
	return append(b, "}\n"...), derr
}

func appendMap(b []byte, m event.Map, o event.JSONOptions) []byte {
	if m == nil {
		return append(b, "{}"...)
	}
	return event.AppendJSON(b, m, o)
}

func isString(v any, s string) bool {
	switch v := v.(type) {
	case string:
		return v == s
	case []byte:
		return string(v) == s
	}
	return false
}

var errEmptyPayload = errors.New("empty payload")

// appendOTLP renders a metrics or traces chunk (OTLP protobuf) as OTLP JSON
// on one line.
func appendOTLP(b []byte, signal string, data []byte) ([]byte, error) {
	if len(data) == 0 {
		return b, errEmptyPayload
	}
	var js []byte
	var err error
	switch signal {
	case chunk.Metrics:
		req := pmetricotlp.NewExportRequest()
		if err = req.UnmarshalProto(data); err == nil {
			js, err = req.MarshalJSON()
		}
	case chunk.Traces:
		req := ptraceotlp.NewExportRequest()
		if err = req.UnmarshalProto(data); err == nil {
			js, err = req.MarshalJSON()
		}
	default:
		return b, fmt.Errorf("no OTLP rendering for %s", signal)
	}
	if err != nil {
		return b, fmt.Errorf("%s payload is not OTLP: %w", signal, err)
	}
	// Compact already; a newline inside would break the one-per-line framing.
	js = bytes.ReplaceAll(js, []byte{'\n'}, nil)
	b = append(b, js...)
	return append(b, '\n'), nil
}

// render renders one chunk for an endpoint generation.
func (r *renderer) render(b []byte, v1 bool, signal string, c *chunk.Chunk) ([]byte, error) {
	if signal != chunk.Logs {
		return appendOTLP(b, signal, c.Data)
	}
	if v1 {
		return r.appendV1Logs(b, c)
	}
	return r.appendSeedLogs(b, c)
}
