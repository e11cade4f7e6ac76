package otelwasm

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/wasmhost"
)

const guest = "../../../otelwasm/testdata/recvexp.wasm"

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// A Go ABI v1 exporter guest receives the records of a chunk.
func TestExporterReceivesRecords(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	out := &syncBuf{}
	o, err := NewWithOptions(ctx, plugin.Settings{Name: "otelwasm.0"}, plugintest.Props(Spec(), "path "+guest),
		Options{Runtime: rt, Stdout: out, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []any
	for i := range 6 {
		bodies = append(bodies, plugintest.KV("message", fmt.Sprintf("hi %d", i)))
	}
	if err := o.Flush(ctx, plugintest.Chunk(bodies...)); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.b.String()), "\n")
	if len(got) != 6 {
		t.Fatalf("exporter printed %d lines, want 6:\n%s", len(got), out.b.String())
	}
	for i, l := range got {
		// The body is the whole record as a kvlist (no body key).
		if !strings.HasPrefix(l, "exported ") || !strings.Contains(l, fmt.Sprintf("hi %d", i)) {
			t.Errorf("line %d: %q", i, l)
		}
	}
}

func TestExporterStatusIsRetry(t *testing.T) {
	ctx := context.Background()
	o, err := NewWithOptions(ctx, plugin.Settings{Name: "otelwasm.0"}, plugintest.Props(Spec(), "path "+guest, "logs_body_key log"), Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	// logs_body_key log: the OTLP body is the string "fail".
	c := plugintest.Chunk(plugintest.KV("log", "fail"))
	err = o.Flush(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "refused: fail") || plugin.IsPermanent(err) {
		t.Fatalf("want a retryable error with the guest's reason, got %v", err)
	}
}
