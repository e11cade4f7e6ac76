package netin

import (
	"log/slog"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/telemetry"
)

// LineDecoder turns one line of text into an event.
type LineDecoder struct {
	// Parser, when set, makes the record; a line it cannot parse is kept
	// as {Key: line} and counted in Metrics.Unparsed.
	Parser plugin.Parser
	Key    string // key of unparsed text: "log" (tcp, udp), "message" (syslog)
	// SourceKey, when set, adds the peer's address (source_address_key).
	SourceKey string
	// RawKey, when set, adds the line as received (syslog's raw_message_key).
	RawKey  string
	Metrics *telemetry.NetInputMetrics
	Log     *slog.Logger

	body, raw []byte
}

// Add appends the event of line to b; now stamps records without a time of
// their own.
func (d *LineDecoder) Add(b *Batch, line []byte, now event.Time, src string) {
	t := now
	d.body = d.body[:0]
	parsed := false
	if d.Parser != nil {
		pt, m, err := d.Parser.Parse(line)
		if err == nil {
			parsed = true
			if pt != (event.Time{}) {
				t = pt
			}
			d.body = m.AppendMsgpack(d.body)
		} else {
			d.Metrics.Unparsed.Add(1)
			d.Log.Warn("line does not match the parser, kept unparsed", "key", d.Key, "error", err)
			d.Log.Debug("unparsed line", "line", string(line))
		}
	}
	if !parsed {
		d.body = StringRecord(d.body, d.Key, line, "", "")
	}
	if d.RawKey != "" {
		d.raw = AppendField(d.raw[:0], d.body, d.RawKey, string(line))
		d.body, d.raw = d.raw, d.body
	}
	b.Add(t, d.body, d.SourceKey, src)
}
