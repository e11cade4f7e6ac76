package loki

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

func benchChunk(n int) *chunk.Chunk {
	var data []byte
	for i := range n {
		ev := event.Event{Time: event.Time{Sec: 1700000000 + int64(i), Nsec: 5}, Body: plugintest.KV(
			"seq", i, "message", fmt.Sprintf("GET /api/v1/items/%d HTTP/1.1 200 512 \"-\" \"curl/8.0\"", i),
			"level", []string{"info", "warn"}[i%2], "kubernetes", plugintest.KV("ns", "prod", "pod", "web-1-abc"))}
		data = ev.AppendMsgpack(data)
	}
	return &chunk.Chunk{ID: "bench", Tag: "app", Type: chunk.Logs, Records: n, Data: data}
}

func BenchmarkFlush(b *testing.B) {
	for _, f := range []string{"json", "protobuf"} {
		b.Run(f, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			o, err := Spec().NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(Spec(),
				"host "+host, "port "+port, "format "+f, "labels job=bench, $kubernetes['ns']", "label_keys level"))
			if err != nil {
				b.Fatal(err)
			}
			c := benchChunk(1000)
			b.SetBytes(int64(len(c.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := o.Flush(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
