package parser

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// appendRecordParsers are the configurations the fast path must agree with
// Parse on: no time, a time taken out, a time kept, and a decoder (which
// takes the Map path).
var appendRecordParsers = [][]string{
	{"name j", "format json"},
	{"name j", "format json", "time_key time", "time_format %Y-%m-%dT%H:%M:%S%z"},
	{"name j", "format json", "time_key time", "time_format %Y-%m-%dT%H:%M:%S.%L%z", "time_keep on"},
	{"name j", "format json", "decode_field_as escaped_utf8 log"},
	{"name r", "format regex", `regex ^(?<a>\w*) (?<b>.*)$`},
}

var appendRecordSeeds = []string{
	`{"log":"hello","n":1,"f":1.5,"t":true,"z":null,"a":[1,"x",{"k":"v"}]}`,
	`{"time":"2024-03-15T10:00:00+0000","msg":"x"}`,
	`{"time":"2024-03-15T10:00:00.250+0200","msg":"x","time":"second"}`,
	`{"a":1,"time":12}`,
	`{"time":"not a time"}`,
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"time":"2024-03-15T10:00:00+0000"}`,
	`{}`,
	`[1,2]`,
	`"just a string"`,
	`{"a":`,
	`{"big":18446744073709551615,"neg":-9223372036854775808,"e":1e400,"u":"\u00e9\ud83d\ude00"}`,
	`word rest of it`,
}

// The fast path writes the same bytes, time and errors as Parse followed by
// encoding the Map, for every configuration.
func TestAppendRecordAgreesWithParse(t *testing.T) {
	for _, cfg := range appendRecordParsers {
		p := mustNew(t, cfg...)
		for _, in := range appendRecordSeeds {
			checkAppendRecord(t, p, []byte(in))
		}
	}
}

func checkAppendRecord(t *testing.T, p *Parser, in []byte) {
	t.Helper()
	prefix := []byte{0xc0, 0xc3} // bytes already in dst stay as they are
	wantT, m, wantErr := p.Parse(in)
	gotT, got, gotErr := p.AppendRecord(append([]byte(nil), prefix...), in)
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("%s %q: dst prefix overwritten: % x", p.format, in, got)
	}
	got = got[len(prefix):]
	switch {
	case wantErr != nil || m == nil:
		if gotErr == nil || !errors.Is(gotErr, ErrNoMatch) {
			t.Fatalf("%s %q: Parse refused (%v, nil map %v), AppendRecord gave %v", p.format, in, wantErr, m == nil, gotErr)
		}
		if len(got) != 0 {
			t.Fatalf("%s %q: refused but appended % x", p.format, in, got)
		}
		if wantErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("%s %q: error %q, Parse says %q", p.format, in, gotErr, wantErr)
		}
	case gotErr != nil:
		t.Fatalf("%s %q: AppendRecord: %v; Parse took it", p.format, in, gotErr)
	default:
		if want := m.AppendMsgpack(nil); !bytes.Equal(got, want) {
			t.Fatalf("%s %q:\n got % x\nwant % x", p.format, in, got, want)
		}
		if gotT != wantT {
			t.Fatalf("%s %q: time %+v, Parse says %+v", p.format, in, gotT, wantT)
		}
	}
}

func FuzzAppendRecord(f *testing.F) {
	for _, s := range appendRecordSeeds {
		f.Add(s)
	}
	ps := make([]*Parser, len(appendRecordParsers))
	for i, cfg := range appendRecordParsers {
		p, err := New(section(cfg...))
		if err != nil {
			f.Fatal(err)
		}
		p.setNow(func() time.Time { return fixedNow })
		ps[i] = p
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 8192 {
			return
		}
		for _, p := range ps {
			checkAppendRecord(t, p, []byte(in))
		}
	})
}

func BenchmarkAppendRecordJSON(b *testing.B) {
	line := []byte(`{"time":"2024-03-15T10:00:00+0000","level":"info","msg":"GET /api/v1/items 200","bytes":5321,"latency_ms":12.5,"user":"alice","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)
	for _, path := range []string{"map", "append"} {
		b.Run(path, func(b *testing.B) {
			p, err := New(section("name j", "format json", "time_key time", "time_format %Y-%m-%dT%H:%M:%S%z"))
			if err != nil {
				b.Fatal(err)
			}
			var buf []byte
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if path == "map" {
					_, m, err := p.Parse(line)
					if err != nil {
						b.Fatal(err)
					}
					buf = m.AppendMsgpack(buf[:0])
				} else if _, buf, err = p.AppendRecord(buf[:0], line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
