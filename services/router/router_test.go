package router

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/tag"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
)

func route(t *testing.T, id, match, re string) Route {
	m, err := tag.NewMatcher(match, re)
	if err != nil {
		t.Fatal(err)
	}
	return Route{Name: id, ID: id, Matcher: m}
}

func msgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

func TestRouterFansOutByMatchAndDropsUnmatched(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	routes := []Route{route(t, "all", "*", ""), route(t, "apps", "app.*", ""), route(t, "kube", "", "^kube\\.")}
	topo := jsx.Topology{}
	for _, r := range routes {
		topo.Outputs = append(topo.Outputs, jsx.OutputStream{ID: r.ID})
	}
	if err := jsx.EnsureTopology(context.Background(), js, topo); err != nil {
		t.Fatal(err)
	}
	m := &telemetry.StageMetrics{}
	s := New(js, Config{Routes: routes[1:], Metrics: m}) // "all" is declared but not routed to here
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, context.Background()) }()
	defer func() { cancel(); <-done }()

	pub := jsx.NewPublisher(js)
	for i, tg := range []string{"app.web", "kube.pod", "app.kube", "other", "kubeX"} {
		c := &chunk.Chunk{ID: "c" + string(rune('0'+i)), Tag: tg, Records: 2, Data: []byte{0x80}}
		if err := pub.Publish(ctx, jsx.FilteredSubject(tg), c); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for msgs(t, js, jsx.StreamFiltered) != 0 || m.Unmatched.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("router did not finish: filtered=%d unmatched=%d", msgs(t, js, jsx.StreamFiltered), m.Unmatched.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := msgs(t, js, jsx.OutputStreamName("apps")); n != 2 {
		t.Errorf("apps output got %d chunks, want 2 (app.web, app.kube)", n)
	}
	if n := msgs(t, js, jsx.OutputStreamName("kube")); n != 1 {
		t.Errorf("kube output got %d chunks, want 1 (kube.pod)", n)
	}
	if n := msgs(t, js, jsx.OutputStreamName("all")); n != 0 {
		t.Errorf("unrouted output got %d chunks", n)
	}
	if m.UnmatchedRecords.Load() != 4 {
		t.Errorf("unmatched records = %d, want 4", m.UnmatchedRecords.Load())
	}
}

// A chunk no output matches is counted under reason "unmatched" with its
// records, and logged at warning level with its tag, even when it was
// published raw without Floe's headers.
func TestUnmatchedCountedAndLogged(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	routes := []Route{route(t, "apps", "app.*", "")}
	if err := jsx.EnsureTopology(context.Background(), js, jsx.Topology{Outputs: []jsx.OutputStream{{ID: "apps"}}}); err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry("test")
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// One worker: chunks are handled in stream order, so which drop is first is known.
	s := New(js, Config{Routes: routes, Workers: 1, Metrics: reg.Stage("router"), Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, context.Background()) }()
	defer func() { cancel(); <-done }()

	pub := jsx.NewPublisher(js)
	var data []byte
	for i := 0; i < 2; i++ {
		ev := event.Event{Time: event.Time{Sec: 1}, Body: event.Map{{Key: "i", Value: int64(i)}}}
		data = ev.AppendMsgpack(data)
	}
	if err := pub.Publish(ctx, jsx.FilteredSubject("other"), &chunk.Chunk{ID: "u1", Tag: "other", Records: 3, Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, jsx.FilteredSubject("app.web"), &chunk.Chunk{ID: "m1", Tag: "app.web", Records: 7, Data: data}); err != nil {
		t.Fatal(err)
	}
	// Raw, without headers: the router learns neither tag nor count from them.
	if _, err := js.Publish(ctx, jsx.FilteredSubject("raw"), data); err != nil {
		t.Fatal(err)
	}
	dropped := reg.Dropped("router", "router", telemetry.DropUnmatched)
	deadline := time.Now().Add(20 * time.Second)
	for msgs(t, js, jsx.StreamFiltered) != 0 || dropped.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("router did not finish: filtered=%d dropped=%d", msgs(t, js, jsx.StreamFiltered), dropped.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := dropped.Load(); got != 5 {
		t.Errorf("floe_dropped_records_total{stage=router,reason=unmatched} = %d, want 5 (3 by header + 2 counted)", got)
	}
	if n := msgs(t, js, jsx.OutputStreamName("apps")); n != 1 {
		t.Errorf("apps output got %d chunks, want 1", n)
	}
	if js := string(reg.MetricsJSON()); !strings.Contains(js, `"router":{"router":{"unmatched":5}}`) {
		t.Errorf("not in /api/v1/metrics: %s", js)
	}
	cancel()
	<-done
	// First drop at once with its tag; the second in the summary at stop.
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["reason"] == telemetry.DropUnmatched {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d unmatched log lines, want 2 (first, summary):\n%s", len(lines), logs)
	}
	if lines[0]["level"] != "WARN" || lines[0]["tag"] != "other" || lines[0]["records"] != 3.0 {
		t.Errorf("first line = %v", lines[0])
	}
	if lines[1]["records"] != 2.0 || lines[1]["tag"] != "" {
		t.Errorf("summary line = %v", lines[1])
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
