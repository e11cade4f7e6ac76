package forward

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/floe-io/floe/internal/event"
)

func fuzzSeeds() [][]byte {
	rec := kvs("msg", "hello", "n", int64(42), "f", 1.5, "l", []any{"a", nil, true})
	var stream []byte
	for i := 0; i < 3; i++ {
		stream = append(stream, entry(event.Time{Sec: int64(i), Nsec: 7}, rec)...)
	}
	v2 := (&event.Event{Time: t0, Meta: kvs("m", int64(1)), Body: rec}).AppendMsgpack(nil)
	opt := &Options{Chunk: "abc", Size: 3}
	msg := AppendMessage(nil, "app", t0, rec, opt)
	return [][]byte{
		msg,
		append(append([]byte{0xc0}, msg...), 0xc0),
		AppendForward(nil, "app", stream, 3, opt),
		AppendPackedForward(nil, "app", stream, opt),
		AppendPackedForward(nil, "app", v2, &Options{Size: -1, Metadata: []byte{0x80}}),
		AppendPackedForward(nil, "app", Gzip(stream), &Options{Size: 3, Compressed: "gzip", Chunk: "x"}),
		AppendHelo(nil, Helo{Nonce: []byte("0123456789abcdef"), Auth: []byte("s"), Keepalive: true}),
		AppendPing(nil, Ping{Hostname: "h", SharedKeySalt: []byte("salt"), SharedKeyDigest: "d", Username: "u", Password: "p"}),
		msg[:len(msg)-4],
		{0x92, 0xa1, 't', 0xc6, 0x7f, 0xff, 0xff, 0xff},
	}
}

// FuzzDecoder: any byte stream, read in small pieces through a small
// bounded buffer, never panics and never grows the buffer past its maximum;
// every value the decoder returns is a whole MessagePack value; every frame
// that parses and converts yields exactly the events it claims, decodable.
func FuzzDecoder(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxSize = 4096
		d := NewDecoder(iotest.HalfReader(bytes.NewReader(data)), 16, maxSize)
		var total int64
		for {
			v, off, err := d.Next()
			if d.Buffered() > maxSize {
				t.Fatalf("buffer %d over %d", d.Buffered(), maxSize)
			}
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTooLarge) {
					var e *Error
					if !errors.As(err, &e) {
						t.Fatalf("error without offset: %v", err)
					}
				}
				return
			}
			if off != total {
				t.Fatalf("value at %d, want %d", off, total)
			}
			total += int64(len(v))
			if end, err := event.Skip(v, 0); err != nil || end != len(v) {
				t.Fatalf("decoder returned %x, which is not one value (%d, %v)", v, end, err)
			}
			if IsHeartbeat(v) {
				continue
			}
			_, _ = ParseHelo(v)
			_, _ = ParsePing(v)
			_, _ = ParsePong(v)
			_, _ = ParseAck(v)
			fr, err := ParseFrame(v)
			if err != nil {
				continue
			}
			out, n, err := fr.AppendEvents(nil, 1<<20)
			if err != nil {
				continue
			}
			got, err := event.Count(out)
			if err != nil || got != n {
				t.Fatalf("AppendEvents said %d events, chunk holds %d (%v)", n, got, err)
			}
		}
	})
}
