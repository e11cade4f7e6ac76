// Package syslog is Fluent Bit's syslog output (out_syslog): every record
// becomes one syslog message, RFC 5424 (the default) or RFC 3164, sent over
// UDP (one datagram each), TCP or TLS (each message followed by a newline,
// RFC 6587 non-transparent framing).
//
// The header fields come from the record through the syslog_*_key keys
// (severity, facility, hostname, appname, procid, msgid, message), each
// falling back to its syslog_*_preset; syslog_sd_key (may repeat) names keys
// whose map value becomes a structured data element [KEY k="v" ...] (RFC 5424
// only). Severity and facility may be numbers or names (err, warning, local0
// ...). A message is cut to syslog_maxsize bytes (default 1024 for rfc3164,
// 2048 for rfc5424), as upstream.
//
//	rfc5424  <PRI>1 2006-01-02T15:04:05.000000Z HOST APP PROCID MSGID SD MSG
//	rfc3164  <PRI>Jan  2 15:04:05 HOST APP[PROCID]: MSG
//
// Answers: a stream has no refusal, so every send failure is RETRY; over UDP
// a datagram that is not received is lost without notice, as with any
// syslog sender. A chunk that does not decode is ERROR.
package syslog

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/format"
	"github.com/floe-io/floe/internal/plugins/output/internal/netout"
)

// Spec describes the syslog output.
func Spec() *plugin.Spec {
	keys := []plugin.Key{
		{Name: "host", Default: "127.0.0.1", Desc: "address of the syslog server"},
		{Name: "port", Type: plugin.Int, Default: "514", Desc: "port of the syslog server"},
		{Name: "mode", Default: "udp", Enum: []string{"udp", "tcp", "tls"}, Desc: "transport: udp, tcp or tls"},
		{Name: "syslog_format", Default: "rfc5424", Enum: []string{"rfc5424", "rfc3164"}, Desc: "message format"},
		{Name: "syslog_maxsize", Type: plugin.Int, Desc: "largest message in bytes (default 1024 for rfc3164, 2048 for rfc5424)"},
		{Name: "syslog_severity_key", Desc: "record key holding the severity"},
		{Name: "syslog_severity_preset", Type: plugin.Int, Default: "6", Desc: "severity when the key is missing"},
		{Name: "syslog_facility_key", Desc: "record key holding the facility"},
		{Name: "syslog_facility_preset", Type: plugin.Int, Default: "1", Desc: "facility when the key is missing"},
		{Name: "syslog_hostname_key", Desc: "record key holding the hostname"},
		{Name: "syslog_hostname_preset", Desc: "hostname when the key is missing"},
		{Name: "syslog_appname_key", Desc: "record key holding the application name"},
		{Name: "syslog_appname_preset", Desc: "application name when the key is missing"},
		{Name: "syslog_procid_key", Desc: "record key holding the process id"},
		{Name: "syslog_procid_preset", Desc: "process id when the key is missing"},
		{Name: "syslog_msgid_key", Desc: "record key holding the message id"},
		{Name: "syslog_msgid_preset", Desc: "message id when the key is missing"},
		{Name: "syslog_sd_key", Multi: true, Desc: "record key whose map becomes structured data; may repeat"},
		{Name: "syslog_message_key", Desc: "record key holding the message"},
		{Name: "allow_longer_sd_id", Type: plugin.Bool, Default: "off", Desc: "allow SD-IDs and parameter names over 32 bytes"},
	}
	return &plugin.Spec{
		Kind:      plugin.KindOutput,
		Name:      "syslog",
		Desc:      "Syslog",
		Keys:      append(keys, netout.Keys()...),
		NewOutput: New,
	}
}

// Output sends records as syslog messages.
type Output struct {
	pool    *netout.Pool
	udp     bool
	rfc3164 bool
	maxsize int
	keys    fields // record keys
	preset  fields
	sevPre  int
	facPre  int
	sdKeys  []string
	longSD  bool
}

type fields struct {
	severity, facility, hostname, appname, procid, msgid, message string
}

// New builds a syslog output.
func New(_ context.Context, _ plugin.Settings, p *plugin.Props) (plugin.Output, error) {
	o := &Output{}
	host, addr, err := netout.HostPort(p, "host", "port")
	if err != nil {
		return nil, err
	}
	mode := strings.ToLower(strings.TrimSpace(p.String("mode")))
	if p.Bool("tls") && mode != "udp" {
		mode = "tls"
	}
	d, err := netout.New(p, host)
	if err != nil {
		return nil, err
	}
	network := "tcp"
	switch mode {
	case "udp":
		o.udp, network, d.TLS = true, "udp", nil
	case "tcp":
		d.TLS = nil
	case "tls":
		if d.TLS == nil {
			tc, err := netout.ClientTLS(netout.ClientTLSOptions{Verify: p.Bool("tls.verify"), ServerName: host,
				CAFile: p.String("tls.ca_file"), CertFile: p.String("tls.crt_file"), KeyFile: p.String("tls.key_file")})
			if err != nil {
				return nil, p.Errorf("mode", "%v", err)
			}
			d.TLS = tc
		}
	default:
		return nil, p.Errorf("mode", "invalid mode %q (udp, tcp, tls)", p.String("mode"))
	}
	o.pool = &netout.Pool{Dialer: d, Network: network, Addr: addr}

	switch f := strings.ToLower(strings.TrimSpace(p.String("syslog_format"))); f {
	case "rfc5424":
		o.maxsize = 2048
	case "rfc3164":
		o.rfc3164, o.maxsize = true, 1024
	default:
		return nil, p.Errorf("syslog_format", "invalid syslog_format %q (rfc5424, rfc3164)", p.String("syslog_format"))
	}
	if p.Has("syslog_maxsize") {
		if n := p.Int("syslog_maxsize"); n > 0 {
			o.maxsize = n
		} else {
			return nil, p.Errorf("syslog_maxsize", "syslog_maxsize must be a positive number of bytes")
		}
	}
	if o.udp && o.maxsize > 65507 {
		return nil, p.Errorf("syslog_maxsize", "syslog_maxsize %d is larger than a UDP datagram (65507)", o.maxsize)
	}
	o.sevPre, o.facPre = p.Int("syslog_severity_preset"), p.Int("syslog_facility_preset")
	if o.sevPre < 0 || o.sevPre > 7 {
		return nil, p.Errorf("syslog_severity_preset", "severity %d is not 0-7", o.sevPre)
	}
	if o.facPre < 0 || o.facPre > 23 {
		return nil, p.Errorf("syslog_facility_preset", "facility %d is not 0-23", o.facPre)
	}
	get := func(k string) string { return strings.TrimSpace(p.String(k)) }
	o.keys = fields{get("syslog_severity_key"), get("syslog_facility_key"), get("syslog_hostname_key"),
		get("syslog_appname_key"), get("syslog_procid_key"), get("syslog_msgid_key"), get("syslog_message_key")}
	o.preset = fields{hostname: get("syslog_hostname_preset"), appname: get("syslog_appname_preset"),
		procid: get("syslog_procid_preset"), msgid: get("syslog_msgid_preset")}
	for _, k := range p.All("syslog_sd_key") {
		if k = strings.TrimSpace(k); k != "" {
			o.sdKeys = append(o.sdKeys, k)
		}
	}
	o.longSD = p.Bool("allow_longer_sd_id")
	return o, nil
}

// Flush sends every record of the chunk.
func (o *Output) Flush(ctx context.Context, c *chunk.Chunk) error {
	if c.Signal() != chunk.Logs {
		return plugin.Permanent(fmt.Errorf("syslog output: %s chunks are not supported (logs only)", c.Signal()))
	}
	var msgs [][]byte
	var stream []byte
	err := format.EachRecord(c.Data, func(r *format.Record) error {
		m, err := o.AppendMessage(nil, r.Time, r.Body)
		if err != nil {
			return err
		}
		if o.udp {
			msgs = append(msgs, m)
		} else {
			stream = append(append(stream, m...), '\n')
		}
		return nil
	})
	if err != nil {
		return plugin.Permanent(fmt.Errorf("syslog output: chunk %s: %w", c.ID, err))
	}
	if !o.udp && len(stream) > 0 {
		msgs = [][]byte{stream}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := o.pool.Write(ctx, msgs...); err != nil {
		return fmt.Errorf("syslog output: %w", err)
	}
	return nil
}

// Close drops the idle connections.
func (o *Output) Close(context.Context) error {
	o.pool.Close()
	return nil
}

// msg is one record's syslog fields.
type msg struct {
	severity, facility                        int
	hostname, appname, procid, msgid, message string
	hasMessage                                bool
	sd                                        []byte
}

// AppendMessage renders one record (a MessagePack map) as a syslog message,
// without framing.
func (o *Output) AppendMessage(dst []byte, t event.Time, body []byte) ([]byte, error) {
	m := msg{severity: o.sevPre, facility: o.facPre, hostname: o.preset.hostname, appname: o.preset.appname,
		procid: o.preset.procid, msgid: o.preset.msgid}
	var sd []byte
	sdVals := map[string][]byte{}
	err := format.Pairs(body, func(kb, v []byte) bool {
		ks, ok := format.Str(kb)
		if !ok {
			return true
		}
		k := string(ks)
		switch k {
		case "":
		case o.keys.severity:
			if n, ok := level(v, severities, 7); ok {
				m.severity = n
			}
		case o.keys.facility:
			if n, ok := level(v, facilities, 23); ok {
				m.facility = n
			}
		}
		if k == "" {
			return true
		}
		if k == o.keys.hostname {
			m.hostname = text(v, m.hostname)
		}
		if k == o.keys.appname {
			m.appname = text(v, m.appname)
		}
		if k == o.keys.procid {
			m.procid = text(v, m.procid)
		}
		if k == o.keys.msgid {
			m.msgid = text(v, m.msgid)
		}
		if k == o.keys.message {
			if s := text(v, "\x00"); s != "\x00" {
				m.message, m.hasMessage = s, true
			}
		}
		for _, sk := range o.sdKeys {
			if sk == k {
				sdVals[k] = v
			}
		}
		return true
	})
	if err != nil {
		return dst, err
	}
	if !o.rfc3164 {
		for _, sk := range o.sdKeys { // in configuration order
			if v, ok := sdVals[sk]; ok {
				sd = o.appendSD(sd, sk, v)
			}
		}
	}
	m.sd = sd
	start := len(dst)
	if o.rfc3164 {
		dst = appendRFC3164(dst, t, &m)
	} else {
		dst = appendRFC5424(dst, t, &m)
	}
	if len(dst)-start > o.maxsize {
		dst = dst[:start+o.maxsize]
	}
	return dst, nil
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func appendRFC5424(dst []byte, t event.Time, m *msg) []byte {
	tm := time.Unix(t.Sec, int64(t.Nsec)).UTC()
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(m.facility<<3|m.severity), 10)
	dst = append(dst, ">1 "...)
	dst = tm.AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, ' ')
	dst = appendField(dst, m.hostname, 255)
	dst = append(dst, ' ')
	dst = appendField(dst, m.appname, 48)
	dst = append(dst, ' ')
	dst = appendField(dst, m.procid, 128)
	dst = append(dst, ' ')
	dst = appendField(dst, m.msgid, 32)
	dst = append(dst, ' ')
	if len(m.sd) > 0 {
		dst = append(dst, m.sd...)
	} else {
		dst = append(dst, '-')
	}
	if m.hasMessage {
		dst = append(dst, ' ')
		dst = append(dst, m.message...)
	}
	return dst
}

func appendRFC3164(dst []byte, t event.Time, m *msg) []byte {
	tm := time.Unix(t.Sec, int64(t.Nsec)).UTC()
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(m.facility<<3|m.severity), 10)
	dst = append(dst, '>')
	dst = append(dst, months[tm.Month()-1]...)
	dst = fmt.Appendf(dst, " %2d %02d:%02d:%02d ", tm.Day(), tm.Hour(), tm.Minute(), tm.Second())
	if m.hostname != "" {
		dst = append(append(dst, m.hostname...), ' ')
	}
	if m.appname != "" {
		dst = append(dst, m.appname...)
		if m.procid != "" {
			dst = append(append(append(dst, '['), m.procid...), ']')
		}
		dst = append(dst, ": "...)
	}
	if m.hasMessage {
		dst = append(dst, m.message...)
	}
	return dst
}

// appendField writes an RFC 5424 header field: printable ASCII without
// spaces, cut to max bytes, "-" when empty.
func appendField(dst []byte, s string, max int) []byte {
	n := 0
	for i := 0; i < len(s) && n < max; i++ {
		if c := s[i]; c > ' ' && c < 0x7f {
			dst = append(dst, c)
			n++
		}
	}
	if n == 0 {
		dst = append(dst, '-')
	}
	return dst
}

// appendSD renders a map as [ID name="value" ...], escaping ", \ and ].
func (o *Output) appendSD(dst []byte, id string, v []byte) []byte {
	if len(v) == 0 || !(v[0]&0xf0 == 0x80 || v[0] == 0xde || v[0] == 0xdf) {
		return dst // not a map: no element, as upstream
	}
	limit := 32
	if o.longSD {
		limit = 255
	}
	dst = append(dst, '[')
	dst = appendSDName(dst, id, limit)
	_ = format.Pairs(v, func(kb, vb []byte) bool {
		ks, ok := format.Str(kb)
		if !ok {
			return true
		}
		dst = append(dst, ' ')
		dst = appendSDName(dst, string(ks), limit)
		dst = append(dst, '=', '"')
		for _, c := range []byte(text(vb, "")) {
			if c == '"' || c == '\\' || c == ']' {
				dst = append(dst, '\\')
			}
			dst = append(dst, c)
		}
		dst = append(dst, '"')
		return true
	})
	return append(dst, ']')
}

func appendSDName(dst []byte, s string, max int) []byte {
	n := 0
	for i := 0; i < len(s) && n < max; i++ {
		if c := s[i]; c > ' ' && c < 0x7f && c != '=' && c != ']' && c != '"' {
			dst = append(dst, c)
			n++
		}
	}
	return dst
}

// text renders a scalar value; def for maps, arrays and nil.
func text(v []byte, def string) string {
	if s, ok := format.Str(v); ok {
		return string(s)
	}
	x, _, err := event.Value(v, 0)
	if err != nil {
		return def
	}
	switch x := x.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return string(x)
	}
	return def
}

var severities = map[string]int{"emerg": 0, "panic": 0, "alert": 1, "crit": 2, "critical": 2, "err": 3, "error": 3,
	"warning": 4, "warn": 4, "notice": 5, "info": 6, "informational": 6, "debug": 7}

var facilities = map[string]int{"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
	"news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21,
	"local6": 22, "local7": 23}

// level reads a severity or facility: a number in 0..max, or a name.
func level(v []byte, names map[string]int, max int) (int, bool) {
	s := strings.ToLower(strings.TrimSpace(text(v, "")))
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= max
	}
	n, ok := names[s]
	return n, ok
}
