package app

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugins/all"
	"github.com/floe-io/floe/internal/tag"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/testutil/natstest"
	"github.com/floe-io/floe/services/filter"
	"github.com/floe-io/floe/services/router"
)

// fusedStages runs a filter stage whose chunks the router of the same
// "process" fans out, as runStages wires them when fuse is on.
func fusedStages(t *testing.T, js jetstream.JetStream, outputs ...string) (fm, rm *telemetry.StageMetrics) {
	t.Helper()
	var routes []router.Route
	for _, id := range outputs {
		m, err := tag.NewMatcher("app.*", "")
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, router.Route{Name: id, ID: id, Matcher: m})
	}
	fm, rm = &telemetry.StageMetrics{}, &telemetry.StageMetrics{}
	rt := router.New(js, router.Config{Routes: routes, Metrics: rm})
	fs := filter.New(js, filter.Config{Metrics: fm, Forward: rt})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = rt.Run(ctx, context.Background()); done <- struct{}{} }()
	go func() { _ = fs.Run(ctx, context.Background()); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return fm, rm
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func oneEvent(t *testing.T, msg string) []byte {
	t.Helper()
	body, err := event.AppendFromJSON(nil, []byte(`{"msg":"`+msg+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	return event.AppendRaw(nil, event.Time{Sec: 1}, nil, body)
}

// Fused, a FLOE_IN chunk reaches every output stream whose Match takes it
// without passing through FLOE_FILTERED, with the ids the router would have
// given it; a chunk no output takes is counted as unmatched and acknowledged.
func TestFusedFilterRouterSkipsFilteredStream(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{Outputs: []jsx.OutputStream{{ID: "a"}, {ID: "b"}}}); err != nil {
		t.Fatal(err)
	}
	_, rm := fusedStages(t, js, "a", "b")
	pub := jsx.NewPublisher(js)
	if err := pub.Publish(ctx, jsx.InSubject("app.web"), &chunk.Chunk{ID: "in-1", Tag: "app.web", Records: 1, Data: oneEvent(t, "x")}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, jsx.InSubject("other"), &chunk.Chunk{ID: "in-2", Tag: "other", Records: 3, Data: oneEvent(t, "y")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FLOE_IN drained and the unmatched chunk counted", func() bool {
		return streamMsgs(t, js, jsx.StreamIn) == 0 && rm.Unmatched.Load() == 1
	})
	for _, id := range []string{"a", "b"} {
		st, err := js.Stream(ctx, jsx.OutputStreamName(id))
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Msgs; n != 1 {
			t.Fatalf("output %s holds %d chunks, want 1", id, n)
		}
		m, err := st.GetMsg(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Header.Get(jetstream.MsgIDHeader), "in-1.f0>"+id; got != want {
			t.Errorf("output %s: chunk id %q, want %q (the router's id for the filter's chunk)", id, got, want)
		}
		if got := m.Header.Get(chunk.HeaderTag); got != "app.web" {
			t.Errorf("output %s: tag %q", id, got)
		}
	}
	if n := streamMsgs(t, js, jsx.StreamFiltered); n != 0 {
		t.Errorf("FLOE_FILTERED holds %d messages; fused, nothing goes through it", n)
	}
	st, _ := js.Stream(ctx, jsx.StreamFiltered)
	if last := st.CachedInfo().State.LastSeq; last != 0 {
		t.Errorf("FLOE_FILTERED stored %d messages; fused, nothing goes through it", last)
	}
	if got := rm.UnmatchedRecords.Load(); got != 3 {
		t.Errorf("unmatched records %d, want 3", got)
	}
	if got := rm.ChunksOut.Load(); got != 2 {
		t.Errorf("router chunks out %d, want 2", got)
	}
}

// A FLOE_IN chunk whose copy for one output could not be stored is not
// acknowledged; when it comes back, the copies already stored are published
// again under the same ids and the server drops them: each output holds the
// chunk once.
func TestFusedRedeliveryRepublishesSameIDs(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{Outputs: []jsx.OutputStream{{ID: "a"}, {ID: "b"}}}); err != nil {
		t.Fatal(err)
	}
	// Output b refuses the chunk for now: too large for it, a permanent
	// publish error, so the FLOE_IN message is given back and redelivered.
	bName := jsx.OutputStreamName("b")
	bs, err := js.Stream(ctx, bName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := bs.CachedInfo().Config
	cfg.MaxMsgSize = 16
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	fm, _ := fusedStages(t, js, "a", "b")
	if err := jsx.NewPublisher(js).Publish(ctx, jsx.InSubject("app.web"),
		&chunk.Chunk{ID: "in-1", Tag: "app.web", Records: 1, Data: oneEvent(t, "a record longer than sixteen bytes")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "output a to get its copy", func() bool { return streamMsgs(t, js, jsx.OutputStreamName("a")) == 1 })
	if n := streamMsgs(t, js, jsx.StreamIn); n != 1 {
		t.Fatalf("FLOE_IN holds %d messages; the chunk must stay until output b has its copy", n)
	}
	cfg.MaxMsgSize = -1
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivered chunk to reach output b and FLOE_IN to drain", func() bool {
		return streamMsgs(t, js, bName) == 1 && streamMsgs(t, js, jsx.StreamIn) == 0
	})
	if n := streamMsgs(t, js, jsx.OutputStreamName("a")); n != 1 {
		t.Errorf("output a holds %d copies, want 1", n)
	}
	if d := fm.Duplicates.Load(); d < 1 {
		t.Errorf("duplicates %d: the redelivery did not republish a's copy under its id", d)
	}
}

// fuse is on unless the configuration turns it off; the key is accepted
// by validation like any [SERVICE] key.
func TestFuseKeyDefaultsOn(t *testing.T) {
	for _, c := range []struct {
		svc  string
		want bool
	}{{"", true}, {"[SERVICE]\n    fuse off\n", false}, {"[SERVICE]\n    Fuse On\n", true}} {
		plan, err := Validate(parse(t, c.svc+"[INPUT]\n    Name dummy\n[OUTPUT]\n    Name stdout\n"), all.Registry())
		if err != nil {
			t.Fatalf("%q: %v", c.svc, err)
		}
		if plan.Service.Fuse != c.want {
			t.Errorf("%q: fuse = %v, want %v", c.svc, plan.Service.Fuse, c.want)
		}
	}
	if _, err := Validate(parse(t, "[SERVICE]\n    fuse maybe\n[INPUT]\n    Name dummy\n[OUTPUT]\n    Name stdout\n"), all.Registry()); err == nil {
		t.Error("fuse maybe was accepted")
	}
}
