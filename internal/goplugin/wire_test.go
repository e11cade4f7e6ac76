package goplugin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// helloFrame encodes a hello as the C helper does.
func helloFrame(typ, proxy, events int32, mask uint32, name, desc string) []byte {
	e := newFrame(frameHello, 0)
	e.u32(uint32(typ))
	e.u32(uint32(proxy))
	e.u32(uint32(events))
	e.u32(mask)
	e.str(name)
	e.str(desc)
	return e.bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	e := newFrame(frameFlush, 0)
	e.u32(7)
	e.str("app.log")
	e.blob([]byte{0x92, 0x01, 0x80})
	b := e.bytes()
	putID(b, 0x01020304)
	if got := binary.BigEndian.Uint32(b); int(got) != len(b)-4 {
		t.Fatalf("length field %d, frame is %d bytes after it", got, len(b)-4)
	}
	var stream bytes.Buffer
	stream.Write(b)
	stream.Write(helloFrame(2, 11, 1, 15, "gstdout", "Stdout GO!"))
	f, err := readFrame(&stream)
	if err != nil {
		t.Fatal(err)
	}
	if f.typ != frameFlush || f.id != 0x01020304 {
		t.Fatalf("frame %q id %#x", f.typ, f.id)
	}
	d := decoder{p: f.payload}
	if inst, tag, data := d.u32("instance"), d.str("tag"), d.str("data"); d.err != nil || inst != 7 || tag != "app.log" || data != "\x92\x01\x80" || len(d.p) != 0 {
		t.Fatalf("payload %d %q %q, err %v, %d bytes left", inst, tag, data, d.err, len(d.p))
	}
	f, err = readFrame(&stream)
	if err != nil {
		t.Fatal(err)
	}
	h, err := decodeHello(f)
	if err != nil {
		t.Fatal(err)
	}
	if h != (hello{Type: 2, Proxy: 11, EventType: 1, Symbols: 15, Name: "gstdout", Desc: "Stdout GO!"}) {
		t.Fatalf("hello %+v", h)
	}
	if _, err := readFrame(&stream); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
}

func TestReplyDecoders(t *testing.T) {
	e := newFrame(frameInitReply, 3)
	e.u32(1)
	e.u32(2)
	e.str("match")
	e.str("workers")
	f, err := readFrame(bytes.NewReader(e.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	rc, hits, err := decodeInitReply(f)
	if err != nil || rc != 1 || strings.Join(hits, ",") != "match,workers" {
		t.Fatalf("init reply rc %d hits %q err %v", rc, hits, err)
	}
	e = newFrame(frameFlushDone, 4)
	e.u32(uint32(flbRetry))
	f, _ = readFrame(bytes.NewReader(e.bytes()))
	if rc, err := decodeRC(f, frameFlushDone); err != nil || rc != flbRetry {
		t.Fatalf("flush reply rc %d err %v", rc, err)
	}
	// A reply of the wrong type is an error naming both types.
	if _, err := decodeRC(f, frameExitDone); err == nil || !strings.Contains(err.Error(), `'f'`) || !strings.Contains(err.Error(), `want 'x'`) {
		t.Fatalf("wrong reply type: %v", err)
	}
	e = newFrame(frameFatal, 0)
	e.str("dlopen: libfoo.so: cannot open shared object file")
	f, _ = readFrame(bytes.NewReader(e.bytes()))
	if _, err := decodeHello(f); err == nil || err.Error() != "dlopen: libfoo.so: cannot open shared object file" {
		t.Fatalf("fatal frame: %v", err)
	}
}

func TestTruncatedAndGarbageFrames(t *testing.T) {
	full := helloFrame(2, 11, 1, 15, "gstdout", "Stdout GO!")
	for _, tc := range []struct {
		name string
		in   []byte
		want string // in the error
		is   error
	}{
		{"half a length", full[:2], "2 of 4 length bytes", io.ErrUnexpectedEOF},
		{"body cut short", full[:20], "length says 46 bytes, stream ended after 16", io.ErrUnexpectedEOF},
		{"length too small", []byte{0, 0, 0, 4, 'H', 0, 0, 0}, "bad frame length 4", nil},
		{"length too large", []byte{0x7f, 0xff, 0xff, 0xff, 'H'}, "bad frame length 2147483647", nil},
		{"text, not frames", []byte("panic: runtime error\n"), "bad frame length", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
		})
	}
	// A well-framed hello whose payload ends inside a string names the field and offset.
	cut := append([]byte(nil), full[:len(full)-3]...)
	binary.BigEndian.PutUint32(cut, uint32(len(cut)-4))
	f, err := readFrame(bytes.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	_, err = decodeHello(f)
	if err == nil || !errors.Is(err, errFrameTruncated) || !strings.Contains(err.Error(), "description needs 10 bytes at payload offset 31, 7 left") {
		t.Fatalf("truncated hello: %v", err)
	}
	// A string length past the end must not be trusted.
	e := newFrame(frameInitReply, 1)
	e.u32(1)
	e.u32(0xffffffff) // claims four billion reserved keys
	f, _ = readFrame(bytes.NewReader(e.bytes()))
	if _, _, err := decodeInitReply(f); err == nil || !strings.Contains(err.Error(), "reserved key 0 length needs 4 bytes at payload offset 8") {
		t.Fatalf("init reply with a huge count: %v", err)
	}
	// An unknown first frame is refused, not taken for a hello.
	f = frame{typ: 'Z', payload: []byte{1, 2, 3}}
	if _, err := decodeHello(f); err == nil || !strings.Contains(err.Error(), `unexpected first frame, want 'H'`) {
		t.Fatalf("unknown first frame: %v", err)
	}
}

// Whatever bytes the helper writes, reading and decoding them returns frames
// or errors and never panics; a frame read back re-encodes to its bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add(helloFrame(2, 11, 1, 15, "gstdout", "Stdout GO!"))
	f.Add([]byte{0, 0, 0, 9, 'f', 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 4, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			before := r.Len()
			fr, err := readFrame(r)
			if err != nil {
				return
			}
			e := newFrame(fr.typ, fr.id)
			e.b = append(e.b, fr.payload...)
			start := len(data) - before
			if got := e.bytes(); !bytes.Equal(got, data[start:start+len(got)]) {
				t.Fatalf("frame %q re-encodes to %x, read from %x", fr.typ, got, data[start:])
			}
			_, _ = decodeHello(fr)
			_, _, _ = decodeInitReply(fr)
			_, _ = decodeRC(fr, fr.typ)
		}
	})
}
