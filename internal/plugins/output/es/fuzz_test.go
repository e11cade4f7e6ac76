package es

import (
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/outputtest"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// FuzzSettle feeds arbitrary bulk responses to the item reader: it must
// answer an error or settle records, never panic, and never settle a record
// it did not send.
func FuzzSettle(f *testing.F) {
	f.Add([]byte(`{"took":1,"errors":false,"items":[]}`))
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429,"error":{"type":"x"}}},{"index":{"status":400}}]}`))
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":409}},{},{"update":{"status":"x"}}]}`))
	f.Add([]byte(`not json`))
	o, err := newOutput("es", plugin.Settings{}, plugintest.Props(Spec()))
	if err != nil {
		f.Fatal(err)
	}
	c := outputtest.Chunk(0, 3)
	f.Fuzz(func(t *testing.T, resp []byte) {
		st := &chunkState{}
		st.size(3)
		_ = o.settle(c, st, []int{0, 2}, resp)
		if st.done[1] {
			t.Fatalf("record 1 settled although not sent")
		}
		if st.failed > 2 {
			t.Fatalf("%d failures for 2 records", st.failed)
		}
	})
}
