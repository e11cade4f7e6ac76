package opentelemetry

import (
	"context"
	"fmt"
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

// BenchmarkFlush exports 1000-record logs chunks to the in-process pdata
// receiver, which decodes every request (its cost is in the figures: both
// share the machine). records/s is the output's throughput per flusher.
func BenchmarkFlush(b *testing.B) {
	for _, tr := range []struct {
		name  string
		grpc  bool
		extra []string
	}{
		{"http_protobuf", false, nil},
		{"http_json", false, []string{"format json"}},
		{"http_protobuf_gzip", false, []string{"compress gzip"}},
		{"grpc", true, nil},
		{"grpc_gzip", true, []string{"compress gzip"}},
	} {
		b.Run(tr.name, func(b *testing.B) {
			sink := newSink(b, tr.grpc)
			sink.discard = true
			o, err := newOutput(context.Background(), plugin.Settings{Name: "opentelemetry.0"},
				plugintest.Props(Spec(), sink.config(append(tr.extra, "logs_body_key $message", "logs_body_key_attributes on")...)...))
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close(context.Background())
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

// BenchmarkEncode is the output's own share of a flush: a 1000-record logs
// chunk mapped to OTLP and encoded, with no network and no receiver.
func BenchmarkEncode(b *testing.B) {
	for _, format := range []string{"protobuf", "json"} {
		b.Run(format, func(b *testing.B) {
			o, err := newOutput(context.Background(), plugin.Settings{Name: "opentelemetry.0"},
				plugintest.Props(Spec(), "port 4318", "format "+format, "logs_body_key $message", "logs_body_key_attributes on"))
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close(context.Background())
			c := benchChunk(1000)
			b.SetBytes(int64(len(c.Data)))
			b.ReportAllocs()
			for b.Loop() {
				reqs, err := o.requests(c)
				if err != nil || len(reqs) != 1 {
					b.Fatalf("%d requests, %v", len(reqs), err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
