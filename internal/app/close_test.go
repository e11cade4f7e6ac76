package app

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugins/all"
)

// closeCounter is a filter holding a resource: it counts the chunks it
// filtered, its Close calls, and Close calls that came while it was
// filtering.
type closeCounter struct {
	inFlight, chunks, closes, early atomic.Int32
}

func (f *closeCounter) FilterChunk(_ context.Context, c *chunk.Chunk) ([]*chunk.Chunk, error) {
	f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	time.Sleep(5 * time.Millisecond) // widen the window a wrong Close would hit
	f.chunks.Add(1)
	return []*chunk.Chunk{c}, nil
}

func (f *closeCounter) Close(context.Context) error {
	if f.inFlight.Load() > 0 {
		f.early.Add(1)
	}
	f.closes.Add(1)
	return nil
}

// The app closes every filter instance once: the old ones when a hot
// reload replaces them, the new ones when the process stops.
func TestFiltersClosedOnReloadAndStop(t *testing.T) {
	var mu sync.Mutex
	var built []*closeCounter
	instances := func() []*closeCounter {
		mu.Lock()
		defer mu.Unlock()
		return append([]*closeCounter(nil), built...)
	}
	reg := all.Registry()
	if err := reg.Add(&plugin.Spec{Kind: plugin.KindFilter, Name: "close_counter",
		NewFilter: func(context.Context, plugin.Settings, *plugin.Props) (plugin.Filter, error) {
			f := &closeCounter{}
			mu.Lock()
			built = append(built, f)
			mu.Unlock()
			return f, nil
		}}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	text := fmt.Sprintf(`[SERVICE]
    Flush        0.1
    Grace        2
    Hot_Reload   On
    HTTP_Server  On
    HTTP_Listen  127.0.0.1
    HTTP_Port    %s
[INPUT]
    Name  dummy
    Rate  50
[FILTER]
    Name  close_counter
    Match *
[FILTER]
    Name  close_counter
    Match *
[OUTPUT]
    Name  null
    Match *
`, port)
	cfg := parse(t, text)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- Run(ctx, Options{Config: cfg, Registry: reg, StoragePath: t.TempDir(), Stderr: &syncWriter{w: &logs},
			Reload: func() (*config.Config, error) {
				return config.ParseClassic("test.conf", []byte(text), func(string) (string, bool) { return "", false })
			}})
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	filtering := func(from int) func() bool {
		return func() bool {
			fs := instances()
			if len(fs) < from+2 {
				return false
			}
			for _, f := range fs[from : from+2] {
				if f.chunks.Load() == 0 {
					return false
				}
			}
			return true
		}
	}
	waitFor("the first filters to see chunks", filtering(0))
	waitFor("the reload to be accepted", func() bool {
		res, err := http.Post("http://"+addr+"/api/v2/reload", "", nil)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	waitFor("the reloaded filters to see chunks", filtering(2))
	fs := instances()
	if len(fs) != 4 {
		t.Fatalf("%d filter instances built, want 2 before and 2 after the reload", len(fs))
	}
	for i, f := range fs[:2] {
		if n := f.closes.Load(); n != 1 {
			t.Errorf("replaced filter %d closed %d time(s), want 1", i, n)
		}
	}
	for i, f := range fs[2:] {
		if n := f.closes.Load(); n != 0 {
			t.Errorf("running filter %d closed %d time(s)", i, n)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	for i, f := range instances() {
		if n, e := f.closes.Load(), f.early.Load(); n != 1 || e != 0 {
			t.Errorf("filter %d: %d Close call(s), %d while a chunk was in it; want 1 and 0", i, n, e)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
