package jsx

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// answering is a JetStream whose stream declarations get errs in turn,
// then success (or, with forever, the last error again and again).
type answering struct {
	jetstream.JetStream
	errs    []error
	forever bool
	calls   int
}

func (a *answering) CreateOrUpdateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	a.calls++
	if len(a.errs) == 0 {
		return nil, nil
	}
	err := a.errs[0]
	if len(a.errs) > 1 || !a.forever {
		a.errs = a.errs[1:]
	}
	return nil, err
}

func noPeers() error {
	return &jetstream.APIError{Code: 400, ErrorCode: errCodeClusterNoPeers, Description: "no suitable peers for placement"}
}

// "No suitable peers" is what a cluster still forming answers for a
// replicated stream (CI saw a start fail on it): it is retried, and only
// refused, with the replica count and a hint, when it lasts.
func TestNoPeersRetriedThenExplained(t *testing.T) {
	old := noPeersPatience
	noPeersPatience = 300 * time.Millisecond
	defer func() { noPeersPatience = old }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := jetstream.StreamConfig{Name: "FLOE_IN", Replicas: 3}

	forming := &answering{errs: []error{noPeers(), noPeers()}}
	if err := ensureStream(ctx, forming, cfg); err != nil {
		t.Fatalf("cluster that found its peers: %v", err)
	}
	if forming.calls != 3 {
		t.Errorf("%d declarations, want 3 (two refused, one accepted)", forming.calls)
	}

	short := &answering{errs: []error{noPeers()}, forever: true}
	start := time.Now()
	err := ensureStream(ctx, short, cfg)
	if err == nil || !strings.Contains(err.Error(), "3 replicas") || !strings.Contains(err.Error(), "no suitable peers") {
		t.Fatalf("lasting no-peers: %v", err)
	}
	if d := time.Since(start); d < noPeersPatience {
		t.Errorf("gave up after %v, before the %v of patience", d, noPeersPatience)
	}

	bad := &answering{errs: []error{&jetstream.APIError{Code: 400, ErrorCode: 10052, Description: "replicas > 5 not supported"}}}
	if err := ensureStream(ctx, bad, cfg); err == nil || bad.calls != 1 {
		t.Errorf("a config error: %v after %d declarations, want an error after 1", err, bad.calls)
	}
}
