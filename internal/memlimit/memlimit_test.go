package memlimit

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFollowsLiveHeap(t *testing.T) {
	const floor = 64 << 20
	for _, tc := range []struct{ live, want int64 }{
		{0, floor},
		{30 << 20, floor},                // 30*1.5+16 = 61 MiB: the floor holds
		{40 << 20, 76 << 20},             // above the floor: 1.5x live + slack
		{1 << 30, 1<<30 + 1<<29 + Slack}, // a large live set is never squeezed
	} {
		if got := Limit(floor, tc.live); got != tc.want {
			t.Errorf("Limit(%d MiB live) = %d MiB, want %d MiB", tc.live>>20, got>>20, tc.want>>20)
		}
	}
}

// Run sets the floor, raises the limit while a large live set exists, and
// puts the previous limit back when it ends.
func TestRunRaisesLimitAboveLiveHeap(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	const floor = 8 << 20
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, floor, 10*time.Millisecond) }()

	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20) // 64 MiB kept live
		live[i][0] = 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) < 64<<20+32<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d MiB with 64 MiB live, want at least 96 MiB", debug.SetMemoryLimit(-1)>>20)
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	runtime.KeepAlive(live)
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit after Run = %d, want the previous %d", got, before)
	}
}

func TestRunLeavesOperatorLimitAlone(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	before := debug.SetMemoryLimit(-1)
	Run(context.Background(), 8<<20, time.Millisecond) // returns at once
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit changed to %d with GOMEMLIMIT set", got)
	}
}
