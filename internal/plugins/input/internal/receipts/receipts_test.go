package receipts

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type receipt struct {
	done chan struct{}
	err  error
}

func (r *receipt) Done() <-chan struct{} { return r.done }
func (r *receipt) Err() error            { return r.err }

func resolved(err error) *receipt {
	r := &receipt{done: make(chan struct{}), err: err}
	close(r.done)
	return r
}

func TestTracker(t *testing.T) {
	var logs bytes.Buffer
	tr := Tracker{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	tr.Add(resolved(nil))
	tr.Add(nil)
	if tr.Pending() != 0 {
		t.Fatalf("pending %d after resolved receipts", tr.Pending())
	}
	slow := &receipt{done: make(chan struct{})}
	tr.Add(slow)
	tr.Add(resolved(errors.New("nats down")))
	if tr.Pending() != 2 {
		t.Fatalf("pending %d, want 2 (in order behind the slow one)", tr.Pending())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want deadline", err)
	}
	time.AfterFunc(20*time.Millisecond, func() { close(slow.done) })
	if err := tr.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tr.Pending() != 0 || tr.Failed() != 1 || !strings.Contains(logs.String(), "nats down") {
		t.Errorf("pending %d failed %d logs %q", tr.Pending(), tr.Failed(), logs.String())
	}
}
