package tcp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

// nullWriter counts what it is given, like the pipeline feeding the null output.
type nullWriter struct{ records, bytes atomic.Int64 }

type done struct{}

func (done) Done() <-chan struct{} { c := make(chan struct{}); close(c); return c }
func (done) Err() error            { return nil }

func (w *nullWriter) Write(_ context.Context, _ string, data []byte, n int) (plugin.Receipt, error) {
	w.records.Add(int64(n))
	w.bytes.Add(int64(len(data)))
	return done{}, nil
}

// BenchmarkJSONToNull: a Go client streams JSON lines of about 200 bytes
// over one connection; reports records/s and MB/s of input read.
func BenchmarkJSONToNull(b *testing.B) {
	in, err := New(context.Background(), plugin.Settings{Name: "tcp.0"}, plugintest.Props(Spec(), "listen 127.0.0.1", "port 0"))
	if err != nil {
		b.Fatal(err)
	}
	t := in.(*TCP)
	w := &nullWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go t.Run(ctx, w)
	addr, err := t.Addr(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var block bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&block, `{"seq":%d,"level":"info","service":"checkout","msg":"order placed for customer with a fairly ordinary message body","latency_ms":12.5,"ok":true,"pad":"xxxxxxxxxxxxxxxx"}`+"\n", i)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(block.Len()) / 1000)
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for sent < b.N {
		if _, err := c.Write(block.Bytes()); err != nil {
			b.Fatal(err)
		}
		sent += 1000
	}
	for w.records.Load() < int64(sent) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "records/s")
}
