package logtometrics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/floe-io/floe/internal/chunk"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/event"
	"github.com/floe-io/floe/internal/plugin"
	"github.com/floe-io/floe/internal/plugin/plugintest"
)

var kv = plugintest.KV

// The records of Fluent Bit's documentation examples: two dummy inputs.
func dummyRecord() event.Map {
	return kv("message", "dummy", "kubernetes", kv("namespace_name", "default", "docker_id", "abc123", "pod_name", "pod1",
		"container_name", "mycontainer", "pod_id", "def456", "labels", kv("app", "app1")),
		"duration", int64(20), "color", "red", "shape", "circle")
}

func helloRecord() event.Map {
	return kv("message", "hello", "kubernetes", kv("namespace_name", "default", "docker_id", "abc123", "pod_name", "pod1",
		"container_name", "mycontainer", "pod_id", "def456", "labels", kv("app", "app1")),
		"duration", int64(60), "color", "blue", "shape", "square")
}

func newFilter(t testing.TB, lines ...string) *Filter {
	t.Helper()
	f, err := New(context.Background(), plugin.Settings{Name: Name + ".0"}, plugintest.Props(Spec(), lines...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// exposition renders a metrics chunk as Prometheus text lines, labels in
// the order the chunk carries them, as a user scraping it would read them.
func exposition(t testing.TB, c *chunk.Chunk) []string {
	t.Helper()
	if c.Type != chunk.Metrics {
		t.Fatalf("chunk type %q, want metrics", c.Type)
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(c.Data); err != nil {
		t.Fatalf("not an OTLP metrics request: %v", err)
	}
	var out []string
	points := 0
	labels := func(a pcommon.Map, extra ...string) string {
		parts := append([]string(nil), extra...)
		a.Range(func(k string, v pcommon.Value) bool {
			parts = append(parts, k+"="+strconv.Quote(v.AsString()))
			return true
		})
		if len(parts) == 0 {
			return ""
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					if !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						t.Errorf("%s: a counter must be a cumulative monotonic sum", m.Name())
					}
					out = append(out, "# TYPE "+m.Name()+" counter", "# HELP "+m.Name()+" "+m.Description())
					dps := m.Sum().DataPoints()
					for d := range dps.Len() {
						out = append(out, m.Name()+labels(dps.At(d).Attributes())+" "+num(dps.At(d).DoubleValue()))
						points++
					}
				case pmetric.MetricTypeGauge:
					out = append(out, "# TYPE "+m.Name()+" gauge", "# HELP "+m.Name()+" "+m.Description())
					dps := m.Gauge().DataPoints()
					for d := range dps.Len() {
						out = append(out, m.Name()+labels(dps.At(d).Attributes())+" "+num(dps.At(d).DoubleValue()))
						points++
					}
				case pmetric.MetricTypeHistogram:
					out = append(out, "# TYPE "+m.Name()+" histogram", "# HELP "+m.Name()+" "+m.Description())
					dps := m.Histogram().DataPoints()
					for d := range dps.Len() {
						dp := dps.At(d)
						var cum uint64
						for b := range dp.BucketCounts().Len() {
							cum += dp.BucketCounts().At(b)
							le := "+Inf"
							if b < dp.ExplicitBounds().Len() {
								le = num(dp.ExplicitBounds().At(b))
							}
							out = append(out, m.Name()+"_bucket"+labels(dp.Attributes(), `le="`+le+`"`)+" "+strconv.FormatUint(cum, 10))
						}
						if cum != dp.Count() {
							t.Errorf("%s: buckets hold %d values, count says %d", m.Name(), cum, dp.Count())
						}
						out = append(out, m.Name()+"_sum"+labels(dp.Attributes())+" "+num(dp.Sum()),
							m.Name()+"_count"+labels(dp.Attributes())+" "+strconv.FormatUint(dp.Count(), 10))
						points++
					}
				default:
					t.Errorf("unexpected metric type %s", m.Type())
				}
			}
		}
	}
	if points != c.Records {
		t.Errorf("metrics chunk says %d records, holds %d data points", c.Records, points)
	}
	return out
}

// feed runs one chunk per record through f and returns the last metrics
// chunk and every logs chunk passed on.
func feed(t testing.TB, f *Filter, recs ...event.Map) (metrics *chunk.Chunk, logs []*chunk.Chunk) {
	t.Helper()
	for _, r := range recs {
		in := plugintest.Chunk(r)
		in.Tag = "dummy.log"
		for _, c := range plugintest.Run(t, f, in) {
			switch {
			case c.Type == chunk.Metrics:
				if c.Tag != f.tag {
					t.Errorf("metrics chunk tag %q, want %q", c.Tag, f.tag)
				}
				metrics = c
			case c == in:
				logs = append(logs, c)
			default:
				t.Errorf("unexpected chunk %q of %s", c.Tag, c.Type)
			}
		}
	}
	return metrics, logs
}

func repeat(n int, recs ...event.Map) []event.Map {
	var out []event.Map
	for range n {
		out = append(out, recs...)
	}
	return out
}

func TestDocumentedExamples(t *testing.T) {
	k8s := `namespace_name="default",pod_name="pod1",container_name="mycontainer",docker_id="abc123",pod_id="def456"`
	cases := []struct {
		name   string
		config []string
		in     []event.Map
		want   []string
	}{
		{
			name: "counter",
			config: []string{"tag test_metric", "metric_mode counter", "metric_name count_all_dummy_messages",
				"metric_description This metric counts dummy messages"},
			in: append(repeat(24, dummyRecord(), helloRecord()), dummyRecord()),
			want: []string{
				"# TYPE log_metric_counter_count_all_dummy_messages counter",
				"# HELP log_metric_counter_count_all_dummy_messages This metric counts dummy messages",
				"log_metric_counter_count_all_dummy_messages 49",
			},
		},
		{
			name: "gauge with regex, kubernetes_mode, add_label and label_field",
			config: []string{"tag test_metric", "metric_mode gauge", "metric_name current_duration",
				"metric_description This metric shows the current duration", "value_field duration",
				"kubernetes_mode on", "regex message .*el.*", "add_label app $kubernetes['labels']['app']",
				"label_field color", "label_field shape"},
			in: repeat(5, dummyRecord(), helloRecord()),
			want: []string{
				"# TYPE log_metric_gauge_current_duration gauge",
				"# HELP log_metric_gauge_current_duration This metric shows the current duration",
				`log_metric_gauge_current_duration{` + k8s + `,app="app1",color="blue",shape="square"} 60`,
			},
		},
		{
			name: "histogram with default buckets",
			config: []string{"tag test_metric", "metric_mode histogram", "metric_name current_duration",
				"metric_description This metric shows the request duration", "value_field duration",
				"kubernetes_mode on", "regex message .*el.*", "add_label app $kubernetes['labels']['app']",
				"label_field color", "label_field shape"},
			in: repeat(27, dummyRecord(), helloRecord()),
			want: func() []string {
				l := k8s + `,app="app1",color="blue",shape="square"`
				out := []string{"# TYPE log_metric_histogram_current_duration histogram",
					"# HELP log_metric_histogram_current_duration This metric shows the request duration"}
				for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"} {
					out = append(out, `log_metric_histogram_current_duration_bucket{le="`+le+`",`+l+`} 0`)
				}
				return append(out, `log_metric_histogram_current_duration_bucket{le="+Inf",`+l+`} 27`,
					`log_metric_histogram_current_duration_sum{`+l+`} 1620`,
					`log_metric_histogram_current_duration_count{`+l+`} 27`)
			}(),
		},
		{
			name: "histogram with own buckets",
			config: []string{"tag test_metric", "metric_mode histogram", "metric_name current_duration",
				"metric_description This metric shows the HTTP request duration as histogram in milliseconds",
				"value_field duration", "kubernetes_mode on",
				"bucket 1", "bucket 5", "bucket 10", "bucket 50", "bucket 100", "bucket 250", "bucket 500", "bucket 1000",
				"regex message .*el.*", "label_field color", "label_field shape"},
			in: repeat(3, dummyRecord(), helloRecord()),
			want: func() []string {
				l := k8s + `,color="blue",shape="square"`
				out := []string{"# TYPE log_metric_histogram_current_duration histogram",
					"# HELP log_metric_histogram_current_duration This metric shows the HTTP request duration as histogram in milliseconds"}
				for _, b := range []struct {
					le string
					n  int
				}{{"1", 0}, {"5", 0}, {"10", 0}, {"50", 0}, {"100", 3}, {"250", 3}, {"500", 3}, {"1000", 3}, {"+Inf", 3}} {
					out = append(out, fmt.Sprintf(`log_metric_histogram_current_duration_bucket{le="%s",%s} %d`, b.le, l, b.n))
				}
				return append(out, `log_metric_histogram_current_duration_sum{`+l+`} 180`,
					`log_metric_histogram_current_duration_count{`+l+`} 3`)
			}(),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilter(t, tc.config...)
			mc, logs := feed(t, f, tc.in...)
			if mc == nil {
				t.Fatal("no metrics chunk")
			}
			got := exposition(t, mc)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if len(logs) != len(tc.in) {
				t.Errorf("%d of %d log chunks passed on untouched", len(logs), len(tc.in))
			}
			if mc.Source != "emitter_for_log_to_metrics.0" {
				t.Errorf("metrics source %q", mc.Source)
			}
		})
	}
}

// Each emission carries every series seen so far, with its cumulative value.
func TestCounterSeriesAreCumulativeAcrossChunks(t *testing.T) {
	f := newFilter(t, "tag m", "metric_name hits", "metric_description d", "label_field color")
	feed(t, f, dummyRecord(), helloRecord(), dummyRecord())
	mc, _ := feed(t, f, kv("color", "green"))
	want := []string{"# TYPE log_metric_counter_hits counter", "# HELP log_metric_counter_hits d",
		`log_metric_counter_hits{color="red"} 2`, `log_metric_counter_hits{color="blue"} 1`, `log_metric_counter_hits{color="green"} 1`}
	if got := exposition(t, mc); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRecordSelectionRules(t *testing.T) {
	recs := []event.Map{
		kv("level", "error", "svc", "api"),
		kv("level", "error", "svc", "db"),
		kv("level", "info", "svc", "api"),
		kv("level", int64(3), "svc", "api"), // a number never matches a regex
		kv("svc", "api"),
	}
	cases := []struct {
		rules []string
		want  string // count, "" for no emission
	}{
		{nil, "5"},
		{[]string{"regex level ^error$"}, "2"},
		{[]string{"exclude level ^error$"}, "3"},
		{[]string{"exclude svc db", "regex level error"}, "1"},
		// Legacy grep: the first regex that matches counts the record, later rules are not consulted.
		{[]string{"regex level error", "exclude svc db"}, "2"},
		{[]string{"regex $level ^nothing$"}, ""},
	}
	for _, tc := range cases {
		f := newFilter(t, append([]string{"tag m", "metric_name n", "metric_description d"}, tc.rules...)...)
		mc, _ := feed(t, f, recs...)
		got := ""
		if mc != nil {
			lines := exposition(t, mc)
			got = strings.TrimPrefix(lines[len(lines)-1], "log_metric_counter_n ")
		}
		if got != tc.want {
			t.Errorf("rules %q: counted %q, want %q", tc.rules, got, tc.want)
		}
	}
}

func TestGaugeValuesAndLabelFormatting(t *testing.T) {
	f := newFilter(t, "tag m", "metric_mode gauge", "metric_name v", "metric_description d",
		"value_field $stats['v']", "label_field id", "add_label lbl $l")
	cases := []struct {
		rec  event.Map
		want string // the line of that record's series, "" when it is not counted
	}{
		{kv("id", "int", "stats", kv("v", int64(-7)), "l", int64(42)), `v{id="int",lbl="42"} -7`},
		{kv("id", "float", "stats", kv("v", 2.5), "l", 1.5), `v{id="float",lbl="1.500000"} 2.5`},
		{kv("id", "str", "stats", kv("v", " 12.5ms"), "l", true), `v{id="str",lbl=""} 12.5`},
		{kv("id", "exp", "stats", kv("v", "1e3x")), `v{id="exp",lbl=""} 1000`},
		{kv("id", "junk", "stats", kv("v", "n/a")), `v{id="junk",lbl=""} 0`},
		{kv("id", "uint", "stats", kv("v", uint64(1)<<63)), `v{id="uint",lbl=""} 9.223372036854776e+18`},
		{kv("id", "missing", "stats", kv("w", int64(1))), ""},
		{kv("id", "bool", "stats", kv("v", true)), ""},
		{kv("id", "null", "stats", kv("v", nil)), ""},
		{kv("id", "map", "stats", kv("v", kv("x", int64(1)))), ""},
	}
	for _, tc := range cases {
		mc, _ := feed(t, f, tc.rec)
		var line string
		if mc != nil {
			id, _ := tc.rec.Get("id")
			for _, l := range exposition(t, mc) {
				if strings.Contains(l, `id="`+id.(string)+`"`) {
					line = strings.TrimPrefix(l, "log_metric_gauge_")
				}
			}
		}
		if line != tc.want {
			t.Errorf("%v: series %q, want %q", tc.rec, line, tc.want)
		}
	}
	long := strings.Repeat("x", 300)
	mc, _ := feed(t, f, kv("id", long, "stats", kv("v", int64(1))))
	found := false
	for _, l := range exposition(t, mc) {
		found = found || strings.Contains(l, `id="`+long[:251]+`"`)
	}
	if !found {
		t.Error("a long label value is not cut to 251 bytes as upstream's buffer does")
	}
}

func TestNamingKeys(t *testing.T) {
	f := newFilter(t, "tag m", "metric_description d", "metric_namespace app", "metric_subsystem http", "metric_name requests")
	mc, _ := feed(t, f, kv("a", "b"))
	if got := exposition(t, mc)[2]; got != "app_http_requests 1" {
		t.Errorf("got %q", got)
	}
	f = newFilter(t, "tag m", "metric_description d", "metric_namespace ", "metric_mode COUNTER")
	mc, _ = feed(t, f, kv("a", "b"))
	if got := exposition(t, mc)[2]; got != "counter_a 1" {
		t.Errorf("default name without namespace: got %q", got)
	}
}

func TestDiscardLogs(t *testing.T) {
	f := newFilter(t, "tag m", "metric_name n", "metric_description d", "discard_logs on", "regex message hello")
	in := plugintest.Chunk(dummyRecord(), helloRecord(), dummyRecord())
	out := plugintest.Run(t, f, in)
	if len(out) != 1 || out[0].Type != chunk.Metrics {
		t.Fatalf("want only the metrics chunk, got %d chunks", len(out))
	}
	if got := exposition(t, out[0])[2]; got != "log_metric_counter_n 1" {
		t.Errorf("got %q", got)
	}
	// No selected record: nothing at all comes out.
	if out := plugintest.Run(t, f, plugintest.Chunk(dummyRecord())); len(out) != 0 {
		t.Errorf("got %d chunks, want none", len(out))
	}
}

func TestFlushIntervalEmitsOnlyChangesAtTheInterval(t *testing.T) {
	f := newFilter(t, "tag m", "metric_name n", "metric_description d", "flush_interval_sec 2")
	if f.FlushInterval() != 2*time.Second {
		t.Fatalf("interval %v", f.FlushInterval())
	}
	t0 := time.Now()
	if _, logs := feed(t, f, dummyRecord(), helloRecord()); len(logs) != 2 {
		t.Fatal("log chunks not passed on")
	}
	first := f.FlushPending(context.Background(), t0.Add(2*time.Second), false)
	if len(first) != 1 || exposition(t, first[0])[2] != "log_metric_counter_n 2" {
		t.Fatalf("first emission %v", first)
	}
	feed(t, f, dummyRecord())
	if got := f.FlushPending(context.Background(), t0.Add(3*time.Second), false); len(got) != 0 {
		t.Errorf("emitted again %v after 1s of a 2s interval", got)
	}
	got := f.FlushPending(context.Background(), t0.Add(4*time.Second), false)
	if len(got) != 1 || exposition(t, got[0])[2] != "log_metric_counter_n 3" {
		t.Fatalf("second emission %v", got)
	}
	if got := f.FlushPending(context.Background(), t0.Add(10*time.Second), false); len(got) != 0 {
		t.Errorf("emitted %v without a change", got)
	}
	feed(t, f, dummyRecord())
	got = f.FlushPending(context.Background(), t0.Add(10*time.Second+time.Millisecond), true)
	if len(got) != 1 || exposition(t, got[0])[2] != "log_metric_counter_n 4" {
		t.Fatalf("final emission on stop %v", got)
	}
}

func TestConfigurationErrorsNameTheirLine(t *testing.T) {
	cases := []struct {
		lines []string
		want  []string
	}{
		{[]string{"metric_name n"}, []string{"test.conf:9: key tag", "test.conf:9: key metric_description"}},
		{[]string{"tag m", "metric_description d", "metric_mode summary"}, []string{"test.conf:12: key metric_mode", "summary"}},
		{[]string{"tag m", "metric_description d", "metric_mode gauge"}, []string{"key value_field", "required for metric_mode gauge"}},
		{[]string{"tag m", "metric_description d", "metric_mode histogram", "value_field v", "bucket 1", "bucket ten"},
			[]string{"test.conf:15: key bucket", `"ten"`}},
		{[]string{"tag m", "metric_description d", "metric_mode histogram", "value_field v", "bucket 2", "bucket 2"},
			[]string{"key bucket", "given twice"}},
		{[]string{"tag m", "metric_description d", "add_label justname"}, []string{"test.conf:12: key add_label", "NAME KEY"}},
		{[]string{"tag m", "metric_description d", "regex onlykey"}, []string{"test.conf:12: key regex", "KEY REGEX"}},
		{[]string{"tag m", "metric_description d", "exclude k ([a"}, []string{"test.conf:12: key exclude", "could not compile"}},
		{[]string{"tag m", "metric_description d", "label_field $a['b'"}, []string{"test.conf:12: key label_field"}},
		{[]string{"tag m", "metric_description d", "kubernetes_mode on", "label_field pod_name"}, []string{"pod_name", "twice"}},
	}
	for _, tc := range cases {
		_, err := New(context.Background(), plugin.Settings{Name: "log_to_metrics.0"}, plugintest.Props(Spec(), tc.lines...))
		if err == nil {
			t.Errorf("%q: accepted", tc.lines)
			continue
		}
		if _, ok := err.(config.ErrorList); !ok {
			t.Errorf("%q: %T is not a config.ErrorList", tc.lines, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", tc.lines, err, w)
			}
		}
	}
	var many []string
	for i := range 33 {
		many = append(many, fmt.Sprintf("label_field k%d", i))
	}
	if _, err := New(context.Background(), plugin.Settings{}, plugintest.Props(Spec(), append([]string{"tag m", "metric_description d"}, many...)...)); err == nil ||
		!strings.Contains(err.Error(), "too many labels configured: 33 (max=32)") {
		t.Errorf("33 labels: %v", err)
	}
}

// The filter stage's workers share one instance.
func TestConcurrentChunksCountEveryRecordOnce(t *testing.T) {
	f := newFilter(t, "tag m", "metric_name n", "metric_description d", "label_field color", "flush_interval_sec 1")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				rec := dummyRecord()
				if w%2 == 1 {
					rec = helloRecord()
				}
				if _, err := f.FilterChunk(context.Background(), plugintest.Chunk(rec, rec)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	out := f.FlushPending(context.Background(), time.Now(), true)
	if len(out) != 1 {
		t.Fatalf("%d chunks", len(out))
	}
	got := strings.Join(exposition(t, out[0])[2:], "\n")
	if want := "log_metric_counter_n{color=\"red\"} 200\nlog_metric_counter_n{color=\"blue\"} 200"; got != want &&
		got != "log_metric_counter_n{color=\"blue\"} 200\nlog_metric_counter_n{color=\"red\"} 200" {
		t.Errorf("got\n%s", got)
	}
}

func TestMalformedChunkIsAnError(t *testing.T) {
	f := newFilter(t, "tag m", "metric_description d")
	good := plugintest.Chunk(dummyRecord())
	bad := &chunk.Chunk{Tag: "x", Records: 2, Data: append(append([]byte{}, good.Data...), 0x92, 0xd7)}
	if _, err := f.FilterChunk(context.Background(), bad); err == nil {
		t.Fatal("a truncated chunk was accepted")
	}
	// The chunk goes to the dead letters whole: its good record before the
	// damage was not counted either.
	mc, _ := feed(t, f, dummyRecord())
	if got := exposition(t, mc)[2]; got != "log_metric_counter_a 1" {
		t.Errorf("after a rejected chunk and a good record: %q", got)
	}
}

func BenchmarkCounterWithLabels(b *testing.B) {
	f := newFilter(b, "tag m", "metric_name n", "metric_description d", "kubernetes_mode on",
		"regex message .*el.*", "label_field color", "flush_interval_sec 1")
	var recs []any
	for range 50 {
		recs = append(recs, dummyRecord(), helloRecord())
	}
	c := plugintest.Chunk(recs...)
	b.SetBytes(int64(len(c.Data)))
	benchChunks(b, f, c, len(recs))
}

// benchChunks filters c b.N times and reports wall and CPU time per record:
// on a shared machine the CPU time (this process's, from getrusage) is the
// figure that does not depend on what else runs.
func benchChunks(b *testing.B, f *Filter, c *chunk.Chunk, records int) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	start := cpu()
	for range b.N {
		if _, err := f.FilterChunk(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	used := cpu() - start
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
	b.ReportMetric(float64(used.Nanoseconds())/float64(b.N*records), "cpu-ns/record")
}

func BenchmarkHistogramEmitEveryChunk(b *testing.B) {
	f := newFilter(b, "tag m", "metric_mode histogram", "value_field duration", "metric_name n", "metric_description d",
		"label_field color", "label_field shape")
	var recs []any
	for range 50 {
		recs = append(recs, dummyRecord(), helloRecord())
	}
	benchChunks(b, f, plugintest.Chunk(recs...), len(recs))
}

// The one-pass lookup finds what recordaccessor.Accessor.Get finds: the
// last of duplicate keys, a scalar where subkeys were asked, array indexes,
// nothing where a middle step is missing.
func TestOnePassLookupAgreesWithRecordAccessor(t *testing.T) {
	patterns := []string{"a", "$a", "$a['b']", "$a['b']['c']", "$a['l'][1]", "$a['l'][5]", "$k['x']", "$a['l'][0]['z']", "$missing['x']"}
	var lines []string
	for i, p := range patterns {
		lines = append(lines, fmt.Sprintf("add_label l%d %s", i, p))
	}
	f := newFilter(t, append([]string{"tag m", "metric_description d"}, lines...)...)
	bodies := []event.Map{
		kv("a", kv("b", kv("c", "deep")), "k", "scalar"),
		kv("a", "first", "a", kv("b", int64(7), "l", []any{kv("z", "zz"), "one"})),
		kv("a", kv("b", "x"), "a", int64(3)),
		kv("k", kv("x", 1.5), "a", []any{"not", "a", "map"}),
		kv(),
	}
	for _, b := range bodies {
		raw := b.AppendMsgpack(nil)
		sc := f.scratch.Get().(*scratch)
		f.scanTops(sc, raw)
		for i, ra := range f.ras {
			want := labelValue(ra.Get(raw))
			if got := labelValue(f.resolve(sc, f.labelPath[i])); got != want {
				t.Errorf("%s on %s: one pass %q, accessor %q", patterns[i], plugintest.Render(b), got, want)
			}
		}
	}
}

func labelValue(raw []byte, ok bool) string { return string(appendLabelValue(nil, raw, ok)) }
