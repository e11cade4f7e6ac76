package syslog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// frames decodes every message of data, fed in pieces cut at the given
// offsets as a socket might deliver it.
func frames(f *framer, data []byte, cuts ...int) ([]string, error) {
	var out []string
	var buf []byte
	prev := 0
	feed := func(b []byte, eof bool) error {
		buf = append(buf, b...)
		for {
			msg, used, err := f.next(buf, eof)
			if err != nil {
				return err
			}
			if used == 0 {
				return nil
			}
			if used > len(buf) {
				return fmt.Errorf("used %d of %d bytes", used, len(buf))
			}
			if len(msg) > 0 {
				out = append(out, string(msg))
			}
			buf = buf[used:]
			if len(buf) == 0 {
				return nil
			}
		}
	}
	for _, c := range cuts {
		if c < prev || c > len(data) {
			continue
		}
		if err := feed(data[prev:c], false); err != nil {
			return out, err
		}
		prev = c
	}
	err := feed(data[prev:], true)
	return out, err
}

func TestNewlineFraming(t *testing.T) {
	f := &framer{max: 1024}
	in := "<13>one\n\n<13>two\r\n<13>three"
	for cut := 0; cut <= len(in); cut++ {
		got, err := frames(f, []byte(in), cut)
		if err != nil || strings.Join(got, "|") != "<13>one|<13>two|<13>three" {
			t.Fatalf("cut at %d: %q %v", cut, got, err)
		}
	}
}

func TestOctetCounting(t *testing.T) {
	f := &framer{octet: true, max: 1024}
	in := "7 <13>one8 <13>two\n\n\n10 <13>three\n\n"
	for cut := 0; cut <= len(in); cut++ {
		got, err := frames(f, []byte(in), cut)
		if err != nil || strings.Join(got, "|") != "<13>one|<13>two\n|<13>three\n" {
			t.Fatalf("cut at %d: %q %v", cut, got, err)
		}
	}
	for _, c := range []struct{ in, err string }{
		{"<13>no count\n", "invalid octet-counting length"},
		{"12x <13>", "invalid octet-counting length"},
		{"99999999999 x", "more than 10 digits"},
		{"2000 x", "exceeds buffer_max_size"},
		{"10 <13>", "stream ends 4 bytes into a message of 10"},
		{"12", "inside an octet count"},
	} {
		_, err := frames(f, []byte(c.in))
		if !errors.Is(err, errFraming) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %v, want %q", c.in, err, c.err)
		}
	}
}

// FuzzFraming: however a stream is split into reads, the messages are the
// same, and the framer never panics nor claims bytes it was not given.
func FuzzFraming(f *testing.F) {
	for _, s := range []string{"7 <13>one9 <13>two\n", "<13>a\n<13>b\r\n", "0 \n", "5 ab", "\n\n12 x"} {
		f.Add([]byte(s), true, uint16(3))
		f.Add([]byte(s), false, uint16(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, octet bool, cut uint16) {
		fr := &framer{octet: octet, max: 256}
		whole, errWhole := frames(fr, data)
		split, errSplit := frames(fr, data, int(cut)%(len(data)+1))
		if (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("whole: %v, split at %d: %v", errWhole, cut, errSplit)
		}
		if errWhole == nil && strings.Join(whole, "\x00") != strings.Join(split, "\x00") {
			t.Fatalf("whole %q, split at %d %q", whole, cut, split)
		}
		for _, m := range whole {
			if len(m) > len(data) {
				t.Fatalf("message longer than the input")
			}
		}
	})
}
