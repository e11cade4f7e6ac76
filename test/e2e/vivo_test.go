package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vivoGet fetches a Vivo endpoint; it returns the status, headers and body.
func vivoGet(t *testing.T, url string) (int, http.Header, string, []string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		return 0, nil, err.Error(), nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b), res.TransferEncoding
}

// rawHead reads a response head as it is on the wire (Go's client would
// canonicalise "Vivo-Stream-Start-ID" to "…-Id").
func rawHead(t *testing.T, addr, path string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	b, _ := io.ReadAll(c)
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	return head + "\r\n"
}

func vivoHeader(h http.Header, name string) string { return h.Get(name) }

var seedLine = regexp.MustCompile(`^\[\[\d{19},\{"_tag":"events"\}\],\{"message":"dummy"\}\]$`)

// The seed document's two curl -i examples against a dummy pipeline: the
// headers it shows and one event per line in its format.
// Needs the vivo stage wired into `floe run`.
func TestVivoSeedCurlExamples(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	host, port, _ := strings.Cut(addr, ":")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    flush 0.5

[INPUT]
    name  dummy
    tag   events
    rate  2

[OUTPUT]
    name   vivo_exporter
    host   %s
    port   %s
`, host, port))
	p := startFloe(t, "floe", nil, "run", "-c", cfg, "--storage-path", filepath.Join(dir, "data"))
	got := p.waitLog(`vivo listening.*addr=(\S+)`, 30*time.Second)
	if got[1] != addr {
		t.Fatalf("listening on %s, want %s", got[1], addr)
	}
	base := "http://" + addr
	var hdr http.Header
	var body string
	var te []string
	eventually(t, 30*time.Second, "four chunks in the logs stream", func() (bool, string) {
		var status int
		status, hdr, body, te = vivoGet(t, base+"/logs")
		end, _ := strconv.Atoi(vivoHeader(hdr, "Vivo-Stream-End-ID"))
		return status == 200 && end >= 3, fmt.Sprintf("status %d, end id %q", status, vivoHeader(hdr, "Vivo-Stream-End-ID"))
	})
	if len(te) == 0 || te[0] != "chunked" {
		t.Errorf("Transfer-Encoding %v, want chunked", te)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	head := rawHead(t, addr, "/logs")
	for _, h := range []string{"Transfer-Encoding: chunked", "Content-Type: application/json", "Vivo-Stream-Start-ID: 0", "Vivo-Stream-End-ID: "} {
		if !strings.Contains(head, "\r\n"+h) {
			t.Errorf("no %q in the head:\n%s", h, head)
		}
	}
	if head2 := rawHead(t, addr, "/api/v1/logs"); !strings.Contains(head2, "\r\nvivo-stream-next-id: ") {
		t.Errorf("/api/v1/logs head:\n%s", head2)
	}
	if s := vivoHeader(hdr, "Vivo-Stream-Start-ID"); s != "0" {
		t.Errorf("Vivo-Stream-Start-ID %q, want 0", s)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if !seedLine.MatchString(l) {
			t.Fatalf("line not in the documented format: %s", l)
		}
	}

	status, hdr, body, _ := vivoGet(t, base+"/logs?from=1&to=3&limit=1")
	if status != 200 || vivoHeader(hdr, "Vivo-Stream-Start-ID") != "1" || vivoHeader(hdr, "Vivo-Stream-End-ID") != "1" {
		t.Errorf("range: %d start %q end %q", status, vivoHeader(hdr, "Vivo-Stream-Start-ID"), vivoHeader(hdr, "Vivo-Stream-End-ID"))
	}
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if !seedLine.MatchString(l) {
			t.Errorf("range line: %s", l)
		}
	}
	// current upstream API beside it
	status, hdr, body, _ = vivoGet(t, base+"/api/v1/logs?limit=1")
	if status != 200 || !strings.HasPrefix(body, `{"source_type":"dummy","source_name":"dummy.0","tag":"events","records":[[[`) {
		t.Errorf("/api/v1/logs: %d %s", status, body)
	}
	if hdr.Get("Vivo-Stream-Next-Id") == "" {
		t.Error("no vivo-stream-next-id")
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// The vivo stage on its own beside a NATS server, as two replicas, and
// across restarts of the stage and of NATS: same answers, same ids.
// Needs the vivo stage wired (`floe run --stage=vivo`).
func TestVivoStageReplicasAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	dir := t.TempDir()
	natsProc, natsURL := startNATS(t, filepath.Join(dir, "nats"))
	conf := func(name, addr string) string {
		host, port, _ := strings.Cut(addr, ":")
		path := filepath.Join(dir, name)
		writeFile(t, path, fmt.Sprintf(`[SERVICE]
    flush     0.2
    nats.url  %s

[INPUT]
    name     dummy
    tag      app.events
    rate     20
    samples  40

[INPUT]
    name             fluentbit_metrics
    tag              floe.metrics
    scrape_interval  1

[OUTPUT]
    name   vivo_exporter
    match  *
    alias  vivo
    host   %s
    port   %s
`, natsURL, host, port))
		return path
	}
	addrA, addrB := freePort(t), freePort(t)
	cfgA, cfgB := conf("a.conf", addrA), conf("b.conf", addrB)
	pipeline := startFloe(t, "pipeline", nil, "run", "--stage=ingest,filter,router", "-c", cfgA)
	pipeline.waitLog(`floe started`, 30*time.Second)
	vivoA := startFloe(t, "vivo-a", nil, "run", "--stage=vivo", "-c", cfgA)
	vivoA.waitLog(`vivo listening`, 30*time.Second)
	vivoB := startFloe(t, "vivo-b", nil, "run", "--stage=vivo", "-c", cfgB)
	vivoB.waitLog(`vivo listening`, 30*time.Second)

	a, b := "http://"+addrA, "http://"+addrB
	eventually(t, 60*time.Second, "40 events and a metrics chunk", func() (bool, string) {
		_, _, body, _ := vivoGet(t, a+"/logs")
		_, _, m, _ := vivoGet(t, a+"/api/v1/metrics")
		n := strings.Count(body, "\n")
		return n == 40 && strings.Contains(m, "fluentbit_input_records_total"), fmt.Sprintf("%d events, metrics %.80q", n, m)
	})
	same := func(when string) (string, string) {
		t.Helper()
		sa, ha, ba, _ := vivoGet(t, a+"/api/v1/logs")
		sb, hb, bb, _ := vivoGet(t, b+"/api/v1/logs")
		if sa != 200 || sb != 200 {
			t.Fatalf("%s: status %d and %d", when, sa, sb)
		}
		ra := ha.Get("Vivo-Stream-Start-Id") + ".." + ha.Get("Vivo-Stream-End-Id")
		rb := hb.Get("Vivo-Stream-Start-Id") + ".." + hb.Get("Vivo-Stream-End-Id")
		if ba != bb || ra != rb {
			t.Fatalf("%s: replicas differ: %s vs %s", when, ra, rb)
		}
		return ra, ba
	}
	rangeBefore, bodyBefore := same("before restarts")

	// restart a replica
	if err := vivoA.stop(15 * time.Second); err != nil {
		t.Errorf("vivo-a stop: %v", err)
	}
	vivoA = startFloe(t, "vivo-a2", nil, "run", "--stage=vivo", "-c", cfgA)
	vivoA.waitLog(`vivo listening`, 30*time.Second)
	if r, body := same("after a stage restart"); r != rangeBefore || body != bodyBefore {
		t.Fatalf("after a stage restart: %s, was %s", r, rangeBefore)
	}

	// restart NATS on the same storage
	if err := natsProc.stop(15 * time.Second); err != nil {
		t.Errorf("nats stop: %v", err)
	}
	natsAddr := strings.TrimPrefix(natsURL, "nats://")
	startFloe(t, "nats2", nil, "run", "--stage=nats", "--nats-listen="+natsAddr, "--storage-path="+filepath.Join(dir, "nats")).
		waitLog(`nats server listening`, 30*time.Second)
	for _, base := range []string{a, b} {
		eventually(t, 30*time.Second, "the same logs after NATS restarted", func() (bool, string) {
			status, h, body, _ := vivoGet(t, base+"/api/v1/logs")
			r := h.Get("Vivo-Stream-Start-Id") + ".." + h.Get("Vivo-Stream-End-Id")
			return status == 200 && r == rangeBefore && body == bodyBefore, fmt.Sprintf("%s: %d %s", base, status, r)
		})
	}
	same("after a NATS restart")
}

// The viewer page is served by the stage. Needs the vivo stage wired.
func TestVivoServesViewer(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	host, port, _ := strings.Cut(addr, ":")
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf("[INPUT]\n    name dummy\n[OUTPUT]\n    name vivo_exporter\n    host %s\n    port %s\n", host, port))
	p := startFloe(t, "floe", nil, "run", "-c", cfg, "--storage-path", filepath.Join(dir, "data"))
	p.waitLog(`vivo listening`, 30*time.Second)
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		status, _, body, _ := vivoGet(t, "http://"+addr+path)
		if status != 200 || len(body) < 100 {
			t.Errorf("%s: %d, %d bytes", path, status, len(body))
		}
	}
	if status, _, body, _ := vivoGet(t, "http://"+addr+"/"); status != 200 || body != "Fluent Bit Vivo Exporter\n" {
		t.Errorf("/: %d %q", status, body)
	}
}
