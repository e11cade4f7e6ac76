package router

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
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
