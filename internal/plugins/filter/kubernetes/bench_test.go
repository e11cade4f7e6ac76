package kubernetes

import (
	"context"
	"testing"
)

// BenchmarkFilterCacheHit is the cost per record of enriching a chunk of
// 100 CRI records whose pod metadata is cached (the steady state).
func BenchmarkFilterCacheHit(b *testing.B) {
	for _, bc := range []struct {
		name  string
		lines []string
	}{
		{"enrich", nil},
		{"merge_log", []string{"merge_log on", "merge_log_key log_processed"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			api := newAPIServer(newPod(docNamespace, docPod, docContainer, map[string]string{"a": "b"}))
			srv := httptestServer(b, api)
			f := newTestFilter(b, append([]string{"kube_url " + srv}, bc.lines...)...)
			lines := make([]string, 100)
			for i := range lines {
				lines[i] = criLine
			}
			in := criRecords(b, docTag, lines...)
			if _, err := f.FilterChunk(context.Background(), in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.FilterChunk(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*in.Records), "ns/record")
			if f.Stats().Requests != 1 {
				b.Fatalf("stats = %+v: the benchmark did not hit the cache", f.Stats())
			}
		})
	}
}
