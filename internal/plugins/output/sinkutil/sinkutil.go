// Package sinkutil holds what the streaming outputs (nats, kafka, s3) share:
// tag templates ($TAG, $TAG[n]), stable record ids for sinks that
// deduplicate, splitting a chunk into bounded pieces, and the tls.* keys.
package sinkutil

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
)

// Template expands $TAG (the whole tag) and $TAG[n] (the n-th dot-separated
// part of the tag, from 0) in a string, as Fluent Bit's s3 and kafka outputs
// do. Anything else is copied as is.
type Template struct {
	parts []tmplPart
}

type tmplPart struct {
	lit   string
	whole bool // $TAG
	index int  // $TAG[n] when >= 0 and !whole
}

// ParseTemplate parses s; a malformed $TAG[...] is an error.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	for {
		i := strings.Index(s, "$TAG")
		if i < 0 {
			if s != "" {
				t.parts = append(t.parts, tmplPart{lit: s, index: -1})
			}
			return t, nil
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: s[:i], index: -1})
		}
		s = s[i+len("$TAG"):]
		if !strings.HasPrefix(s, "[") {
			t.parts = append(t.parts, tmplPart{whole: true, index: -1})
			continue
		}
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nil, fmt.Errorf("$TAG[ without a closing ]")
		}
		n, err := strconv.Atoi(s[1:end])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("$TAG[%s]: the index must be a number from 0", s[1:end])
		}
		t.parts = append(t.parts, tmplPart{index: n})
		s = s[end+1:]
	}
}

// HasTag reports whether the template refers to the tag at all.
func (t *Template) HasTag() bool {
	for _, p := range t.parts {
		if p.whole || p.index >= 0 {
			return true
		}
	}
	return false
}

// Expand fills the template with tag. A $TAG[n] beyond the tag's parts is an
// error, since a silently empty part would merge unrelated streams.
func (t *Template) Expand(tag string) (string, error) {
	var b strings.Builder
	var split []string
	for _, p := range t.parts {
		switch {
		case p.whole:
			b.WriteString(tag)
		case p.index >= 0:
			if split == nil {
				split = strings.Split(tag, ".")
			}
			if p.index >= len(split) {
				return "", fmt.Errorf("tag %q has no part $TAG[%d] (it has %d)", tag, p.index, len(split))
			}
			b.WriteString(split[p.index])
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String(), nil
}

// ChunkKey is the deterministic identity of a chunk: its Msg-Id, which the
// mesh keeps across redeliveries, or, for a chunk without one, a digest of
// its tag and bytes (equally stable across redeliveries of the same bytes).
func ChunkKey(c *chunk.Chunk) string {
	if c.ID != "" {
		return c.ID
	}
	h := sha256.New()
	h.Write([]byte(c.Tag))
	h.Write([]byte{0})
	h.Write(c.Data)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// RecordID is the stable id of the record at index (counting records, not
// group markers, from 0) of chunk key: the same record redelivered gets the
// same id, so a sink that deduplicates on it stores it once.
func RecordID(key string, index int) string {
	return key + "/" + strconv.Itoa(index)
}

// Piece is a run of consecutive records of a chunk.
type Piece struct {
	First   int    // index of the first record in the chunk
	Records int    // records in the piece
	Data    []byte // their events, prefixed by their group's start marker when inside a group
}

// Split cuts chunk data into pieces of at most maxRecords records (0: no
// limit) whose size, as measured by size (the encoded length of one record;
// nil counts its MessagePack bytes), stays within maxBytes (0: no limit). A
// single record larger than maxBytes is a piece of its own: the sink decides
// whether to take it. Group markers are not records; a piece that starts
// inside a group repeats the group's start marker so it stands alone.
func Split(data []byte, maxRecords, maxBytes int, size func(r *event.RawEvent) (int, error)) ([]Piece, error) {
	var out []Piece
	var cur Piece
	var curBytes int
	var group []byte
	index := 0
	flush := func() {
		if cur.Records > 0 {
			out = append(out, cur)
		}
		cur = Piece{First: index}
		curBytes = 0
	}
	it := event.NewIter(data)
	for it.Next() {
		ev := it.Event()
		switch ev.Kind() {
		case event.KindGroupStart:
			group = ev.Raw
			cur.Data = append(cur.Data, ev.Raw...)
			continue
		case event.KindGroupEnd:
			group = nil
			cur.Data = append(cur.Data, ev.Raw...)
			continue
		}
		n := len(ev.Raw)
		if size != nil {
			var err error
			if n, err = size(ev); err != nil {
				return nil, fmt.Errorf("record %d at byte offset %d: %w", index, ev.Offset, err)
			}
		}
		if cur.Records > 0 && ((maxRecords > 0 && cur.Records >= maxRecords) || (maxBytes > 0 && curBytes+n > maxBytes)) {
			flush()
			if group != nil {
				cur.Data = append(cur.Data, group...)
			}
		}
		cur.Data = append(cur.Data, ev.Raw...)
		cur.Records++
		curBytes += n
		index++
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	flush()
	return out, nil
}

// TLSConfig builds the client TLS configuration from the tls and tls.* keys,
// or nil when tls is off. Unlike the http output, the host name is always
// checked when tls.verify is on: these clients name brokers, not URLs.
func TLSConfig(p *plugin.Props) (*tls.Config, error) {
	if !p.Bool("tls") {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if v, ok := p.Section.Get("tls.verify"); ok {
		on, err := config.ParseBool(v)
		if err != nil {
			return nil, p.Errorf("tls.verify", "%q is not a boolean", v)
		}
		c.InsecureSkipVerify = !on
	}
	if v, ok := p.Section.Get("tls.vhost"); ok {
		c.ServerName = strings.TrimSpace(v)
	}
	if f, ok := p.Section.Get("tls.ca_file"); ok {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, p.Errorf("tls.ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, p.Errorf("tls.ca_file", "%s holds no PEM certificate", f)
		}
		c.RootCAs = pool
	}
	crt, hasCrt := p.Section.Get("tls.crt_file")
	key, hasKey := p.Section.Get("tls.key_file")
	if hasCrt != hasKey {
		k := "tls.crt_file"
		if hasCrt {
			k = "tls.key_file"
		}
		return nil, p.Errorf(k, "tls.crt_file and tls.key_file go together")
	}
	if hasCrt {
		pair, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			return nil, p.Errorf("tls.crt_file", "%v", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
