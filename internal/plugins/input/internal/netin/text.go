package netin

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/input/internal/jsonscan"
	"github.com/floe-io/floe/internal/telemetry"
)

// TextKeys are the keys of Fluent Bit's tcp and udp inputs that say how the
// stream is cut into records.
func TextKeys() []plugin.Key {
	return []plugin.Key{
		{Name: "format", Enum: []string{"json", "none"}, Default: "json",
			Desc: "json: a stream of JSON objects (arrays become {\"msg\": [...]}); none: text records cut at separator"},
		{Name: "separator", Default: `\n`, Desc: "record separator of format none (escapes \\n, \\t, \\r, \\\\ understood)"},
		{Name: "source_address_key", Desc: "key where the peer's address (tcp://HOST:PORT) is added to each record"},
	}
}

// TextFormat is how a tcp or udp input reads its bytes: Fluent Bit's
// format json or none, with an optional parser for none.
type TextFormat struct {
	JSON      bool
	Sep       []byte
	Parser    plugin.Parser
	SourceKey string
	Log       *slog.Logger
	Metrics   *telemetry.NetInputMetrics
}

// NewTextFormat reads format, separator, parser and source_address_key. A
// parser switches format json to none, as upstream does (with a warning).
func NewTextFormat(set plugin.Settings, p *plugin.Props, log *slog.Logger, m *telemetry.NetInputMetrics) (*TextFormat, error) {
	f := &TextFormat{JSON: strings.EqualFold(p.String("format"), "json"), SourceKey: p.String("source_address_key"), Log: log, Metrics: m}
	sep, err := Unescape(p.String("separator"))
	if err != nil || len(sep) == 0 {
		return nil, p.Errorf("separator", "invalid separator %q", p.String("separator"))
	}
	f.Sep = sep
	if name := p.String("parser"); name != "" {
		var ok bool
		if set.Parsers != nil {
			f.Parser, ok = set.Parsers.Lookup(name)
		}
		if !ok {
			return nil, p.Errorf("parser", "requested parser %q not found", name)
		}
		if f.JSON {
			log.Warn("'parser' requires line-delimited payloads; switching format from 'json' to 'none'")
			f.JSON = false
		}
	}
	return f, nil
}

// NewDecoder starts decoding one connection (or datagram socket) whose
// peer is src.
func (f *TextFormat) NewDecoder(src string) *TextDecoder {
	return &TextDecoder{f: f, src: src, now: event.Now,
		lines: LineDecoder{Parser: f.Parser, Key: "log", SourceKey: f.SourceKey, Metrics: f.Metrics, Log: f.Log}}
}

// TextDecoder decodes the records of one stream into its Batch.
type TextDecoder struct {
	f     *TextFormat
	src   string
	lines LineDecoder
	skip  bool // dropping bad JSON up to the next newline
	conv  []byte
	body  []byte
	now   func() event.Time
	B     Batch
}

// SetSource changes the peer recorded by source_address_key (datagrams).
func (d *TextDecoder) SetSource(src string) { d.src = src }

// Decode appends the records found at the start of buf to d.B and returns
// the bytes used; eof: buf will not grow (end of stream, or one datagram).
func (d *TextDecoder) Decode(buf []byte, eof bool) int {
	if d.f.JSON {
		return d.decodeJSON(buf, eof)
	}
	return d.decodeText(buf, eof)
}

func (d *TextDecoder) decodeText(buf []byte, eof bool) int {
	now := d.now()
	off := 0
	for off < len(buf) {
		i := bytes.Index(buf[off:], d.f.Sep)
		if i < 0 {
			if eof {
				d.line(buf[off:], now)
				off = len(buf)
			}
			break
		}
		d.line(buf[off:off+i], now)
		off += i + len(d.f.Sep)
	}
	return off
}

// line adds one text record; empty records are skipped (upstream stalls on
// them, see plugins/in_tcp/tcp_conn.c parse_payload_none).
func (d *TextDecoder) line(b []byte, now event.Time) {
	if len(bytes.Trim(b, "\r\n")) == 0 {
		return
	}
	d.lines.Add(&d.B, b, now, d.src)
}

func (d *TextDecoder) decodeJSON(buf []byte, eof bool) int {
	now := d.now()
	off := 0
	for {
		if d.skip {
			nl := bytes.IndexByte(buf[off:], '\n')
			if nl < 0 {
				off = len(buf)
				if eof {
					d.skip = false
				}
				break
			}
			off, d.skip = off+nl+1, false
		}
		i := jsonscan.SkipWS(buf, off)
		if i >= len(buf) {
			off = i
			break
		}
		end, err := jsonscan.Value(buf, i, eof)
		if errors.Is(err, jsonscan.ErrIncomplete) {
			off = i
			if eof {
				d.f.Metrics.Errors.Add(1)
				d.f.Log.Warn("incomplete JSON message at the end of the stream, dropped", "remote", d.src, "bytes", len(buf)-i)
				off = len(buf)
			}
			break
		}
		var se *jsonscan.SyntaxError
		if errors.As(err, &se) {
			d.f.Metrics.Errors.Add(1)
			d.f.Log.Warn("invalid JSON message, skipping to the next line", "remote", d.src, "error", err)
			off, d.skip = se.Off, true
			continue
		}
		d.value(buf[i:end], now)
		off = end
	}
	return off
}

// value adds one JSON value: an object is the record, an array becomes
// {"msg": array} (upstream process_pack), anything else is refused.
func (d *TextDecoder) value(js []byte, now event.Time) {
	var err error
	d.conv, err = event.AppendFromJSON(d.conv[:0], js)
	if err != nil {
		d.f.Metrics.Errors.Add(1)
		d.f.Log.Warn("invalid JSON message, skipping", "remote", d.src, "error", err)
		return
	}
	switch c := d.conv[0]; {
	case IsMap(d.conv):
		d.B.Add(now, d.conv, d.f.SourceKey, d.src)
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		d.body = event.AppendMapHeader(d.body[:0], 1)
		d.body = event.AppendString(d.body, "msg")
		d.body = append(d.body, d.conv...)
		d.B.Add(now, d.body, d.f.SourceKey, d.src)
	default:
		d.f.Metrics.Errors.Add(1)
		d.f.Log.Warn("invalid record found, it's not a JSON map or array", "remote", d.src)
	}
}

// Unescape reads a separator as flb_unescape_string does: \n, \r, \t, \\,
// \0, \a, \b, \f, \v, \" and \' stand for their bytes.
func Unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case 'a':
			out = append(out, '\a')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'v':
			out = append(out, '\v')
		case '\\', '"', '\'', '/':
			out = append(out, s[i])
		default:
			return nil, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return out, nil
}
