// Package multiline joins the lines of a log stream into records the way
// Fluent Bit's multiline parsers do (src/multiline): the built-ins docker,
// cri, go, python and java, and the user's [MULTILINE_PARSER] sections of
// type regex (rules with states), endswith and equal.
//
// A Stream holds the lines not yet emitted for one source (one file). Each
// line is fed with its byte range in the source, so the caller knows which
// offset is safe to commit: the start of the oldest line still held.
//
// Differences from Fluent Bit, on purpose:
//   - a regex parser claims a line only when a rule matches it (a start rule
//     when nothing is pending, a continuation otherwise); a line that does
//     not continue the pending record ends it and is tried again as a start,
//     so two stack traces in a row are both joined. Fluent Bit emits that
//     line alone and cannot start a record on it, and its first regex
//     parser of a list claims every line, so later ones never run;
//   - the pending buffer is bounded (Options.MaxBytes): a record that grows
//     past it is emitted as it is.
package multiline

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/onig"
	"github.com/floe-io/floe/internal/plugin"
)

// Type is how a parser decides where a record ends.
type Type int

const (
	Regex    Type = iota // rules with states
	EndsWith             // a line whose content ends with MatchString ends the record
	Equal                // a line whose pattern value equals MatchString ends the record
)

// DefaultFlushTimeout is Fluent Bit's FLB_ML_FLUSH_TIMEOUT.
const DefaultFlushTimeout = 4 * time.Second

// StartState is the state every record starts from.
const StartState = "start_state"

type rule struct {
	from []string
	re   *onig.Regex
	to   string
	src  string
}

// Parser is one multiline parser definition. It is immutable and may be
// shared by many streams.
type Parser struct {
	Name         string
	Type         Type
	FlushTimeout time.Duration
	rules        []rule
	matchString  string
	negate       bool
	keyContent   string // with a line parser: the key holding the text to join
	keyPattern   string // Equal: the key whose value is compared
	keyGroup     string // records are joined separately per value of this key
	lineParser   plugin.Parser
}

func (p *Parser) startRules() []int {
	var out []int
	for i, r := range p.rules {
		for _, f := range r.from {
			if f == StartState {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// next lists the rules that may follow a match of rule i: those whose
// from-states include its to-state, in definition order (Fluent Bit's
// to_state_map).
func (p *Parser) next(i int) []int {
	to := p.rules[i].to
	var out []int
	for j, r := range p.rules {
		for _, f := range r.from {
			if f == to {
				out = append(out, j)
				break
			}
		}
	}
	return out
}

// Record is one joined record.
type Record struct {
	Time event.Time // zero: the caller stamps it
	// Body is the first line's parsed fields with the joined content under
	// the parser's key_content, for parsers with a line parser; nil for text
	// parsers, whose joined text is Text.
	Body  event.Map
	Text  []byte
	Lines int
	// Start and End are the byte range of the record's lines in the source.
	Start, End int64
}

// Options tune a Stream.
type Options struct {
	// MaxBytes bounds a pending record; a longer one is emitted as it is. 0 = 2 MiB.
	MaxBytes int
}

// Stream joins the lines of one source with a list of parsers (a tail
// input's multiline.parser). It is not safe for concurrent use.
type Stream struct {
	parsers []*Parser
	groups  []map[string]*group // per parser, per key_group value
	active  int                 // parser that holds the last pending record, -1 none
	opts    Options
}

type group struct {
	buf      []byte
	lines    int
	ctx      event.Map
	tm       event.Time
	rule     int // last rule matched (Regex), -1 none
	start    int64
	end      int64
	lastFeed time.Time
}

// NewStream starts a stream over parsers, tried in order.
func NewStream(parsers []*Parser, opts Options) *Stream {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 2 << 20
	}
	s := &Stream{parsers: parsers, active: -1, opts: opts}
	s.groups = make([]map[string]*group, len(parsers))
	for i := range s.groups {
		s.groups[i] = map[string]*group{}
	}
	return s
}

// line is one input line as a parser sees it.
type line struct {
	raw        []byte
	content    []byte
	pattern    []byte
	groupKey   string
	ctx        event.Map
	tm         event.Time
	start, end int64
	now        time.Time
}

// prepare runs p's line parser, if any. ok is false when p cannot take the
// line (it does not parse, or lacks key_content), as in Fluent Bit.
func (p *Parser) prepare(raw []byte, tm event.Time, start, end int64, now time.Time) (line, bool) {
	l := line{raw: raw, content: raw, pattern: raw, tm: tm, start: start, end: end, now: now}
	if p.lineParser == nil {
		return l, true
	}
	t, m, err := p.lineParser.Parse(raw)
	if err != nil || m == nil {
		return l, false
	}
	if t != (event.Time{}) {
		l.tm = t
	}
	c, ok := stringValue(m, p.keyContent)
	if !ok {
		return l, false
	}
	l.content, l.pattern, l.ctx = c, c, m
	if p.keyPattern != "" {
		if v, ok := stringValue(m, p.keyPattern); ok {
			l.pattern = v
		}
	}
	if p.keyGroup != "" {
		if v, ok := stringValue(m, p.keyGroup); ok {
			l.groupKey = string(v)
		}
	}
	return l, true
}

func stringValue(m event.Map, key string) ([]byte, bool) {
	if key == "" {
		return nil, false
	}
	v, ok := m.Get(key)
	if !ok {
		return nil, false
	}
	switch s := v.(type) {
	case string:
		return []byte(s), true
	case []byte:
		return s, true
	}
	return nil, false
}

// Feed processes one line (without its newline) that occupies [start, end)
// of the source, read at now with time tm, and calls emit for each record
// completed. emit must not keep Text past its return.
func (s *Stream) Feed(raw []byte, tm event.Time, start, end int64, now time.Time, emit func(Record)) {
	// The parser holding a pending record gets the first try (Fluent Bit's
	// last recently used parser).
	if s.active >= 0 {
		if s.try(s.active, raw, tm, start, end, now, emit) {
			return
		}
	}
	for i := range s.parsers {
		if i == s.active {
			continue
		}
		if s.try(i, raw, tm, start, end, now, emit) {
			s.active = i
			return
		}
	}
	// Nobody claims it: whatever is pending ends here and the line is a record of its own.
	s.FlushAll(emit)
	s.active = -1
	// Like a joined record, it ends with a newline (Fluent Bit flushes it
	// through the same buffer).
	text := append(append([]byte(nil), raw...), '\n')
	emit(Record{Time: tm, Text: text, Lines: 1, Start: start, End: end})
}

// try offers a line to parser i and reports whether it took it.
func (s *Stream) try(i int, raw []byte, tm event.Time, start, end int64, now time.Time, emit func(Record)) bool {
	p := s.parsers[i]
	l, ok := p.prepare(raw, tm, start, end, now)
	if !ok {
		if i == s.active {
			s.flushParser(i, emit)
		}
		return false
	}
	g := s.groups[i][l.groupKey]
	if g == nil {
		g = &group{rule: -1}
		s.groups[i][l.groupKey] = g
	}
	switch p.Type {
	case Regex:
		return s.tryRegex(p, g, l, emit)
	case EndsWith:
		s.appendLine(p, g, l)
		matched := bytes.HasSuffix(l.pattern, []byte(p.matchString)) != p.negate
		if matched {
			s.emitGroup(p, g, emit)
		}
	case Equal:
		s.appendLine(p, g, l)
		matched := bytes.Equal(l.pattern, []byte(p.matchString)) != p.negate
		if matched {
			s.emitGroup(p, g, emit)
		}
	}
	if len(g.buf) >= s.opts.MaxBytes {
		s.emitGroup(p, g, emit)
	}
	return true
}

func (s *Stream) tryRegex(p *Parser, g *group, l line, emit func(Record)) bool {
	if g.lines > 0 && g.rule >= 0 {
		for _, j := range p.next(g.rule) {
			if p.rules[j].re.Match(l.content) {
				s.appendLine(p, g, l)
				g.rule = j
				if len(g.buf) >= s.opts.MaxBytes {
					s.emitGroup(p, g, emit)
				}
				return true
			}
		}
		// The pending record ends before this line; the line may start the next one.
		s.emitGroup(p, g, emit)
	}
	for _, j := range p.startRules() {
		if p.rules[j].re.Match(l.content) {
			s.appendLine(p, g, l)
			g.rule = j
			return true
		}
	}
	return false
}

func (s *Stream) appendLine(p *Parser, g *group, l line) {
	if g.lines == 0 {
		g.ctx, g.tm, g.start = l.ctx, l.tm, l.start
		g.buf = g.buf[:0]
	} else if p.lineParser == nil {
		// Text lines are joined with the newline the reader removed (blank
		// lines of a Go panic included); parsed content is joined as is,
		// since docker and CRI split a line without removing anything.
		g.buf = append(g.buf, '\n')
	}
	g.buf = append(g.buf, l.content...)
	g.lines++
	g.end = l.end
	g.lastFeed = l.now
}

func (s *Stream) emitGroup(p *Parser, g *group, emit func(Record)) {
	if g.lines == 0 {
		return
	}
	r := Record{Time: g.tm, Lines: g.lines, Start: g.start, End: g.end}
	text := append([]byte(nil), g.buf...)
	if g.ctx != nil {
		body := g.ctx.Clone()
		body.Set(p.keyContent, string(text))
		r.Body = body
	} else {
		if len(text) > 0 && text[len(text)-1] != '\n' {
			text = append(text, '\n') // Fluent Bit ends a joined text record with a newline
		}
		r.Text = text
	}
	g.lines, g.ctx, g.rule, g.buf = 0, nil, -1, g.buf[:0]
	emit(r)
}

func (s *Stream) flushParser(i int, emit func(Record)) {
	for _, g := range orderedGroups(s.groups[i]) {
		s.emitGroup(s.parsers[i], g, emit)
	}
}

// orderedGroups returns the pending groups oldest first, so records leave
// in the order their first lines arrived.
func orderedGroups(m map[string]*group) []*group {
	var out []*group
	for _, g := range m {
		if g.lines > 0 {
			out = append(out, g)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].start < out[j-1].start; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// FlushAll emits every pending record (end of input, or before a file is closed).
func (s *Stream) FlushAll(emit func(Record)) {
	var all []struct {
		p int
		g *group
	}
	for i := range s.groups {
		for _, g := range orderedGroups(s.groups[i]) {
			all = append(all, struct {
				p int
				g *group
			}{i, g})
		}
	}
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].g.start < all[j-1].g.start; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	for _, e := range all {
		s.emitGroup(s.parsers[e.p], e.g, emit)
	}
	s.active = -1
}

// FlushExpired emits the pending records that received no line for their
// parser's flush_timeout.
func (s *Stream) FlushExpired(now time.Time, emit func(Record)) {
	for i, p := range s.parsers {
		for _, g := range orderedGroups(s.groups[i]) {
			if now.Sub(g.lastFeed) >= p.FlushTimeout {
				s.emitGroup(p, g, emit)
			}
		}
	}
}

// Pending reports the start offset of the oldest line held, if any: a
// reader may commit its position only up to there.
func (s *Stream) Pending() (int64, bool) {
	var min int64
	found := false
	for i := range s.groups {
		for _, g := range s.groups[i] {
			if g.lines > 0 && (!found || g.start < min) {
				min, found = g.start, true
			}
		}
	}
	return min, found
}

// NextDeadline is when the oldest pending record times out (zero when none is pending).
func (s *Stream) NextDeadline() time.Time {
	var d time.Time
	for i, p := range s.parsers {
		for _, g := range s.groups[i] {
			if g.lines == 0 {
				continue
			}
			t := g.lastFeed.Add(p.FlushTimeout)
			if d.IsZero() || t.Before(d) {
				d = t
			}
		}
	}
	return d
}

// ---- building parsers ----

// NewRegexParser builds a regex parser from rules given as
// (from-states, pattern, to-state) triples; from-states is a comma list.
func NewRegexParser(name string, flush time.Duration, rules [][3]string) (*Parser, error) {
	p := &Parser{Name: name, Type: Regex, FlushTimeout: flush}
	for i, r := range rules {
		if err := p.addRule(r[0], r[1], r[2]); err != nil {
			return nil, fmt.Errorf("multiline parser %q rule %d: %w", name, i+1, err)
		}
	}
	if err := p.checkRules(); err != nil {
		return nil, fmt.Errorf("multiline parser %q: %w", name, err)
	}
	return p, nil
}

func (p *Parser) addRule(from, pattern, to string) error {
	var states []string
	for _, f := range strings.Split(from, ",") {
		if f = strings.TrimSpace(f); f != "" {
			states = append(states, f)
		}
	}
	if len(states) == 0 {
		return fmt.Errorf("rule has no state name")
	}
	to = strings.TrimSpace(to)
	if to == "" {
		return fmt.Errorf("rule has no next state")
	}
	re, err := onig.Compile(pattern)
	if err != nil {
		return fmt.Errorf("regex %s: %w", pattern, err)
	}
	p.rules = append(p.rules, rule{from: states, re: re, to: to, src: pattern})
	return nil
}

// checkRules requires a start_state rule, as flb_ml_rule_init does.
func (p *Parser) checkRules() error {
	if len(p.rules) == 0 {
		return fmt.Errorf("no rules")
	}
	if len(p.startRules()) == 0 {
		return fmt.Errorf("no rule starts from %q", StartState)
	}
	return nil
}
