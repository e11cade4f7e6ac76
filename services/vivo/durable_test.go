package vivo

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
)

// Several replicas of the stage give the same answers: they share the
// streams and hold nothing of their own.
func TestReplicasAnswerTheSame(t *testing.T) {
	a := newEnv(t, "stream_queue_size", "5K")
	b := newEnvOn(t, a.nats, "stream_queue_size", "5K")
	for i := range 30 {
		a.publishLogs(fmt.Sprintf("app.%d", i%3), fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("y", 100)))
	}
	m, n := metricsPayload(t, "m", 1)
	a.publish(chunk.Metrics, "metrics", "fluentbit_metrics.0", m, n)
	for _, q := range []string{"/logs", "/api/v1/logs", "/logs?from=25&limit=3", "/api/v1/logs?tag=app.1", "/api/v1/metrics", "/traces", "/api/v1/logs?to=0&from=27"} {
		ra, rb := a.get(q), b.get(q)
		sa, ea, na := ra.ids()
		sb, eb, nb := rb.ids()
		if ra.body != rb.body || sa != sb || ea != eb || na != nb {
			t.Errorf("%s: replicas differ: %s/%s/%s vs %s/%s/%s", q, sa, ea, na, sb, eb, nb)
		}
		if ra.body == "" && !strings.Contains(q, "traces") {
			t.Errorf("%s: empty", q)
		}
	}
}

// Ids survive a restart of the stage and of NATS.
func TestIDsSurviveRestarts(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.publishLogs("app", fmt.Sprintf(`{"n":%d}`, i))
	}
	before := e.get("/api/v1/logs")
	if s, end, next := before.ids(); s != "0" || end != "2" || next != "3" {
		t.Fatalf("before: %s %s %s", s, end, next)
	}

	// the vivo stage restarts
	e.stop()
	e.start()
	if after := e.get("/api/v1/logs"); after.body != before.body {
		t.Errorf("after a stage restart:\n%s\nwant\n%s", after.body, before.body)
	}

	// NATS restarts (same storage): the stage reconnects and answers the same
	e.nats.Restart()
	deadline := time.Now().Add(20 * time.Second)
	var after response
	for {
		after = e.get("/api/v1/logs")
		if after.status == 200 || time.Now().After(deadline) {
			break
		}
		if after.status != 503 {
			t.Fatalf("while NATS restarts: status %d (want 503 or 200)", after.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.body != before.body {
		t.Fatalf("after a NATS restart (%d):\n%s\nwant\n%s", after.status, after.body, before.body)
	}
	e.publishLogs("app", `{"n":3}`)
	res := e.get("/logs?from=3")
	if s, end, next := res.ids(); s != "3" || end != "3" || next != "4" {
		t.Errorf("new chunk after restarts: %s %s %s", s, end, next)
	}
}

// A read of the whole of a large stream (limit far above it) is streamed:
// the stage's memory does not grow with the response. Run with -v for the
// figures.
func TestLargeReadIsStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("large read")
	}
	const chunks = 20000
	// NATS runs in another process: the heap measured below is the stage's.
	e := newEnvJS(t, externalNATS(t), "stream_queue_size", "0")
	pad := strings.Repeat("z", 2000)
	data, n := logs(`{"message":"`+pad+`","n":1}`, `{"message":"`+pad+`","n":2}`)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < chunks; i += 8 {
				e.publish(chunk.Logs, "bulk", "dummy.0", data, n)
			}
		}()
	}
	wg.Wait()
	t.Logf("stored %d chunks (%d bytes of MessagePack each) in %s", chunks, len(data), time.Since(start).Round(time.Millisecond))

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	// Peak heap in use (live and not yet collected) and peak live heap (as
	// marked by the collector), sampled while the response streams.
	var peak, peakLive atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			runtime.ReadMemStats(&ms)
			metrics.Read(live)
			peak.Store(max(peak.Load(), ms.HeapInuse))
			peakLive.Store(max(peakLive.Load(), live[0].Value.Uint64()))
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	start = time.Now()
	// The client discards as it reads (doGet would keep the body: count instead).
	resp, total := countingGet(t, e.url+"/api/v1/logs?limit=100000")
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if s, end, _ := resp.ids(); s != "0" || end != fmt.Sprint(chunks-1) {
		t.Fatalf("ids %s..%s", s, end)
	}
	if resp.lines != chunks {
		t.Fatalf("%d lines", resp.lines)
	}
	t.Logf("read %d chunks, %.1f MB of JSON, in %s (%.0f chunks/s); heap in use %.1f MB before, peak %.1f MB; peak live heap %.1f MB",
		chunks, float64(total)/1e6, elapsed.Round(time.Millisecond), chunks/elapsed.Seconds(),
		float64(base.HeapInuse)/1e6, float64(peak.Load())/1e6, float64(peakLive.Load())/1e6)
	// The response is ~83 MB; buffering it would show in the live heap,
	// which is bounded by the consumer's look-ahead (256 messages) plus
	// rendering, whatever the response size.
	if live := int64(peakLive.Load()); live > 16<<20 {
		t.Errorf("live heap reached %d bytes for a %d-byte response: not streamed", live, total)
	}
}
