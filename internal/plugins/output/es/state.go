package es

import (
	"container/list"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugins/output/format"
)

// chunkState is what the output knows of one chunk between its flushes:
// which records are settled (accepted, or refused for good) so a retry sends
// only the others.
type chunkState struct {
	done    []bool
	failed  int
	reasons []string // the first few refusals, for the dead letter's reason
}

func (s *chunkState) size(n int) {
	if len(s.done) < n {
		s.done = append(s.done, make([]bool, n-len(s.done))...)
	}
}

func (s *chunkState) isDone(i int) bool { return i < len(s.done) && s.done[i] }

func (s *chunkState) accept(i int) {
	s.size(i + 1)
	s.done[i] = true
}

func (s *chunkState) fail(i int, reason string) {
	s.size(i + 1)
	if !s.done[i] {
		s.failed++
		if len(s.reasons) < 3 {
			s.reasons = append(s.reasons, reason)
		}
	}
	s.done[i] = true
}

// settled keeps the state of the chunks in flight, least recently used
// first out beyond max, so a chunk abandoned by the mesh (dead-lettered
// elsewhere) does not hold memory forever. Losing a state only costs a
// resend of records that the stable _id makes harmless.
type settled struct {
	mu  sync.Mutex
	max int
	m   map[string]*list.Element
	lru list.List // of *entry, most recent at the front
}

type entry struct {
	id string
	st *chunkState
}

func newSettled(max int) *settled { return &settled{max: max, m: map[string]*list.Element{}} }

// get returns the state of chunk id, new if unknown. A chunk without id
// gets a fresh state that is not kept.
func (s *settled) get(id string) *chunkState {
	if id == "" {
		return &chunkState{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[id]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*entry).st
	}
	st := &chunkState{}
	s.m[id] = s.lru.PushFront(&entry{id, st})
	for s.lru.Len() > s.max {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.m, old.Value.(*entry).id)
	}
	return st
}

func (s *settled) drop(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[id]; ok {
		s.lru.Remove(e)
		delete(s.m, id)
	}
}

func (s *settled) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// accessor is a path of map keys into a record: "key", "$key" or
// "$a['b']['c']" (Fluent Bit's record accessor without array indexes).
type accessor []string

func parseAccessor(s string) (accessor, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty key")
	}
	if s[0] != '$' {
		return accessor{s}, nil
	}
	s = s[1:]
	i := strings.IndexByte(s, '[')
	if i < 0 {
		if s == "" {
			return nil, fmt.Errorf("empty key after $")
		}
		return accessor{s}, nil
	}
	a := accessor{s[:i]}
	rest := s[i:]
	for rest != "" {
		if len(rest) < 4 || rest[0] != '[' || (rest[1] != '\'' && rest[1] != '"') {
			return nil, fmt.Errorf("record accessor %q: expected ['key'] at %q", "$"+s, rest)
		}
		q := rest[1]
		end := strings.IndexByte(rest[2:], q)
		if end < 0 || len(rest) < end+4 || rest[end+3] != ']' {
			return nil, fmt.Errorf("record accessor %q: unterminated ['key'] at %q", "$"+s, rest)
		}
		a = append(a, rest[2:2+end])
		rest = rest[end+4:]
	}
	if a[0] == "" {
		return nil, fmt.Errorf("record accessor %q has an empty first key", "$"+s)
	}
	return a, nil
}

// lookup returns the value at the path as text: strings as they are,
// numbers and booleans in decimal; false when absent, nil, or a map or array.
func (a accessor) lookup(body []byte) (string, bool) {
	cur := body
	for _, k := range a {
		var next []byte
		_ = format.Pairs(cur, func(key, val []byte) bool {
			if s, ok := format.Str(key); ok && string(s) == k {
				next = val
			}
			return true // the last of duplicate keys wins
		})
		if next == nil {
			return "", false
		}
		cur = next
	}
	v, _, err := event.Value(cur, 0)
	if err != nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, x != ""
	case []byte:
		return string(x), len(x) > 0
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
