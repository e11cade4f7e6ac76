package forward

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/output/internal/netout"
)

// loadUpstream reads Fluent Bit's upstream file: one [UPSTREAM] section with
// a name, and one [NODE] section per server. Node keys missing from a node
// are taken from the output's own keys (shared_key, self_hostname, tls...).
func loadUpstream(p *plugin.Props, path string) ([]*node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, p.Errorf("upstream", "%v", err)
	}
	sections, err := parseUpstream(path, string(data))
	if err != nil {
		return nil, p.Errorf("upstream", "%v", err)
	}
	base, err := netout.New(p, "")
	if err != nil {
		return nil, err
	}
	var nodes []*node
	upstreams := 0
	for _, s := range sections {
		switch strings.ToUpper(s.Header) {
		case "UPSTREAM":
			upstreams++
		case "NODE":
			n, err := upstreamNode(p, base, s, len(nodes))
			if err != nil {
				return nil, p.Errorf("upstream", "%v", err)
			}
			nodes = append(nodes, n)
		default:
			return nil, p.Errorf("upstream", "%s:%d: unexpected section [%s] (want [UPSTREAM] and [NODE])", s.File, s.Line, s.Header)
		}
	}
	if upstreams != 1 {
		return nil, p.Errorf("upstream", "%s: want one [UPSTREAM] section, found %d", path, upstreams)
	}
	if len(nodes) == 0 {
		return nil, p.Errorf("upstream", "%s: no [NODE] section", path)
	}
	return nodes, nil
}

func upstreamNode(p *plugin.Props, base *netout.Dialer, s *config.Section, i int) (*node, error) {
	get := func(k, def string) string {
		if v, ok := s.Get(k); ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	where := func(k string) string {
		f, l := s.Pos(k)
		if f == "" {
			f, l = s.File, s.Line
		}
		return fmt.Sprintf("%s:%d", f, l)
	}
	host := get("host", "127.0.0.1")
	port, err := strconv.Atoi(get("port", "24224"))
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("%s: node port %q is not a port number", where("port"), get("port", ""))
	}
	n := &node{name: get("name", fmt.Sprintf("node%d", i)), addr: net.JoinHostPort(host, strconv.Itoa(port))}
	d := *base
	if v, ok := s.Get("tls"); ok {
		on, err := config.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s: tls: %v", where("tls"), err)
		}
		d.TLS = nil
		if on {
			verify := true
			if v, ok := s.Get("tls.verify"); ok {
				if verify, err = config.ParseBool(v); err != nil {
					return nil, fmt.Errorf("%s: tls.verify: %v", where("tls.verify"), err)
				}
			}
			tc, err := netout.ClientTLS(netout.ClientTLSOptions{
				Verify: verify, ServerName: get("tls.vhost", host), CAFile: get("tls.ca_file", ""),
				CertFile: get("tls.crt_file", ""), KeyFile: get("tls.key_file", ""),
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where("tls"), err)
			}
			d.TLS = tc
		}
	} else if d.TLS != nil {
		tc := d.TLS.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		d.TLS = tc
	}
	n.dialer = &d
	n.auth = clientAuth(get("shared_key", p.String("shared_key")), p.Bool("empty_shared_key"),
		get("self_hostname", p.String("self_hostname")), get("username", p.String("username")),
		get("password", p.String("password")))
	return n, nil
}

// parseUpstream reads the classic-format sections of an upstream file:
// "[NAME]" headers and indented "key value" lines; # starts a comment.
// Values expand ${VAR} from the environment as in the main configuration.
func parseUpstream(path, text string) ([]*config.Section, error) {
	var out []*config.Section
	var cur *config.Section
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		t := strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasPrefix(t, "[") {
			if !strings.HasSuffix(t, "]") || len(t) < 3 {
				return nil, fmt.Errorf("%s:%d: malformed section header %q", path, n, t)
			}
			cur = &config.Section{Header: strings.TrimSpace(t[1 : len(t)-1]), File: path, Line: n}
			out = append(out, cur)
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: %q is outside any section", path, n, t)
		}
		k, v, _ := strings.Cut(t, " ")
		if i := strings.IndexAny(t, " \t"); i > 0 {
			k, v = t[:i], t[i+1:]
		}
		v = expandEnv(strings.TrimSpace(v))
		cur.Props = append(cur.Props, config.Prop{Key: strings.ToLower(k), Value: v, File: path, Line: n})
	}
	return out, nil
}

// expandEnv replaces ${VAR} with the environment's value; a lone $ (a
// shared key may hold one) stays as written.
func expandEnv(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(os.Getenv(s[i+2 : i+j]))
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}
