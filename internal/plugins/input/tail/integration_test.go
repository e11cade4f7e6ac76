package tail_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/jsx"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/plugins/input/tail"
	"github.com/floe-io/floe/internal/positions"
	"github.com/floe-io/floe/internal/testutil/natstest"
	"github.com/floe-io/floe/services/ingest"
)

// frozenOffsets records every batch end the input announces but never lets
// the committed offset move: the store as it would be had no receipt ever
// resolved before the process died (every batch in flight).
type frozenOffsets struct {
	*positions.Store
	mu   *sync.Mutex
	ends map[string][]string
}

func (f frozenOffsets) Commit(ctx context.Context, key string, p positions.Position) error {
	f.mu.Lock()
	for _, e := range strings.Split(p.Extra["cuts"], ",") {
		if e == "" || e == "0" {
			continue
		}
		n, _ := strconv.ParseInt(e, 10, 64)
		list := f.ends[key]
		if last := len(list) - 1; last < 0 || n > mustInt(list[last]) {
			f.ends[key] = append(list, e)
		}
	}
	p.Offset = 0
	p.Extra["cuts"] = strings.Join(append([]string{"0"}, f.ends[key]...), ",")
	f.mu.Unlock()
	return f.Store.Commit(ctx, key, p)
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func runIngest(t *testing.T, js jetstream.JetStream, store plugin.PositionStore, path string) (stop func()) {
	t.Helper()
	p := plugintest.Props(tail.Spec(), "path "+path, "read_from_head on", "tag app")
	in, err := tail.New(context.Background(), plugin.Settings{Name: "tail.0", Positions: store}, p)
	if err != nil {
		t.Fatal(err)
	}
	svc := ingest.New(js, ingest.Config{Inputs: []ingest.Input{{Name: "tail.0", Tag: "app", Input: in}}, Flush: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest: %v", err)
		}
	}
}

// storedLines reads every chunk of FLOE_IN and counts each line.
func storedLines(t *testing.T, js jetstream.JetStream) (msgs uint64, lines map[string]int) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, "FLOE_IN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines = map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Data, err = chunk.Payload(m.Header, m.Data); err != nil {
			t.Fatal(err)
		}
		it := event.NewIter(m.Data)
		for it.Next() {
			ev, err := it.Event().Decode()
			if err != nil {
				t.Fatal(err)
			}
			v, _ := ev.Body.Get("log")
			lines[v.(string)]++
		}
		if m.Header.Get(chunk.HeaderMsgID) == "" || !strings.HasPrefix(m.Header.Get(chunk.HeaderMsgID), "tail-") {
			t.Fatalf("chunk %d has Msg-Id %q", seq, m.Header.Get(chunk.HeaderMsgID))
		}
	}
	return info.State.Msgs, lines
}

// Against a real JetStream: after a restart that re-reads everything the
// first run stored (its positions were never committed), the server's
// duplicate window drops every copy, because they carry the same Msg-Ids.
func TestRestartAgainstJetStreamDeduplicates(t *testing.T) {
	srv := natstest.Run(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := jsx.EnsureTopology(ctx, js, jsx.Topology{}); err != nil {
		t.Fatal(err)
	}
	store, err := positions.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "app.log")
	const total = 3000
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(from, to int) {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "line-%d %s\n", i, strings.Repeat("x", 150))
		}
		if _, err := f.WriteString(b.String()); err != nil {
			t.Fatal(err)
		}
	}
	eventually := func(what string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	stop := runIngest(t, js, frozenOffsets{Store: store, mu: &sync.Mutex{}, ends: map[string][]string{}}, path)
	for i := 0; i < total; i += 500 {
		write(i, i+500) // several batches, cut wherever the reader was
		time.Sleep(30 * time.Millisecond)
	}
	eventually("the first run's lines", func() bool { _, l := storedLines(t, js); return len(l) == total })
	stop()
	msgs1, _ := storedLines(t, js)
	key := positions.Key("tail.0", path)
	p, ok, err := store.Get(ctx, key)
	if err != nil || !ok || p.Offset != 0 || strings.Count(p.Extra["cuts"], ",") < 2 {
		t.Fatalf("position after the first run: %+v %v %v", p, ok, err)
	}

	write(total, total+10)
	stop = runIngest(t, js, store, path)
	defer stop()
	eventually("the new lines", func() bool { _, l := storedLines(t, js); return len(l) == total+10 })
	eventually("the commit", func() bool {
		p, _, _ := store.Get(ctx, key)
		fi, _ := os.Stat(path)
		return p.Offset == fi.Size()
	})
	msgs2, lines := storedLines(t, js)
	dups := 0
	for i := 0; i < total+10; i++ {
		n := lines["line-"+strconv.Itoa(i)+" "+strings.Repeat("x", 150)]
		if n == 0 {
			t.Fatalf("line %d lost", i)
		}
		dups += n - 1
	}
	if dups != 0 || msgs2 != msgs1+1 {
		t.Fatalf("after the replay: %d duplicated lines, %d chunks (first run %d, want one more)", dups, msgs2, msgs1)
	}
}
