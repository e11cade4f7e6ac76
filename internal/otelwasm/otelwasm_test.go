package otelwasm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/floe-io/floe/internal/wasmhost"
)

var (
	rtOnce sync.Once
	rtErr  error
	testRT *wasmhost.Runtime
)

// newRuntime is one runtime for the package's tests: the Go guest takes
// seconds to compile, and the runtime compiles each module once.
func newRuntime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	rtOnce.Do(func() { testRT, rtErr = wasmhost.New(context.Background(), wasmhost.Options{}) })
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return testRT
}

func loadT(t testing.TB, rt *wasmhost.Runtime, guest string, role Role, sigs []Signal, config string) *Plugin {
	t.Helper()
	p, err := Load(context.Background(), rt, "testdata/"+guest+".wasm", role, sigs, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func logs(n int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr("line " + string(rune('a'+i%26)))
		lr.Attributes().PutInt("i", int64(i))
		if i%2 == 1 {
			lr.Attributes().PutStr("env", "already")
		}
	}
	return ld
}

func TestMissingMarkerRefused(t *testing.T) {
	rt := newRuntime(t)
	_, err := Load(context.Background(), rt, "testdata/nomarker.wasm", Processor, []Signal{Logs}, nil)
	if err == nil || !errors.Is(err, ErrNoMarker) || !strings.Contains(err.Error(), "abi_version_v1") {
		t.Fatalf("want a refusal naming abi_version_v1, got %v", err)
	}
}

func TestDetectDraft(t *testing.T) {
	p := loadT(t, newRuntime(t), "attrproc", Processor, []Signal{Logs}, `null`)
	if p.Dialect != Draft {
		t.Fatalf("dialect %v, want %v", p.Dialect, Draft)
	}
}

func TestProcessorInsertsAttribute(t *testing.T) {
	ctx := context.Background()
	// A config longer than the guest's first 16-byte buffer: the host must
	// report its real size so the guest reads it whole.
	cfg := `{"actions":[{"key":"env","action":"insert","value":"from-wasm"},{"key":"long_attribute_name","action":"upsert","value":"` + strings.Repeat("x", 3000) + `"}]}`
	p := loadT(t, newRuntime(t), "attrproc", Processor, []Signal{Logs, Traces}, cfg)
	inst, err := p.Instantiate(ctx, wasmhost.InstanceConfig{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	// Larger than upstream's 2048-byte buffer too.
	in, _ := (&plog.ProtoMarshaler{}).MarshalLogs(logs(200))
	for round := range 3 {
		out, called, err := inst.Consume(ctx, Logs, in)
		if err != nil || !called {
			t.Fatalf("round %d: consume: called=%v err=%v", round, called, err)
		}
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(out)
		if err != nil {
			t.Fatal(err)
		}
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		if lrs.Len() != 200 {
			t.Fatalf("got %d records, want 200", lrs.Len())
		}
		seen := map[int64]bool{}
		for k := 0; k < lrs.Len(); k++ {
			a := lrs.At(k).Attributes()
			i, _ := a.Get("i")
			if seen[i.Int()] {
				t.Fatalf("record %d twice", i.Int())
			}
			seen[i.Int()] = true
			env, _ := a.Get("env")
			want := "from-wasm"
			if i.Int()%2 == 1 {
				want = "already" // insert leaves an existing value
			}
			if env.Str() != want {
				t.Fatalf("record %d: env=%q, want %q", i.Int(), env.Str(), want)
			}
			if v, _ := a.Get("long_attribute_name"); len(v.Str()) != 3000 {
				t.Fatalf("record %d: config attribute of %d bytes, want 3000 (config truncated?)", i.Int(), len(v.Str()))
			}
		}
	}
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("s")
	tin, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	out, _, err := inst.Consume(ctx, Traces, tin)
	if err != nil {
		t.Fatal(err)
	}
	td2, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(out)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := td2.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("env"); v.Str() != "from-wasm" {
		t.Fatalf("span attribute env=%q", v.Str())
	}
}

func TestStatusReason(t *testing.T) {
	ctx := context.Background()
	p := loadT(t, newRuntime(t), "attrproc", Processor, []Signal{Logs}, `{"fail":"no good"}`)
	inst, err := p.Instantiate(ctx, wasmhost.InstanceConfig{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	in, _ := (&plog.ProtoMarshaler{}).MarshalLogs(logs(1))
	_, _, err = inst.Consume(ctx, Logs, in)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 1 || se.Reason != "no good" || !strings.Contains(err.Error(), "ERROR: no good") {
		t.Fatalf("want status 1 with reason, got %v", err)
	}
	if inst.Wasm().Broken() != nil {
		t.Fatalf("a status error must not break the instance: %v", inst.Wasm().Broken())
	}
}

func TestStartFailsWithReason(t *testing.T) {
	p := loadT(t, newRuntime(t), "attrproc", Processor, []Signal{Logs}, `{"actions":[{"value":"x"}]}`)
	_, err := p.Instantiate(context.Background(), wasmhost.InstanceConfig{Name: "t"})
	if err == nil || !strings.Contains(err.Error(), "action without key") || !strings.Contains(err.Error(), "start") {
		t.Fatalf("want start refusal with the guest's reason, got %v", err)
	}
}

func TestRoleExportMissing(t *testing.T) {
	_, err := Load(context.Background(), newRuntime(t), "testdata/nomarker.wasm", Processor, []Signal{Traces}, nil)
	if err == nil {
		t.Fatal("want error")
	}
	_, err = Load(context.Background(), newRuntime(t), "testdata/attrproc.wasm", Receiver, []Signal{Logs}, nil)
	if err == nil || !strings.Contains(err.Error(), "start_logs_receiver") {
		t.Fatalf("want refusal naming start_logs_receiver, got %v", err)
	}
}
