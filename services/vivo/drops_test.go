package vivo

import (
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/telemetry"
)

// A stored chunk whose MessagePack breaks off is rendered up to the break;
// the records left out are counted as malformed on each read, and the
// chunks around it are served whole.
func TestMalformedChunkCountedOnRead(t *testing.T) {
	e := newEnv(t)
	e.stop()
	e.reg = telemetry.NewRegistry("test")
	e.start()

	e.publishLogs("app", `{"n":1}`)
	good, _ := logs(`{"n":2}`)
	bad := append(append([]byte{}, good...), 0x92, 0xd7) // a second event cut short
	e.publish(chunk.Logs, "app", "dummy.0", bad, 3)
	e.publishLogs("app", `{"n":3}`)

	dropped := e.reg.Dropped("vivo", "vivo_exporter.0", telemetry.DropMalformedChunk)
	for read := 1; read <= 2; read++ {
		r := e.get("/logs")
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		for _, want := range []string{`"n":1`, `"n":2`, `"n":3`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("read %d lacks %s:\n%s", read, want, r.body)
			}
		}
		// 3 records by header, 1 rendered: 2 left out per read.
		if got := dropped.Load(); got != uint64(2*read) {
			t.Errorf("after read %d: floe_dropped_records_total{stage=vivo,reason=malformed_chunk} = %d, want %d", read, got, 2*read)
		}
	}
}
