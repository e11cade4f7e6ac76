package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real floe receives over http (Go client and curl) and syslog over TCP
// (a Go client and logger), and the file outputs hold every record once.
// The http input answers only once JetStream holds a request's records, so
// every record of a 201 is in the output.
func TestNetworkInputsDeliverEveryRecordOnce(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	httpAddr, syslogAddr := freePort(t), freePort(t)
	hh, hp, _ := net.SplitHostPort(httpAddr)
	sh, sp, _ := net.SplitHostPort(syslogAddr)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush      0.2
    Log_Level  info

[INPUT]
    Name                      http
    Listen                    %s
    Port                      %s
    Success_Header            X-Floe yes

[INPUT]
    Name                syslog
    Mode                tcp
    Listen              %s
    Port                %s
    Tag                 sys
    Source_Address_Key  src

[OUTPUT]
    Name    file
    Match   web.*
    Path    %s
    File    http.log
    Format  plain

[OUTPUT]
    Name    file
    Match   sys
    Path    %s
    File    syslog.log
    Format  plain
`, hh, hp, sh, sp, out, out))
	p := startFloe(t, "floe", nil, "-c", cfg, "--storage-path", filepath.Join(dir, "storage"))
	p.waitLog(`listening.*`+quoteDots(syslogAddr), 60*time.Second)
	p.waitLog(`listening.*`+quoteDots(httpAddr), 60*time.Second)

	// http: 100 requests of 5 records from Go, 3 from curl.
	const requests, perReq = 100, 5
	want := map[string]int{}
	for r := range requests {
		var recs []string
		for i := range perReq {
			id := fmt.Sprintf("go-%d-%d", r, i)
			recs = append(recs, fmt.Sprintf(`{"id":%q}`, id))
			want[id] = 0
		}
		resp, err := http.Post("http://"+httpAddr+"/web.go", "application/json", strings.NewReader("["+strings.Join(recs, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 || resp.Header.Get("X-Floe") != "yes" {
			t.Fatalf("request %d: status %d headers %v", r, resp.StatusCode, resp.Header)
		}
	}
	if _, err := exec.LookPath("curl"); err == nil {
		for i := range 3 {
			id := fmt.Sprintf("curl-%d", i)
			want[id] = 0
			code, err := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json",
				"-d", fmt.Sprintf(`{"id":%q}`, id), "http://"+httpAddr+"/web.curl").Output()
			if err != nil || string(code) != "201" {
				t.Fatalf("curl: %s %v", code, err)
			}
		}
	} else {
		t.Log("curl not in PATH: http checked with the Go client only")
	}
	// The 201s came after the PubAcks: count what is stored right away, then
	// wait only for the outputs.
	httpLog := filepath.Join(out, "http.log")

	// syslog: 500 RFC 5424 lines from a Go client, 5 from logger.
	sysWant := map[string]int{}
	c, err := net.Dial("tcp", syslogAddr)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(c)
	for i := range 500 {
		msg := fmt.Sprintf("go %d", i)
		sysWant[msg] = 0
		fmt.Fprintf(bw, "<14>1 2024-05-01T10:00:00.000Z host app 42 ID1 - %s\n", msg)
	}
	bw.Flush()
	c.Close()
	if _, err := exec.LookPath("logger"); err == nil {
		for i := range 5 {
			msg := fmt.Sprintf("logger %d", i)
			sysWant[msg] = 0
			if b, err := exec.Command("logger", "-n", sh, "-P", sp, "-T", "-t", "e2e", msg).CombinedOutput(); err != nil {
				t.Fatalf("logger: %v %s", err, b)
			}
		}
	} else {
		t.Log("logger not in PATH: syslog checked with the Go client only")
	}
	sysLog := filepath.Join(out, "syslog.log")

	eventually(t, 60*time.Second, "every record in the output files", func() (bool, string) {
		h, s := countLines(httpLog), countLines(sysLog)
		return h >= len(want) && s >= len(sysWant), fmt.Sprintf("http.log %d/%d, syslog.log %d/%d", h, len(want), s, len(sysWant))
	})
	time.Sleep(time.Second) // duplicates would come now
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	count := func(path, key string, want map[string]int, check func(map[string]any) error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
			}
			id, _ := rec[key].(string)
			if _, ok := want[id]; !ok {
				t.Errorf("%s: unexpected record %v", path, rec)
				continue
			}
			want[id]++
			if err := check(rec); err != nil {
				t.Errorf("%s: %v in %v", path, err, rec)
			}
		}
		var missing, dup []string
		for id, n := range want {
			switch {
			case n == 0:
				missing = append(missing, id)
			case n > 1:
				dup = append(dup, fmt.Sprintf("%s×%d", id, n))
			}
		}
		if len(missing) > 0 || len(dup) > 0 {
			t.Errorf("%s: %d of %d missing (%.10v), duplicates %v", path, len(missing), len(want), missing, dup)
		}
	}
	count(httpLog, "id", want, func(map[string]any) error { return nil })
	count(sysLog, "message", sysWant, func(rec map[string]any) error {
		src, _ := rec["src"].(string)
		if !strings.HasPrefix(src, "tcp://127.0.0.1:") {
			return fmt.Errorf("src %q", src)
		}
		if rec["ident"] != "app" && rec["ident"] != "e2e" {
			return fmt.Errorf("ident %v", rec["ident"])
		}
		return nil
	})
}

func quoteDots(s string) string { return strings.ReplaceAll(s, ".", `\.`) }
