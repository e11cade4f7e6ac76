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

// The vivo stage on its own beside a NATS server, as two replicas, while
// events flow and across restarts of the stage and of NATS, each graceful
// (SIGTERM) and a crash (SIGKILL): the replicas give the same answers with
// the same ids, what was served before a restart is served unchanged after
// it, and in the end every event is there once.
// Needs the vivo stage wired (`floe run --stage=vivo`).
func TestVivoStageReplicasAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	// Long enough (20 s) for the four restarts to land while events flow.
	const total, rate = 400, 20
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
    rate     %d
    samples  %d

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
`, natsURL, rate, total, host, port))
		return path
	}
	addrA, addrB := freePort(t), freePort(t)
	cfgA, cfgB := conf("a.conf", addrA), conf("b.conf", addrB)
	pipeline := startFloe(t, "pipeline", nil, "run", "--stage=ingest,filter,router", "-c", cfgA)
	pipeline.waitLog(`floe started`, 30*time.Second)
	vivo := map[string]*proc{}
	startVivo := func(name, cfg string) {
		vivo[name] = startFloe(t, name, nil, "run", "--stage=vivo", "-c", cfg)
		vivo[name].waitLog(`vivo listening`, 30*time.Second)
	}
	startVivo("vivo-a", cfgA)
	startVivo("vivo-b", cfgB)

	a, b := "http://"+addrA, "http://"+addrB
	eventually(t, 60*time.Second, "events and a metrics chunk", func() (bool, string) {
		_, _, body, _ := vivoGet(t, a+"/logs")
		_, _, m, _ := vivoGet(t, a+"/api/v1/metrics")
		n := strings.Count(body, "\n")
		return n >= 2*rate && strings.Contains(m, "fluentbit_input_records_total"), fmt.Sprintf("%d events, metrics %.80q", n, m)
	})
	// served is what a replica answers for chunk ids from..to.
	served := func(base, from, to string) (int, string) {
		status, _, body, _ := vivoGet(t, fmt.Sprintf("%s/logs?from=%s&to=%s", base, from, to))
		return status, body
	}
	// snapshot takes replica a's whole answer and checks b gives the same
	// for the same ids (the stream moves on between the two requests).
	snapshot := func(when string) (string, string, string) {
		t.Helper()
		status, h, body, _ := vivoGet(t, a+"/logs")
		from, to := h.Get("Vivo-Stream-Start-Id"), h.Get("Vivo-Stream-End-Id")
		if status != 200 || from == "" || to == "" {
			t.Fatalf("%s: replica a answered %d, ids %q..%q", when, status, from, to)
		}
		if sb, bb := served(b, from, to); sb != 200 || bb != body {
			t.Fatalf("%s: replica b answers chunks %s..%s differently (%d):\n%.300s\nvs a:\n%.300s", when, from, to, sb, bb, body)
		}
		return from, to, body
	}
	restartNATS := func(crash bool) {
		if crash {
			natsProc.kill()
		} else if err := natsProc.stop(15 * time.Second); err != nil {
			t.Errorf("nats stop: %v", err)
		}
		natsProc = startFloe(t, "nats2", nil, "run", "--stage=nats", "--nats-listen="+strings.TrimPrefix(natsURL, "nats://"), "--storage-path="+filepath.Join(dir, "nats"))
		natsProc.waitLog(`nats server listening`, 30*time.Second)
	}
	faults := []struct {
		name string
		do   func()
	}{
		{"stopping (SIGTERM) and restarting vivo-a", func() {
			if err := vivo["vivo-a"].stop(15 * time.Second); err != nil {
				t.Errorf("vivo-a stop: %v", err)
			}
			startVivo("vivo-a", cfgA)
		}},
		{"killing (SIGKILL) and restarting vivo-b", func() {
			vivo["vivo-b"].kill()
			startVivo("vivo-b", cfgB)
		}},
		{"stopping (SIGTERM) and restarting NATS", func() { restartNATS(false) }},
		{"killing (SIGKILL) and restarting NATS", func() { restartNATS(true) }},
	}
	for _, f := range faults {
		from, to, before := snapshot("before " + f.name)
		n := strings.Count(before, "\n")
		requireFlowing(t, f.name, -1, n, total)
		f.do()
		for _, base := range []string{a, b} {
			eventually(t, 30*time.Second, "the same answer for chunks "+from+".."+to+" after "+f.name, func() (bool, string) {
				status, body := served(base, from, to)
				return status == 200 && body == before, fmt.Sprintf("%s: %d, %d lines (had %d)", base, status, strings.Count(body, "\n"), n)
			})
		}
	}
	eventually(t, 60*time.Second, "every event at both replicas", func() (bool, string) {
		_, _, ba, _ := vivoGet(t, a+"/logs")
		_, _, bb, _ := vivoGet(t, b+"/logs")
		na, nb := strings.Count(ba, "\n"), strings.Count(bb, "\n")
		return na >= total && nb >= total, fmt.Sprintf("a %d, b %d", na, nb)
	})
	_, _, body := snapshot("at the end")
	var times []string
	for i, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		m := vivoEventTime.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d not an app.events dummy event: %s", i+1, l)
		}
		times = append(times, m[1])
	}
	// A chunk republished after a restart carries its Nats-Msg-Id, so the
	// stream holds it once: no duplicates here.
	requireOnce(t, "events served by the replicas", compareDistinct(total, times))
}

var vivoEventTime = regexp.MustCompile(`^\[\[(\d{19}),\{"_tag":"app\.events"\}\],\{"message":"dummy"\}\]$`)

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
