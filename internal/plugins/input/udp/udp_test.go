package udp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/parser"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
	"github.com/floe-io/floe/internal/telemetry"
)

func start(t *testing.T, w *plugintest.Writer, lines ...string) (*UDP, net.Conn, *telemetry.NetInputMetrics) {
	t.Helper()
	reg := telemetry.NewRegistry("test")
	parsers, _ := parser.Load(nil, nil, nil)
	in, err := New(context.Background(), plugin.Settings{Name: "udp.0", Telemetry: reg, Parsers: parsers},
		plugintest.Props(Spec(), append([]string{"listen 127.0.0.1", "port 0"}, lines...)...))
	if err != nil {
		t.Fatal(err)
	}
	u := in.(*UDP)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx, w) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := u.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return u, c, reg.NetInput("udp.0")
}

func bodies(t *testing.T, w *plugintest.Writer, n int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := w.Events()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			var out []string
			for _, ev := range evs {
				out = append(out, plugintest.Render(ev.Body))
			}
			if len(out) != n {
				t.Fatalf("%d records, want %d: %v", len(out), n, out)
			}
			return strings.Join(out, "|")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJSONDatagrams(t *testing.T) {
	w := &plugintest.Writer{}
	_, c, m := start(t, w, "source_address_key src")
	src := "udp://" + c.LocalAddr().String()
	for _, d := range []string{`{"a":1}{"b":2}`, `[true]`, `{"cut":`, `{"c":3}`} {
		fmt.Fprint(c, d)
		time.Sleep(20 * time.Millisecond) // keep the order of the records
	}
	got := bodies(t, w, 4)
	want := fmt.Sprintf(`{"a":1,"src":%q}|{"b":2,"src":%q}|{"msg":[true],"src":%q}|{"c":3,"src":%q}`, src, src, src, src)
	if got != want {
		t.Errorf("records %s\nwant    %s", got, want)
	}
	if m.Errors.Load() != 1 {
		t.Errorf("decode errors %d, want 1 (the cut JSON)", m.Errors.Load())
	}
}

func TestNoneDatagrams(t *testing.T) {
	w := &plugintest.Writer{}
	_, c, _ := start(t, w, "format none", "separator ;")
	fmt.Fprint(c, "a;b;")
	time.Sleep(20 * time.Millisecond)
	fmt.Fprint(c, "last")
	if got := bodies(t, w, 3); got != `{"log":"a"}|{"log":"b"}|{"log":"last"}` {
		t.Errorf("records %s", got)
	}
}

func TestPausedDropsAndCounts(t *testing.T) {
	w := &plugintest.Writer{}
	u, c, m := start(t, w, "format none")
	u.Pause()
	fmt.Fprint(c, "x\ny\n")
	deadline := time.Now().Add(20 * time.Second)
	for m.Dropped.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.Dropped.Load() != 2 || w.Count() != 0 {
		t.Fatalf("dropped %d written %d, want 2 and 0", m.Dropped.Load(), w.Count())
	}
	u.Resume()
	fmt.Fprint(c, "z\n")
	if got := bodies(t, w, 1); got != `{"log":"z"}` {
		t.Errorf("after resume %s", got)
	}
}
