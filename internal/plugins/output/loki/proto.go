package loki

import "google.golang.org/protobuf/encoding/protowire"

// The push API's protobuf messages (Loki's pkg/push/push.proto), encoded by
// hand so Floe needs neither Loki's module (AGPL as a whole) nor generated
// code:
//
//	PushRequest   { repeated StreamAdapter streams = 1; }
//	StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//	EntryAdapter  { google.protobuf.Timestamp timestamp = 1; string line = 2;
//	                repeated LabelPairAdapter structuredMetadata = 3; }
//	LabelPairAdapter { string name = 1; string value = 2; }
//	Timestamp     { int64 seconds = 1; int32 nanos = 2; }
//
// Sizes are computed before each nested message, so the encoding is one pass
// into one buffer.

func appendPushRequest(b []byte, streams []*stream) []byte {
	for _, s := range streams {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(streamSize(s)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, s.key)
		for i := range s.entries {
			e := &s.entries[i]
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(entrySize(e)))
			b = appendEntry(b, e)
		}
	}
	return b
}

func streamSize(s *stream) int {
	n := protowire.SizeTag(1) + protowire.SizeBytes(len(s.key))
	for i := range s.entries {
		n += protowire.SizeTag(2) + protowire.SizeBytes(entrySize(&s.entries[i]))
	}
	return n
}

func tsParts(ts int64) (sec int64, nsec int32) {
	sec, nsec = ts/1e9, int32(ts%1e9)
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return
}

func tsSize(ts int64) int {
	sec, nsec := tsParts(ts)
	n := 0
	if sec != 0 {
		n += protowire.SizeTag(1) + protowire.SizeVarint(uint64(sec))
	}
	if nsec != 0 {
		n += protowire.SizeTag(2) + protowire.SizeVarint(uint64(nsec))
	}
	return n
}

func pairSize(p [2]string) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(p[0])) + protowire.SizeTag(2) + protowire.SizeBytes(len(p[1]))
}

func entrySize(e *entry) int {
	n := protowire.SizeTag(1) + protowire.SizeBytes(tsSize(e.ts)) + protowire.SizeTag(2) + protowire.SizeBytes(len(e.line))
	for _, m := range e.meta {
		n += protowire.SizeTag(3) + protowire.SizeBytes(pairSize(m))
	}
	return n
}

func appendEntry(b []byte, e *entry) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(tsSize(e.ts)))
	sec, nsec := tsParts(e.ts)
	if sec != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sec))
	}
	if nsec != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(nsec))
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, e.line)
	for _, m := range e.meta {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(pairSize(m)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, m[0])
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, m[1])
	}
	return b
}
