package es

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
			"host", "web-1", "level", "info", "kubernetes", plugintest.KV("ns", "prod", "pod", "web-1-abc"))}
		data = ev.AppendMsgpack(data)
	}
	return &chunk.Chunk{ID: "bench", Tag: "app", Type: chunk.Logs, Records: n, Data: data}
}

// BenchmarkFlush measures a whole flush against a server answering a bulk
// success the size Elasticsearch sends (one item per record).
func BenchmarkFlush(b *testing.B) {
	const n = 1000
	var item = []byte(`{"create":{"_index":"logstash-2023.11.14","_id":"0123456789abcdef01234567-1","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":1,"_primary_term":1,"status":201}}`)
	resp := []byte(`{"took":3,"errors":false,"items":[`)
	for i := range n {
		if i > 0 {
			resp = append(resp, ',')
		}
		resp = append(resp, item...)
	}
	resp = append(resp, "]}"...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(resp)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	spec := Spec()
	o, err := spec.NewOutput(context.Background(), plugin.Settings{}, plugintest.Props(spec,
		"host "+host, "port "+port, "logstash_format on", "suppress_type_name on", "buffer_size false"))
	if err != nil {
		b.Fatal(err)
	}
	c := benchChunk(n)
	b.SetBytes(int64(len(c.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := o.Flush(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEncode measures the bulk body rendering alone.
func BenchmarkEncode(b *testing.B) {
	o, err := newOutput("es", plugin.Settings{}, plugintest.Props(Spec(), "logstash_format on"))
	if err != nil {
		b.Fatal(err)
	}
	c := benchChunk(1000)
	var buf []byte
	b.SetBytes(int64(len(c.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, _, err = o.appendBulk(buf[:0], c, &chunkState{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "records/s")
}
