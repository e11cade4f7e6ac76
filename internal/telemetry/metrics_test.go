package telemetry

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCountersConcurrent(t *testing.T) {
	r := NewRegistry("1.0.0")
	const workers, iters = 16, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Concurrent readers: JSON, Prometheus collection, health.
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		preg := prometheus.NewRegistry()
		preg.MustRegister(r.Collector())
		for {
			select {
			case <-stop:
				return
			default:
			}
			var v map[string]any
			if err := json.Unmarshal(r.MetricsJSON(), &v); err != nil {
				t.Errorf("invalid JSON: %v", err)
				return
			}
			if _, err := preg.Gather(); err != nil {
				t.Errorf("gather: %v", err)
				return
			}
			r.Healthy(DefaultHealthOptions())
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			in := r.Input("dummy.0")
			out := r.Output("stdout.0")
			st := r.Stage("ingest")
			own := r.Filter(fmt.Sprintf("grep.%d", w)) // registrations race with readers
			for i := 0; i < iters; i++ {
				in.Records.Add(1)
				in.Bytes.Add(10)
				out.ProcRecords.Add(1)
				out.Errors.Add(2)
				st.Pending.Add(1)
				st.Pending.Add(-1)
				st.ChunksIn.Add(1)
				own.Records.Add(1)
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	if got := r.Input("dummy.0").Records.Load(); got != workers*iters {
		t.Errorf("records = %d, want %d", got, workers*iters)
	}
	if got := r.Input("dummy.0").Bytes.Load(); got != 10*workers*iters {
		t.Errorf("bytes = %d, want %d", got, 10*workers*iters)
	}
	if got := r.Output("stdout.0").Errors.Load(); got != 2*workers*iters {
		t.Errorf("errors = %d", got)
	}
	if got := r.Stage("ingest").Pending.Load(); got != 0 {
		t.Errorf("pending = %d, want 0", got)
	}
	if got := r.Stage("ingest").ChunksIn.Load(); got != workers*iters {
		t.Errorf("chunks_in = %d", got)
	}
	for w := 0; w < workers; w++ {
		if got := r.Filter(fmt.Sprintf("grep.%d", w)).Records.Load(); got != iters {
			t.Errorf("grep.%d records = %d", w, got)
		}
	}
}

func TestGaugeAndCounter(t *testing.T) {
	var g Gauge
	g.Set(5)
	g.Add(-7)
	if g.Load() != -2 {
		t.Fatalf("gauge = %d", g.Load())
	}
	var c Counter
	c.Add(3)
	c.Add(4)
	if c.Load() != 7 {
		t.Fatalf("counter = %d", c.Load())
	}
}

func TestGetOrCreateSameInstance(t *testing.T) {
	r := NewRegistry("v")
	in, f, o, st := r.Input("a"), r.Filter("a"), r.Output("a"), r.Stage("a")
	if in != r.Input("a") || f != r.Filter("a") || o != r.Output("a") || st != r.Stage("a") {
		t.Fatal("get-or-create returned different pointers for the same name")
	}
	if r.Input("a") == r.Input("b") {
		t.Fatal("different names share metrics")
	}
}

func TestMetricsJSONShape(t *testing.T) {
	r := NewRegistry("1.2.3")
	// Registration order differs from alphabetical order on purpose.
	in := r.Input("tail.1")
	in.Records.Add(8)
	in.Bytes.Add(2536)
	r.Input("dummy.0").Records.Add(1)

	f := r.Filter("grep.0")
	f.Records.Add(10)
	f.Bytes.Add(100)
	f.AddRecords.Add(1)
	f.DropRecords.Add(3)
	f.DropBytes.Add(30)
	f.Errors.Add(2)

	o := r.Output("stdout.0")
	o.ProcRecords.Add(5)
	o.ProcBytes.Add(1585)
	o.Errors.Add(1)
	o.Retries.Add(2)
	o.RetriesFailed.Add(3)
	o.DroppedRecords.Add(4)
	o.RetriedRecords.Add(6)
	o.DeadLetters.Add(7)

	s := r.Stage("router")
	s.ChunksIn.Add(11)
	s.ChunksOut.Add(12)
	s.RecordsIn.Add(13)
	s.Redeliveries.Add(14)
	s.DeadLetters.Add(15)
	s.Unmatched.Add(16)
	s.UnmatchedRecords.Add(17)
	s.Pending.Set(-18)

	raw := r.MetricsJSON()
	var got map[string]map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("unmarshal %s: %v", raw, err)
	}
	if len(got) != 4 {
		t.Errorf("top-level keys = %v, want input, filter, output, floe", keys(got))
	}
	wantNums := func(section, name string, want map[string]float64) {
		t.Helper()
		obj, ok := got[section][name].(map[string]any)
		if !ok {
			t.Fatalf("%s.%s missing in %s", section, name, raw)
		}
		if len(obj) != len(want) {
			t.Errorf("%s.%s keys = %v, want %v", section, name, obj, want)
		}
		for k, v := range want {
			if obj[k] != v {
				t.Errorf("%s.%s.%s = %v, want %v", section, name, k, obj[k], v)
			}
		}
	}
	wantNums("input", "tail.1", map[string]float64{"records": 8, "bytes": 2536})
	wantNums("input", "dummy.0", map[string]float64{"records": 1, "bytes": 0})
	wantNums("filter", "grep.0", map[string]float64{
		"drop_records": 3, "add_records": 1, "records": 10, "bytes": 100, "drop_bytes": 30,
	})
	wantNums("output", "stdout.0", map[string]float64{
		"proc_records": 5, "proc_bytes": 1585, "errors": 1, "retries": 2,
		"retries_failed": 3, "dropped_records": 4, "retried_records": 6,
	})

	var floe struct {
		Stage  map[string]map[string]int64  `json:"stage"`
		Filter map[string]map[string]uint64 `json:"filter"`
		Output map[string]map[string]uint64 `json:"output"`
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(top["floe"], &floe); err != nil {
		t.Fatal(err)
	}
	wantStage := map[string]int64{
		"chunks_in": 11, "chunks_out": 12, "records_in": 13, "redeliveries": 14,
		"dead_letters": 15, "unmatched": 16, "unmatched_records": 17, "pending": -18,
		"duplicates": 0, "paused_inputs": 0, "storage_full": 0, "stream_depth": 0, "dlq_depth": 0,
	}
	if fmt.Sprint(floe.Stage["router"]) != fmt.Sprint(wantStage) {
		t.Errorf("floe.stage.router = %v, want %v", floe.Stage["router"], wantStage)
	}
	if floe.Filter["grep.0"]["errors"] != 2 {
		t.Errorf("floe.filter = %v", floe.Filter)
	}
	if floe.Output["stdout.0"]["dead_letters"] != 7 {
		t.Errorf("floe.output = %v", floe.Output)
	}

	// Registration order and Fluent Bit's key order are preserved.
	str := string(raw)
	if strings.Index(str, `"tail.1"`) > strings.Index(str, `"dummy.0"`) {
		t.Errorf("inputs not in registration order: %s", str)
	}
	if !strings.Contains(str, `"stdout.0":{"proc_records":5,"proc_bytes":1585,"errors":1,"retries":2,"retries_failed":3,"dropped_records":4,"retried_records":6}`) {
		t.Errorf("output key order differs from Fluent Bit: %s", str)
	}
	if !strings.HasPrefix(str, `{"input":{"tail.1":{"records":8,"bytes":2536}`) {
		t.Errorf("unexpected prefix: %s", str)
	}
}

func TestMetricsJSONEmptyAndEscaping(t *testing.T) {
	r := NewRegistry("v")
	if got := string(r.MetricsJSON()); got != `{"input":{},"filter":{},"output":{},"floe":{"stage":{},"filter":{},"output":{},"dropped":{}}}` {
		t.Errorf("empty registry JSON = %s", got)
	}
	r.Input(`we"ird\name`).Records.Add(1)
	var v map[string]map[string]map[string]uint64
	if err := json.Unmarshal(r.MetricsJSON(), &v); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	if v["input"][`we"ird\name`]["records"] != 1 {
		t.Errorf("escaped name lost: %v", v)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func promText(t *testing.T, s *Server, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s status %d: %s", path, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("%s Content-Type = %q", path, ct)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestPrometheusText(t *testing.T) {
	r := NewRegistry("9.9.9")
	r.Input("cpu.0").Records.Add(57)
	r.Input("cpu.0").Bytes.Add(18069)
	f := r.Filter("grep.0")
	f.Records.Add(10)
	f.Bytes.Add(11)
	f.AddRecords.Add(2)
	f.DropRecords.Add(3)
	f.DropBytes.Add(4)
	f.Errors.Add(1)
	o := r.Output("stdout.0")
	o.ProcRecords.Add(54)
	o.ProcBytes.Add(17118)
	o.Errors.Add(1)
	o.Retries.Add(2)
	o.RetriesFailed.Add(3)
	o.DroppedRecords.Add(4)
	o.RetriedRecords.Add(5)
	o.DeadLetters.Add(6)
	st := r.Stage("output")
	st.ChunksIn.Add(7)
	st.ChunksOut.Add(8)
	st.RecordsIn.Add(9)
	st.Redeliveries.Add(10)
	st.DeadLetters.Add(11)
	st.Unmatched.Add(12)
	st.UnmatchedRecords.Add(13)
	st.Pending.Set(14)

	s := NewServer(r, ServerOptions{})
	for _, path := range []string{"/api/v1/metrics/prometheus", "/api/v2/metrics/prometheus"} {
		text := promText(t, s, path)
		for _, want := range []string{
			`fluentbit_input_records_total{name="cpu.0"} 57`,
			`fluentbit_input_bytes_total{name="cpu.0"} 18069`,
			`fluentbit_filter_records_total{name="grep.0"} 10`,
			`fluentbit_filter_bytes_total{name="grep.0"} 11`,
			`fluentbit_filter_add_records_total{name="grep.0"} 2`,
			`fluentbit_filter_drop_records_total{name="grep.0"} 3`,
			`fluentbit_filter_drop_bytes_total{name="grep.0"} 4`,
			`floe_filter_errors_total{name="grep.0"} 1`,
			`fluentbit_output_proc_records_total{name="stdout.0"} 54`,
			`fluentbit_output_proc_bytes_total{name="stdout.0"} 17118`,
			`fluentbit_output_errors_total{name="stdout.0"} 1`,
			`fluentbit_output_retries_total{name="stdout.0"} 2`,
			`fluentbit_output_retries_failed_total{name="stdout.0"} 3`,
			`fluentbit_output_dropped_records_total{name="stdout.0"} 4`,
			`fluentbit_output_retried_records_total{name="stdout.0"} 5`,
			`floe_output_dead_letters_total{name="stdout.0"} 6`,
			`floe_stage_chunks_in_total{stage="output"} 7`,
			`floe_stage_chunks_out_total{stage="output"} 8`,
			`floe_stage_records_in_total{stage="output"} 9`,
			`floe_stage_redeliveries_total{stage="output"} 10`,
			`floe_stage_dead_letters_total{stage="output"} 11`,
			`floe_stage_unmatched_total{stage="output"} 12`,
			`floe_stage_unmatched_records_total{stage="output"} 13`,
			`floe_stage_pending{stage="output"} 14`,
			`# TYPE fluentbit_input_records_total counter`,
			`# TYPE floe_stage_pending gauge`,
			`# TYPE fluentbit_uptime counter`,
			`fluentbit_uptime{hostname=`,
			`fluentbit_process_start_time_seconds{hostname=`,
			`fluentbit_build_info{edition="Floe",hostname=`,
			`version="9.9.9"`,
			`fluentbit_hot_reloaded_times{hostname=`,
			`process_start_time_seconds `,
			`go_goroutines `,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: missing %q", path, want)
			}
		}
	}
}

func TestCollectorSeesLateRegistrations(t *testing.T) {
	r := NewRegistry("v")
	preg := prometheus.NewPedanticRegistry()
	preg.MustRegister(r.Collector())
	r.Output("late").Errors.Add(9)
	mfs, err := preg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == MetricOutputErrors {
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 9 {
				t.Fatalf("late output errors = %v", v)
			}
			return
		}
	}
	t.Fatal("late-registered output not collected")
}
