// Package tag implements Fluent Bit's tag semantics for Floe: Match patterns,
// Match_Regex, default instance names, and the reversible mapping between a tag
// and the tail of a NATS subject.
//
// The exact routing decision is always made here ([Match], [Matcher]); NATS
// subject filters derived with [SubjectFilter] are only a coarse superset
// pre-filter, because Fluent Bit's '*' crosses dots while NATS wildcards do not.
package tag

import (
	"strconv"
	"strings"
)

// Match reports whether tag matches the Fluent Bit Match pattern, following
// router_match in src/flb_router.c:
//
//   - bytes are compared case-sensitively and the whole tag must be consumed
//     ("app" does not match "app.x", "app*" does);
//   - '*' matches any run of bytes, including the empty run and dots
//     ("a.*" matches "a.b.c" and "a." but not "a"; "*" matches every tag,
//     including the empty one);
//   - consecutive '*' behave as one and any number of '*' may appear;
//   - there are no other wildcards: '?', '{', '}' and so on are literals.
//
// Fluent Bit finds a match for several stars by backtracking over every
// occurrence of the next literal byte. For patterns whose only wildcard is '*'
// that is equivalent to the greedy algorithm used here: the literal before the
// first star must be a prefix of the tag, the literal after the last star a
// suffix, and every literal run between stars must occur, in order, at its
// leftmost possible place in what remains. It runs without backtracking and
// never allocates.
func Match(pattern, tag string) bool {
	first := strings.IndexByte(pattern, '*')
	if first < 0 {
		return pattern == tag
	}
	prefix := pattern[:first]
	if !strings.HasPrefix(tag, prefix) {
		return false
	}
	tag = tag[len(prefix):]

	last := strings.LastIndexByte(pattern, '*')
	suffix := pattern[last+1:]
	if !strings.HasSuffix(tag, suffix) {
		return false
	}
	tag = tag[:len(tag)-len(suffix)]

	if first == last {
		return true
	}
	mid := pattern[first+1 : last]
	for mid != "" {
		var seg string
		if k := strings.IndexByte(mid, '*'); k >= 0 {
			seg, mid = mid[:k], mid[k+1:]
		} else {
			seg, mid = mid, ""
		}
		if seg == "" {
			continue // consecutive stars
		}
		i := strings.Index(tag, seg)
		if i < 0 {
			return false
		}
		tag = tag[i+len(seg):]
	}
	return true
}

// InstanceName returns Fluent Bit's default name for a plugin instance,
// "<plugin>.<n>", where n is the instance's position among all instances of
// the same kind (inputs, filters or outputs) in configuration order, starting
// at 0: the second input of a file that starts with a dummy input and then a
// cpu input is "cpu.1". An input without a Tag uses this name as its tag;
// Alias does not change it.
func InstanceName(plugin string, n int) string {
	return plugin + "." + strconv.Itoa(n)
}
