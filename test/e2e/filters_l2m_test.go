package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fluent Bit's log_to_metrics examples, end to end: records from two dummy
// inputs become a counter and a labelled gauge that a prometheus_exporter
// serves and Vivo's /metrics shows, while the records still reach their
// output; the counter ends at exactly the number of records.
func TestLogToMetricsReachesPrometheusExporterAndVivo(t *testing.T) {
	dir := t.TempDir()
	prom, vivo := freePort(t), freePort(t)
	promHost, promPort, _ := strings.Cut(prom, ":")
	vivoHost, vivoPort, _ := strings.Cut(vivo, ":")
	cfg := filepath.Join(dir, "floe.conf")
	const samples = 10
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush      0.2
    Log_Level  info

[INPUT]
    Name     dummy
    Dummy    {"message":"dummy", "kubernetes":{"namespace_name": "default", "docker_id": "abc123", "pod_name": "pod1", "container_name": "mycontainer", "pod_id": "def456", "labels":{"app": "app1"}}, "duration": 20, "color": "red", "shape": "circle"}
    Tag      dummy.log
    Samples  %[1]d
    Rate     50

[INPUT]
    Name     dummy
    Dummy    {"message":"hello", "kubernetes":{"namespace_name": "default", "docker_id": "abc123", "pod_name": "pod1", "container_name": "mycontainer", "pod_id": "def456", "labels":{"app": "app1"}}, "duration": 60, "color": "blue", "shape": "square"}
    Tag      dummy.log2
    Samples  %[1]d
    Rate     50

[FILTER]
    Name               log_to_metrics
    Match              dummy.log*
    Tag                test_metric
    Metric_Mode        counter
    Metric_Name        count_all_dummy_messages
    Metric_Description This metric counts dummy messages

[FILTER]
    Name               log_to_metrics
    Match              dummy.log*
    Tag                test_metric
    Metric_Mode        gauge
    Metric_Name        current_duration
    Metric_Description This metric shows the current duration
    Value_Field        duration
    Kubernetes_Mode    on
    Regex              message .*el.*
    Add_Label          app $kubernetes['labels']['app']
    Label_Field        color
    Label_Field        shape
    Flush_Interval_Sec 1

[OUTPUT]
    Name   prometheus_exporter
    Match  test_metric
    Host   %[2]s
    Port   %[3]s

[OUTPUT]
    Name   vivo_exporter
    Match  *
    Host   %[4]s
    Port   %[5]s

[OUTPUT]
    Name   counter
    Match  dummy.*
`, samples, promHost, promPort, vivoHost, vivoPort))
	p := startFloe(t, "floe", nil, "-c", cfg, "--storage-path", filepath.Join(dir, "storage"))

	counter := fmt.Sprintf("log_metric_counter_count_all_dummy_messages %d", 2*samples)
	gauge := `log_metric_gauge_current_duration{app="app1",color="blue",container_name="mycontainer",docker_id="abc123",` +
		`namespace_name="default",pod_id="def456",pod_name="pod1",shape="square"} 60`
	var scrape string
	eventually(t, 12*time.Second, "both metrics on the prometheus_exporter", func() (bool, string) {
		scrape = fetchOrEmpty("http://" + prom + "/metrics")
		return strings.Contains(scrape, counter+"\n") && strings.Contains(scrape, gauge+"\n"), scrape
	})
	for _, want := range []string{
		"# HELP log_metric_counter_count_all_dummy_messages This metric counts dummy messages",
		"# TYPE log_metric_counter_count_all_dummy_messages counter",
		"# TYPE log_metric_gauge_current_duration gauge",
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape lacks %q:\n%s", want, scrape)
		}
	}
	// Only records whose message matches the regex made the gauge's series.
	if strings.Contains(scrape, `color="red"`) {
		t.Errorf("a record the regex excludes made a series:\n%s", scrape)
	}
	eventually(t, 5*time.Second, "the metrics in Vivo", func() (bool, string) {
		_, _, body, _ := vivoGet(t, "http://"+vivo+"/metrics")
		return strings.Contains(body, `"log_metric_counter_count_all_dummy_messages"`) &&
			strings.Contains(body, `"log_metric_gauge_current_duration"`), body
	})
	// The records went on to their output too, each once.
	eventually(t, 5*time.Second, "the records at their output", func() (bool, string) {
		_, _, body, _ := vivoGet(t, "http://"+vivo+"/logs?limit=1000")
		n := strings.Count(body, `"color":"red"`) + strings.Count(body, `"color":"blue"`)
		return n == 2*samples, fmt.Sprintf("%d records in Vivo", n)
	})
	// Every record is in; the counter stays at their number: none was
	// counted twice.
	if got := fetchOrEmpty("http://" + prom + "/metrics"); !strings.Contains(got, counter+"\n") {
		t.Errorf("counter is not %d once every record is through:\n%s", 2*samples, got)
	}
	if err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func fetchOrEmpty(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
