package forward

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"

	"github.com/floe-io/floe/internal/event"
)

func entry(t event.Time, rec event.Map) []byte {
	b := event.AppendArrayHeader(nil, 2)
	b = t.AppendMsgpack(b)
	return rec.AppendMsgpack(b)
}

func decodeAll(t *testing.T, data []byte) []event.Event {
	t.Helper()
	var out []event.Event
	it := event.NewIter(data)
	for it.Next() {
		ev, err := it.Event().Decode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	return out
}

func events(t *testing.T, frame []byte) (Frame, []event.Event) {
	t.Helper()
	f, err := ParseFrame(frame)
	if err != nil {
		t.Fatalf("ParseFrame: %v", err)
	}
	data, n, err := f.AppendEvents(nil, 0)
	if err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	evs := decodeAll(t, data)
	if len(evs) != n {
		t.Fatalf("AppendEvents said %d events, chunk holds %d", n, len(evs))
	}
	return f, evs
}

var t0 = event.Time{Sec: 1700000000, Nsec: 123456789}

// Every mode gives the same events, nanoseconds kept, options read.
func TestModesGiveTheSameEvents(t *testing.T) {
	recs := []event.Map{kvs("n", int64(0), "msg", "a"), kvs("n", int64(1), "msg", "b")}
	var stream []byte
	for i, r := range recs {
		stream = append(stream, entry(event.Time{Sec: t0.Sec + int64(i), Nsec: t0.Nsec}, r)...)
	}
	opt := &Options{Chunk: "Y2h1bmsx", Size: 2}
	gz := append(Gzip(stream[:len(stream)/2]), Gzip(stream[len(stream)/2:])...) // two gzip members
	cases := map[string][]byte{
		"Forward":       AppendForward(nil, "app.x", stream, 2, opt),
		"PackedForward": AppendPackedForward(nil, "app.x", stream, opt),
		"PackedForward str": func() []byte { // fluentd's out_forward sends the stream as str
			b := event.AppendArrayHeader(nil, 3)
			b = event.AppendString(b, "app.x")
			b = event.AppendString(b, string(stream))
			return opt.AppendMsgpack(b)
		}(),
		"CompressedPackedForward": AppendPackedForward(nil, "app.x", gz, &Options{Chunk: "Y2h1bmsx", Size: 2, Compressed: "gzip"}),
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			f, evs := events(t, frame)
			if f.Tag != "app.x" || f.Options.Chunk != "Y2h1bmsx" || f.Options.Size != 2 {
				t.Errorf("frame %+v", f)
			}
			if len(evs) != 2 {
				t.Fatalf("%d events", len(evs))
			}
			for i, ev := range evs {
				want := event.Time{Sec: t0.Sec + int64(i), Nsec: t0.Nsec}
				if ev.Time != want {
					t.Errorf("event %d time %+v, want %+v", i, ev.Time, want)
				}
				if v, _ := ev.Body.Get("n"); v != int64(i) {
					t.Errorf("event %d body %v", i, ev.Body)
				}
			}
		})
	}
	if f, _ := ParseFrame(cases["CompressedPackedForward"]); f.Mode != ModeCompressedPackedForward {
		t.Errorf("mode %v", f.Mode)
	}

	t.Run("Message", func(t *testing.T) {
		f, evs := events(t, AppendMessage(nil, "m", t0, recs[0], &Options{Chunk: "abc", Size: -1}))
		if f.Mode != ModeMessage || f.Options.Chunk != "abc" || len(evs) != 1 || evs[0].Time != t0 {
			t.Fatalf("%+v %+v", f, evs)
		}
		// Integer time, no option.
		b := event.AppendArrayHeader(nil, 3)
		b = event.AppendString(b, "m")
		b = event.AppendInt(b, 1700000000)
		b = recs[1].AppendMsgpack(b)
		f, evs = events(t, b)
		if f.Options.Chunk != "" || evs[0].Time != (event.Time{Sec: 1700000000}) {
			t.Fatalf("%+v %+v", f, evs)
		}
	})
	t.Run("Fluent Bit v2 entries keep metadata", func(t *testing.T) {
		ev := event.Event{Time: t0, Meta: kvs("m", "x"), Body: recs[0]}
		_, evs := events(t, AppendPackedForward(nil, "fb", ev.AppendMsgpack(nil), nil))
		if v, _ := evs[0].Meta.Get("m"); v != "x" || evs[0].Time != t0 {
			t.Fatalf("%+v", evs[0])
		}
	})
}

// What fluent-logger-golang writes on the wire parses, with its chunk id and
// nanoseconds (SubSecondPrecision) kept.
func TestFluentLoggerGolangFrames(t *testing.T) {
	tm := time.Unix(t0.Sec, int64(t0.Nsec))
	rec := map[string]any{"k": "v"}
	ext := &fluent.MessageExt{Tag: "go", Time: fluent.EventTime(tm), Record: rec, Option: map[string]string{"chunk": "id1"}}
	b, err := ext.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	f, evs := events(t, b)
	if f.Tag != "go" || f.Options.Chunk != "id1" || evs[0].Time != t0 {
		t.Fatalf("%+v %+v", f, evs)
	}
	msg := &fluent.Message{Tag: "go", Time: t0.Sec, Record: rec, Option: map[string]string{}}
	if b, err = msg.MarshalMsg(nil); err != nil {
		t.Fatal(err)
	}
	if _, evs = events(t, b); evs[0].Time != (event.Time{Sec: t0.Sec}) {
		t.Fatalf("%+v", evs)
	}
	fw := &fluent.Forward{Tag: "go", Entries: []fluent.Entry{{Time: 1, Record: rec}, {Time: 2, Record: rec}}}
	if b, err = fw.MarshalMsg(nil); err != nil {
		t.Fatal(err)
	}
	if _, evs = events(t, b); len(evs) != 2 || evs[1].Time.Sec != 2 {
		t.Fatalf("%+v", evs)
	}
}

func TestParseFrameErrors(t *testing.T) {
	rec := kvs("a", int64(1))
	good := AppendMessage(nil, "t", t0, rec, nil)
	cases := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"not an array", []byte{0x81, 0xa1, 'a', 0x01}, "byte offset 0: expected array, found map"},
		{"tag not a string", []byte{0x92, 0x01, 0x90}, "tag: byte offset 1: expected string or binary, found integer"},
		{"record not a map", func() []byte {
			b := append([]byte{0x93, 0xa1, 't'}, t0.AppendMsgpack(nil)...)
			return append(b, 0x01)
		}(), "byte offset 13: record must be a map, found integer"},
		{"trailing bytes", append(append([]byte{}, good...), 0x01), "after the end of the message"},
		{"one element", []byte{0x91, 0xa1, 't'}, "array of 2 to 4 elements, has 1"},
		{"bad compression", AppendPackedForward(nil, "t", []byte{1}, &Options{Size: -1, Compressed: "lz4"}), `unsupported compression "lz4"`},
		{"bad signal", AppendPackedForward(nil, "t", nil, &Options{Size: -1, Signal: 7}), "fluent_signal 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseFrame(c.frame)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
	// Entries that do not decode: error names the entry and its offset.
	bad := append(entry(t0, rec), 0x92, 0xa1, 'x', 0x80)
	f, err := ParseFrame(AppendPackedForward(nil, "t", bad, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.AppendEvents(nil, 0)
	if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "byte offset 16") {
		t.Fatalf("err %v", err)
	}
	// A decompression bomb is refused at the limit.
	zero := make([]byte, 1<<20)
	f, _ = ParseFrame(AppendPackedForward(nil, "t", Gzip(zero), &Options{Size: -1, Compressed: "gzip"}))
	if _, _, err = f.AppendEvents(nil, 64<<10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	// Forward mode: announced count must match.
	f, err = ParseFrame(AppendForward(nil, "t", entry(t0, rec), 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	f.Count = 2
	if _, _, err = f.AppendEvents(nil, 0); err == nil {
		t.Fatal("count mismatch not reported")
	}
}

// countingReader counts what the decoder reads.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestDecoderSplitsAStreamReadByteByByte(t *testing.T) {
	var stream []byte
	var offs []int64
	for i := 0; i < 50; i++ {
		offs = append(offs, int64(len(stream)))
		if i%10 == 3 {
			stream = append(stream, 0xc0) // heartbeat
			continue
		}
		stream = AppendMessage(stream, fmt.Sprintf("t%d", i), t0, kvs("i", int64(i), "pad", strings.Repeat("x", i*40)), nil)
	}
	d := NewDecoder(iotest.OneByteReader(bytes.NewReader(stream)), 64, 4096)
	for i := 0; ; i++ {
		v, off, err := d.Next()
		if err == io.EOF {
			if i != 50 {
				t.Fatalf("EOF after %d values", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if off != offs[i] {
			t.Fatalf("value %d at offset %d, want %d", i, off, offs[i])
		}
		if IsHeartbeat(v) != (i%10 == 3) {
			t.Fatalf("value %d heartbeat=%v", i, IsHeartbeat(v))
		}
		if d.Buffered() > 4096 {
			t.Fatalf("buffer %d over max", d.Buffered())
		}
		if !IsHeartbeat(v) {
			if f, err := ParseFrame(v); err != nil || f.Tag != fmt.Sprintf("t%d", i) {
				t.Fatalf("value %d: %+v %v", i, f, err)
			}
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	msg := AppendMessage(nil, "t", t0, kvs("a", "b"), nil)
	t.Run("truncated", func(t *testing.T) {
		stream := append(append([]byte{}, msg...), msg[:10]...)
		d := NewDecoder(bytes.NewReader(stream), 16, 1024)
		if _, _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		_, _, err := d.Next()
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), fmt.Sprintf("starts at byte offset %d", len(msg))) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		stream := append(append([]byte{}, msg...), 0x92, 0xa1, 't', 0xc1)
		d := NewDecoder(bytes.NewReader(stream), 16, 1024)
		_, _, _ = d.Next()
		_, _, err := d.Next()
		var e *Error
		if !errors.As(err, &e) || e.Offset != int64(len(msg)+3) || !strings.Contains(err.Error(), "0xc1") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("huge message refused from its header", func(t *testing.T) {
		// ["t", bin32 of 100 MiB ...]: refused without reading the payload.
		hdr := []byte{0x92, 0xa1, 't', 0xc6, 0x06, 0x40, 0x00, 0x00}
		cr := &countingReader{r: io.MultiReader(bytes.NewReader(hdr), zeroReader{})}
		d := NewDecoder(cr, 1024, 1<<20)
		_, _, err := d.Next()
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
		if cr.n > 1024 || d.Buffered() > 1024 {
			t.Fatalf("read %d bytes, buffer %d before refusing", cr.n, d.Buffered())
		}
	})
	t.Run("many small elements over the limit", func(t *testing.T) {
		// An array of fixints never announces its size in bytes: the buffer
		// grows to max and stops.
		hdr := []byte{0x92, 0xa1, 't', 0xdd, 0x00, 0x0f, 0xff, 0xff}
		cr := &countingReader{r: io.MultiReader(bytes.NewReader(hdr), zeroReader{})}
		d := NewDecoder(cr, 1024, 64<<10)
		_, _, err := d.Next()
		if !errors.Is(err, ErrTooLarge) || d.Buffered() > 64<<10 {
			t.Fatalf("err %v, buffer %d", err, d.Buffered())
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestHandshake(t *testing.T) {
	srv := &Server{SharedKey: "secret", Hostname: "floe-in", Users: map[string]string{"alice": "pw"}}
	helo := srv.NewHelo()
	h2, err := ParseHelo(AppendHelo(nil, helo))
	if err != nil || !bytes.Equal(h2.Nonce, helo.Nonce) || !bytes.Equal(h2.Auth, helo.Auth) || !h2.Keepalive {
		t.Fatalf("HELO round trip: %+v %v", h2, err)
	}
	cli := &Client{SharedKey: "secret", Hostname: "app-1", Username: "alice", Password: "pw"}
	ping := cli.NewPing(h2)
	p2, err := ParsePing(AppendPing(nil, ping))
	if err != nil {
		t.Fatal(err)
	}
	// The digest is what the protocol specifies.
	if p2.SharedKeyDigest != SharedKeyDigest(p2.SharedKeySalt, "app-1", helo.Nonce, "secret") || len(p2.SharedKeyDigest) != 128 {
		t.Fatalf("digest %q", p2.SharedKeyDigest)
	}
	pong := srv.Check(helo, p2)
	pg2, err := ParsePong(AppendPong(nil, pong))
	if err != nil || !pg2.AuthResult || pg2.Hostname != "floe-in" {
		t.Fatalf("PONG %+v %v", pg2, err)
	}
	if err := cli.VerifyPong(h2, ping, pg2); err != nil {
		t.Fatal(err)
	}

	wrongKey := (&Client{SharedKey: "nope", Hostname: "app-1", Username: "alice", Password: "pw"}).NewPing(helo)
	if p := srv.Check(helo, wrongKey); p.AuthResult || p.Reason != "shared_key mismatch" {
		t.Errorf("wrong key: %+v", p)
	}
	wrongPw := (&Client{SharedKey: "secret", Hostname: "app-1", Username: "alice", Password: "x"}).NewPing(helo)
	if p := srv.Check(helo, wrongPw); p.AuthResult || !strings.Contains(p.Reason, "password") {
		t.Errorf("wrong password: %+v", p)
	}
	// A server that does not know the key cannot fake its PONG.
	fake := (&Server{SharedKey: "other", Hostname: "evil"}).Check(helo, Ping{Hostname: ping.Hostname, SharedKeySalt: ping.SharedKeySalt,
		SharedKeyDigest: SharedKeyDigest(ping.SharedKeySalt, ping.Hostname, helo.Nonce, "other")})
	if err := cli.VerifyPong(helo, ping, fake); err == nil {
		t.Error("a PONG from a server with another key was accepted")
	}
	if _, err := ParsePing(AppendHelo(nil, helo)); err == nil || !strings.Contains(err.Error(), "expected PING") {
		t.Errorf("HELO parsed as PING: %v", err)
	}
}

func TestAck(t *testing.T) {
	id, err := ParseAck(AppendAck(nil, "Zm9v"))
	if err != nil || id != "Zm9v" {
		t.Fatalf("%q %v", id, err)
	}
	// fluent-logger-golang reads the ack with its own decoder.
	var resp fluent.AckResp
	if _, err := resp.UnmarshalMsg(AppendAck(nil, "Zm9v")); err != nil || resp.Ack != "Zm9v" {
		t.Fatalf("%+v %v", resp, err)
	}
}

func kvs(pairs ...any) event.Map {
	m := make(event.Map, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		m = append(m, event.KV{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return m
}
