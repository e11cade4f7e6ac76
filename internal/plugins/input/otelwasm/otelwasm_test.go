package otelwasm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/wasmhost"
)

const guest = "../../../otelwasm/testdata/recvexp.wasm"

// A Go ABI v1 receiver guest produces records, written as events.
func TestReceiverProducesRecords(t *testing.T) {
	rt, err := wasmhost.New(context.Background(), wasmhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	in, err := NewWithOptions(context.Background(), plugin.Settings{Name: "otelwasm.0"},
		plugintest.Props(Spec(), "path "+guest, "plugin_config.count 40", "plugin_config.batch 7", "tag wasm.in"),
		Options{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	w := &plugintest.Writer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, w) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		w.Mu.Lock()
		n := 0
		for _, wr := range w.Writes {
			n += wr.Records
		}
		w.Mu.Unlock()
		if n >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records after 60s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Each write is a scope group: start, records, end; Records counts
	// the log records only, as the opentelemetry input does.
	seen := map[string]int{}
	w.Mu.Lock()
	defer w.Mu.Unlock()
	for i, wr := range w.Writes {
		n := 0
		it := event.NewIter(wr.Data)
		for it.Next() {
			raw := it.Event()
			if raw.Kind() != event.KindRecord {
				continue
			}
			ev, err := raw.Decode()
			if err != nil {
				t.Fatal(err)
			}
			n++
			v, _ := ev.Body.Get("log")
			seen[fmt.Sprint(v)]++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if n != wr.Records {
			t.Errorf("write %d holds %d records, says %d", i, n, wr.Records)
		}
	}
	for i := range 40 {
		if k := fmt.Sprintf("record %d", i); seen[k] != 1 {
			t.Errorf("%s seen %d times", k, seen[k])
		}
	}
	if len(seen) != 40 {
		t.Errorf("%d distinct records, want 40", len(seen))
	}
	for _, wr := range w.Writes {
		if wr.Tag != "wasm.in" {
			t.Fatalf("tag %q", wr.Tag)
		}
	}
}

func TestRefusesNonReceiver(t *testing.T) {
	_, err := New(context.Background(), plugin.Settings{Name: "otelwasm.0"},
		plugintest.Props(Spec(), "path ../../../otelwasm/testdata/attrproc.wasm"))
	if err == nil {
		t.Fatal("a module without start_logs_receiver must be refused")
	}
}
