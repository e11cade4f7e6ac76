package pluginsdk

import (
	"time"

	"github.com/floe-io/floe/internal/event"
)

// Event is one decoded log event.
type Event struct {
	Time     time.Time
	Metadata map[string]any // v2 metadata; empty for v1 events
	Record   map[string]any
	// Group is set on OpenTelemetry group markers (start and end); their
	// Metadata and Record carry the resource and scope.
	Group bool
}

// Events decodes a logs chunk: v1 `[TIME, RECORD]` and v2
// `[[TIME, METADATA], RECORD]` events, TIME as EventTime, integer or float.
// Strings come out as Go strings, binary values as []byte, nested maps as
// map[string]any. An error names the byte offset of the bad event.
func (c Chunk) Events() ([]Event, error) {
	var out []Event
	it := event.NewIter(c.Data)
	for it.Next() {
		raw := it.Event()
		ev, err := raw.Decode()
		if err != nil {
			return out, err
		}
		out = append(out, Event{
			Time:     ev.Time.Std(),
			Metadata: toMap(ev.Meta),
			Record:   toMap(ev.Body),
			Group:    raw.Kind() != event.KindRecord,
		})
	}
	return out, it.Err()
}

func toMap(m event.Map) map[string]any {
	out := make(map[string]any, len(m))
	for _, kv := range m {
		out[kv.Key] = toValue(kv.Value)
	}
	return out
}

func toValue(v any) any {
	switch x := v.(type) {
	case event.Map:
		return toMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toValue(e)
		}
		return out
	}
	return v
}
