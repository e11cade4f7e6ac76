package otelwasm

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/floe-io/floe/internal/wasmhost"
)

// Both other dialects: legacy pull (currentLogs with a 2048-byte first
// buffer, so a larger batch needs the real size back) and otelwasm_
// prefixed v1 emitting one set_result per record (every batch kept).
func TestDialects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		guest   string
		dialect Dialect
	}{{"legacy", Legacy}, {"v1prefix", V1}} {
		t.Run(tc.guest, func(t *testing.T) {
			p := loadT(t, newRuntime(t), tc.guest, Processor, []Signal{Logs}, "")
			if p.Dialect != tc.dialect {
				t.Fatalf("dialect %v, want %v", p.Dialect, tc.dialect)
			}
			inst, err := p.Instantiate(ctx, wasmhost.InstanceConfig{Name: "t"})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			in, _ := (&plog.ProtoMarshaler{}).MarshalLogs(logs(150))
			if len(in) <= 2048 {
				t.Fatalf("input of %d bytes does not exercise the size protocol", len(in))
			}
			out, called, err := inst.Consume(ctx, Logs, in)
			if err != nil || !called {
				t.Fatalf("called=%v err=%v", called, err)
			}
			ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(out)
			if err != nil {
				t.Fatal(err)
			}
			if ld.LogRecordCount() != 150 {
				t.Fatalf("%d records out, want 150", ld.LogRecordCount())
			}
			seen := map[int64]int{}
			rls := ld.ResourceLogs()
			for i := 0; i < rls.Len(); i++ {
				lrs := rls.At(i).ScopeLogs().At(0).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					a := lrs.At(k).Attributes()
					if d, _ := a.Get("dialect"); d.Str() != tc.guest {
						t.Fatalf("dialect attribute %q", d.Str())
					}
					n, _ := a.Get("i")
					seen[n.Int()]++
				}
			}
			for i := range int64(150) {
				if seen[i] != 1 {
					t.Errorf("record %d seen %d times", i, seen[i])
				}
			}
		})
	}
}
