package otelwasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/floe-io/floe/internal/wasmhost"
)

func TestReceiverProducesRecords(t *testing.T) {
	p := loadT(t, newRuntime(t), "recvexp", Receiver, []Signal{Logs}, `{"count":25,"batch":4}`)
	inst, err := p.Instantiate(context.Background(), wasmhost.InstanceConfig{Name: "r", Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := map[int64]int{}
	total := 0
	done := make(chan error, 1)
	go func() {
		done <- inst.Receive(ctx, Logs, 0, func(b []byte) error {
			ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
			if err != nil {
				return err
			}
			lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				seq, _ := lrs.At(k).Attributes().Get("seq")
				if body := lrs.At(k).Body().Str(); body != fmt.Sprintf("record %d", seq.Int()) {
					return fmt.Errorf("body %q for seq %d", body, seq.Int())
				}
				seen[seq.Int()]++
				total++
			}
			if total == 25 {
				cancel() // ask the receiver to stop
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("receiver did not stop after shutdown was requested")
	}
	for i := range int64(25) {
		if seen[i] != 1 {
			t.Errorf("seq %d seen %d times", i, seen[i])
		}
	}
	if total != 25 {
		t.Errorf("got %d records, want 25", total)
	}
}

func TestReceiverEmitErrorEnds(t *testing.T) {
	p := loadT(t, newRuntime(t), "recvexp", Receiver, []Signal{Logs}, `{"count":3}`)
	inst, err := p.Instantiate(context.Background(), wasmhost.InstanceConfig{Name: "r", Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	boom := errors.New("pipeline closed")
	err = inst.Receive(context.Background(), Logs, 0, func([]byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("want the emit error, got %v", err)
	}
}

func TestExporterReceivesRecords(t *testing.T) {
	ctx := context.Background()
	p := loadT(t, newRuntime(t), "recvexp", Exporter, []Signal{Logs}, `null`)
	var out bytes.Buffer
	inst, err := p.Instantiate(ctx, wasmhost.InstanceConfig{Name: "e", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range 5 {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(fmt.Sprintf("hello %d", i))
		lr.Attributes().PutInt("seq", int64(i))
	}
	in, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if _, _, err := inst.Consume(ctx, Logs, in); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("exported hello %d seq=%d", i, i))
	}
	if got := strings.TrimSpace(out.String()); got != strings.Join(want, "\n") {
		t.Fatalf("exporter printed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	lrs.At(2).Body().SetStr("fail")
	in, _ = (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	_, _, err = inst.Consume(ctx, Logs, in)
	var se *StatusError
	if !errors.As(err, &se) || se.Reason != "refused: fail" {
		t.Fatalf("want status error with reason, got %v", err)
	}
}
