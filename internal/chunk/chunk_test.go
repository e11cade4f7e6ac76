package chunk

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
)

// logLike returns n bytes of repetitive, log-like data (compresses well).
func logLike(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = append(b, `{"seq":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"level":"info","message":"GET /api/v1/orders 200"}`...)
	}
	return b[:n]
}

func TestCompressedRoundTrip(t *testing.T) {
	data := logLike(200 << 10)
	c := &Chunk{ID: "in:7", Tag: "app.web", Type: Logs, Records: 1234, Data: data, Source: "tail.0", Emits: 2}
	m := ToMsg("floe.in.app.web", c)
	if got := m.Header.Get(HeaderEncoding); got != EncodingS2 {
		t.Fatalf("%s = %q, want %q", HeaderEncoding, got, EncodingS2)
	}
	if len(m.Data) >= len(data)/2 {
		t.Fatalf("compressed to %d of %d bytes; log-like data should at least halve", len(m.Data), len(data))
	}
	back, err := FromHeaders(m.Header, m.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Data, data) {
		t.Fatal("data changed on the round trip")
	}
	if back.ID != c.ID || back.Tag != c.Tag || back.Records != c.Records || back.Source != c.Source || back.Emits != c.Emits || back.Type != Logs {
		t.Fatalf("headers: got %+v", back)
	}
}

func TestSmallAndIncompressibleChunksTravelAsIs(t *testing.T) {
	small := logLike(minCompress - 1)
	random := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	for name, data := range map[string][]byte{"small": small, "random": random} {
		m := ToMsg("s", &Chunk{Tag: "t", Data: data})
		if m.Header.Get(HeaderEncoding) != "" || !bytes.Equal(m.Data, data) {
			t.Errorf("%s: sent with %s %q, %d bytes; want as is", name, HeaderEncoding, m.Header.Get(HeaderEncoding), len(m.Data))
		}
		back, err := FromHeaders(m.Header, m.Data, nil)
		if err != nil || !bytes.Equal(back.Data, data) {
			t.Errorf("%s: round trip: %v", name, err)
		}
	}
}

func TestCompressionNoneStillReadsS2(t *testing.T) {
	data := logLike(8 << 10)
	compressed := ToMsg("s", &Chunk{Tag: "t", Data: data})
	if err := SetCompression(EncodingNone); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = SetCompression(EncodingS2) }()
	if Compression() != EncodingNone {
		t.Fatalf("Compression() = %q", Compression())
	}
	m := ToMsg("s", &Chunk{Tag: "t", Data: data})
	if m.Header.Get(HeaderEncoding) != "" || !bytes.Equal(m.Data, data) {
		t.Fatalf("with %q: sent %d bytes with encoding %q", EncodingNone, len(m.Data), m.Header.Get(HeaderEncoding))
	}
	// A stage set to none still reads what others compressed.
	back, err := FromHeaders(compressed.Header, compressed.Data, nil)
	if err != nil || !bytes.Equal(back.Data, data) {
		t.Fatalf("reading s2 with compression none: %v", err)
	}
	if err := SetCompression("gzip"); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("SetCompression(gzip) = %v, want an error naming it", err)
	}
}

// A chunk passed on unchanged goes out in the bytes it came in; a changed
// one, or one a filter returned, is compressed afresh.
func TestUnchangedChunkKeepsItsWireForm(t *testing.T) {
	data := logLike(64 << 10)
	in := ToMsg("a", &Chunk{Tag: "t", Data: data})
	c, err := FromHeaders(in.Header, in.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	copyOf := *c // the router's fan-out copies the struct
	for _, cc := range []*Chunk{c, &copyOf} {
		out := ToMsg("b", cc)
		if unsafe.SliceData(out.Data) != unsafe.SliceData(in.Data) || out.Header.Get(HeaderEncoding) != EncodingS2 {
			t.Fatal("an unchanged chunk was compressed again")
		}
	}

	changed := *c
	changed.Data = append([]byte(nil), c.Data[:len(c.Data)/2]...)
	out := ToMsg("b", &changed)
	back, err := FromHeaders(out.Header, out.Data, nil)
	if err != nil || !bytes.Equal(back.Data, changed.Data) {
		t.Fatalf("a chunk with new data went out with the old bytes (err %v)", err)
	}

	// Changed in place, then forgotten: the new bytes go out.
	c.Data[0] = '['
	c.ForgetWire()
	out = ToMsg("b", c)
	back, err = FromHeaders(out.Header, out.Data, nil)
	if err != nil || back.Data[0] != '[' {
		t.Fatalf("after ForgetWire the old bytes went out (err %v)", err)
	}
}

func TestBadEncodingIsAnErrorWithTheHeaders(t *testing.T) {
	h := nats.Header{}
	h.Set(HeaderTag, "app")
	h.Set(HeaderRecords, "9")
	h.Set(HeaderMsgID, "in:3")
	h.Set(HeaderEncoding, EncodingS2)
	hugeClaim := s2.Encode(nil, logLike(2048))
	hugeClaim[0], hugeClaim[1], hugeClaim[2], hugeClaim[3] = 0xff, 0xff, 0xff, 0x7f // a uvarint far above any chunk
	for name, data := range map[string][]byte{
		"garbage":     []byte("not s2 at all, just text"),
		"truncated":   s2.Encode(nil, logLike(4096))[:100],
		"empty":       nil,
		"huge length": hugeClaim,
	} {
		c, err := FromHeaders(h, data, nil)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), "in:3") || !strings.Contains(err.Error(), "s2") {
			t.Errorf("%s: error %q should name the chunk and the encoding", name, err)
		}
		if c == nil || c.Tag != "app" || c.Records != 9 {
			t.Errorf("%s: headers not read: %+v", name, c)
		}
	}
	h.Set(HeaderEncoding, "lz4")
	if _, err := FromHeaders(h, []byte("x"), nil); err == nil || !strings.Contains(err.Error(), HeaderEncoding) {
		t.Errorf("unknown encoding: %v, want an error naming %s", err, HeaderEncoding)
	}
}

func TestRecordsOf(t *testing.T) {
	h := nats.Header{}
	if RecordsOf(h) != 0 {
		t.Fatal("no header should be 0")
	}
	h.Set(HeaderRecords, "42")
	if RecordsOf(h) != 42 {
		t.Fatalf("RecordsOf = %d", RecordsOf(h))
	}
}

// FuzzFromHeadersS2: any bytes labelled s2 decode or fail with an error,
// never a panic; valid ones give back what was compressed.
func FuzzFromHeadersS2(f *testing.F) {
	f.Add(s2.Encode(nil, logLike(3000)))
	f.Add([]byte{0})
	f.Add([]byte("\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := nats.Header{}
		h.Set(HeaderEncoding, EncodingS2)
		c, err := FromHeaders(h, data, nil)
		if err != nil {
			return
		}
		want, derr := s2.Decode(nil, data)
		if derr != nil || !bytes.Equal(c.Data, want) {
			t.Fatalf("decoded %d bytes, s2.Decode says %d (%v)", len(c.Data), len(want), derr)
		}
	})
}

// The filter stage reads chunks lazily: one no filter matches goes on in
// the bytes it came in without being decompressed; one a filter reads is
// decoded by Load first.
func TestLazyChunk(t *testing.T) {
	data := logLike(32 << 10)
	in := ToMsg("a", &Chunk{ID: "in:1", Tag: "t", Records: 5, Data: data})
	c, err := FromHeadersLazy(in.Header, in.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != nil || c.Records != 5 || c.Tag != "t" || c.ID != "in:1" {
		t.Fatalf("lazy chunk: %+v", c)
	}
	copyOf := *c
	out := ToMsg("b", &copyOf)
	if unsafe.SliceData(out.Data) != unsafe.SliceData(in.Data) || out.Header.Get(HeaderEncoding) != EncodingS2 {
		t.Fatal("a lazy chunk passed on was not sent in the bytes it came in")
	}
	// Vivo's plain streams get the events.
	plain := ToPlainMsg("floe.vivo.x", &copyOf)
	if plain.Header.Get(HeaderEncoding) != "" || !bytes.Equal(plain.Data, data) {
		t.Fatal("a lazy chunk sent plain did not carry its decoded events")
	}
	c.ForgetWire() // a lazy chunk keeps its only copy of the data
	if err := c.Load(); err != nil || !bytes.Equal(c.Data, data) {
		t.Fatalf("Load: %v", err)
	}
	if err := c.Load(); err != nil || !bytes.Equal(c.Data, data) {
		t.Fatalf("second Load: %v", err)
	}
	out = ToMsg("b", c)
	if unsafe.SliceData(out.Data) != unsafe.SliceData(in.Data) {
		t.Fatal("a loaded, unchanged chunk was compressed again")
	}

	// Uncompressed data is there at once.
	raw := ToPlainMsg("a", &Chunk{Tag: "t", Data: data})
	c, err = FromHeadersLazy(raw.Header, raw.Data, nil)
	if err != nil || !bytes.Equal(c.Data, data) || c.Load() != nil {
		t.Fatalf("uncompressed lazy read: %v", err)
	}

	// Bad data: the error comes with Load; sent plain, it goes as stored.
	h := nats.Header{}
	h.Set(HeaderEncoding, EncodingS2)
	h.Set(HeaderMsgID, "in:9")
	c, err = FromHeadersLazy(h, []byte("garbage"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(); err == nil || !strings.Contains(err.Error(), "in:9") {
		t.Fatalf("Load of garbage: %v", err)
	}
	bad, _ := FromHeadersLazy(h, []byte("garbage"), nil)
	if m := ToPlainMsg("floe.vivo.x", bad); string(m.Data) != "garbage" || m.Header.Get(HeaderEncoding) != EncodingS2 {
		t.Fatalf("undecodable lazy chunk sent plain: %q %v", m.Data, m.Header)
	}
}

// Ingest hands a chunk's buffer back once it is compressed; a republish
// still sends the events.
func TestReleaseData(t *testing.T) {
	data := logLike(16 << 10)
	c := &Chunk{Tag: "t", Data: data}
	if c.ReleaseData() {
		t.Fatal("released the data of a chunk never compressed")
	}
	first := ToMsg("a", c)
	if !c.ReleaseData() || c.Data != nil {
		t.Fatal("a compressed chunk kept its data")
	}
	for i := range data {
		data[i] = 'z' // the buffer reused for the next chunk
	}
	again := ToMsg("a", c)
	back, err := FromHeaders(again.Header, again.Data, nil)
	if err != nil || !bytes.Equal(again.Data, first.Data) || !bytes.Equal(back.Data, logLike(16<<10)) {
		t.Fatalf("republish after ReleaseData: %v", err)
	}
	small := &Chunk{Tag: "t", Data: []byte{0x90}}
	ToMsg("a", small)
	if small.ReleaseData() || small.Data == nil {
		t.Fatal("released the data of a chunk sent as is")
	}
}

// Copies made after Compress share one compressed form.
func TestCompressBeforeCopies(t *testing.T) {
	c := &Chunk{Tag: "t", Data: logLike(32 << 10)}
	c.Compress()
	a, b := *c, *c
	ma, mb := ToMsg("a", &a), ToMsg("b", &b)
	if unsafe.SliceData(ma.Data) != unsafe.SliceData(mb.Data) || ma.Header.Get(HeaderEncoding) != EncodingS2 {
		t.Fatal("the copies were compressed separately")
	}
}
