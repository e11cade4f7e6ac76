package stdin

import (
	"reflect"
	"testing"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

var dropReasons = []string{telemetry.DropNotJSON, telemetry.DropNotRecord, telemetry.DropInvalidEvent,
	telemetry.DropIncomplete, telemetry.DropTooLong}

// stdinResult is what a user sees of one run: the events and the drops.
type stdinResult struct {
	Events any
	Drops  map[string]uint64
}

func runStdin(t *testing.T, in []byte, readSize int, scanOnly bool) stdinResult {
	t.Helper()
	s, reg, _ := newCounted(t, in, readSize)
	s.now = func() event.Time { return now }
	s.scanOnly = scanOnly
	evs := runAll(t, s, &plugintest.Writer{})
	drops := map[string]uint64{}
	for _, r := range dropReasons {
		if n := reg.Dropped("ingest", "stdin.0", r).Load(); n > 0 {
			drops[r] = n
		}
	}
	return stdinResult{evs, drops}
}

// The one-pass conversion of objects must keep exactly what the scanning
// path keeps and drop exactly what it drops, however reads split the input.
func FuzzObjectFastPathAgreesWithScan(f *testing.F) {
	for _, s := range []string{
		"{\"a\":1}\n{\"b\":[1,2,{\"c\":null}]}\n",
		"{\"a\":1}{\"b\":2} {\"c\":3}",
		"{\"a\":\"esc \\\" \\u00e9 \\ud83d\\ude00\"}\n{\"b\":1.5e3}\n",
		"{\"a\":1,}\n{\"b\":2}\n",
		"{\"a\":01}\n{\"a\":-}\n{\"a\":1e}\n",
		"{\"a\":tru}\n{\"b\":true}\n",
		"{\"cut\": \"off",
		"{\"a\":\"ctl \x01\"}\n{\"b\":2}\n",
		"[[1700000000,{}],{\"a\":1}]\n{\"b\":2}\n",
		"{\"a\":1} trailing\n{\"b\":2}\n",
		"  \n\t{ \"a\" : [ ] , \"b\" : { } }  \n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		readSize := len(in) + 1
		if split > 0 {
			readSize = int(split)
		}
		fast := runStdin(t, in, readSize, false)
		scan := runStdin(t, in, readSize, true)
		if !reflect.DeepEqual(fast, scan) {
			t.Fatalf("input %q in reads of %d:\nfast path %+v\nscan path %+v", in, readSize, fast, scan)
		}
	})
}
