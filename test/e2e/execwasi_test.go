package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/wasmhost/wasmtest"
)

// exec_wasi runs WASI programs: each stdout line of wasi_hello becomes a
// {"wasi_stdout": line} record (a 10,000-byte line split by buf_size), once
// with oneshot; wasi_json's line goes through a JSON parser from the
// parsers_file and the program writes helloworld.txt into accessible_paths.
func TestExecWASIOneshotToFile(t *testing.T) {
	dir := t.TempDir()
	hello := filepath.Join(dir, "wasi_hello.wasm")
	jsonProg := filepath.Join(dir, "wasi_json.wasm")
	if err := os.WriteFile(hello, wasmtest.Guest("wasi_hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsonProg, wasmtest.Guest("wasi_json"), 0o644); err != nil {
		t.Fatal(err)
	}
	share := filepath.Join(dir, "share")
	out := filepath.Join(dir, "out")
	for _, d := range []string{share, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	parsers := filepath.Join(dir, "parsers.conf")
	writeFile(t, parsers, `[PARSER]
    Name         wasi
    Format       json
    Time_Key     time
    Time_Format  %Y-%m-%dT%H:%M:%S.%L %z
`)
	cfg := filepath.Join(dir, "floe.conf")
	writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush         0.2
    Log_Level     info
    Parsers_File  %s

[INPUT]
    Name       exec_wasi
    Tag        wasi.hello
    WASI_Path  %s
    Oneshot    true
    Buf_Size   4096

[INPUT]
    Name              exec_wasi
    Tag               wasi.json
    WASI_Path         %s
    Parser            wasi
    Accessible_Paths  %s
    Oneshot           on

[OUTPUT]
    Name    file
    Match   wasi.hello
    Path    %s
    File    hello.log
    Format  plain

[OUTPUT]
    Name    file
    Match   wasi.json
    Path    %s
    File    json.log
    Format  out_file
`, parsers, hello, jsonProg, share, out, out))

	start := time.Now()
	p := startFloe(t, "floe", nil, "-c", cfg, "--storage-path", filepath.Join(dir, "storage"))
	helloLog := filepath.Join(out, "hello.log")
	jsonLog := filepath.Join(out, "json.log")
	eventually(t, 60*time.Second, "exec_wasi records in the output files", func() (bool, string) {
		return countLines(helloLog) >= 7 && countLines(jsonLog) >= 1,
			fmt.Sprintf("hello.log %d lines, json.log %d lines", countLines(helloLog), countLines(jsonLog))
	})
	time.Sleep(1500 * time.Millisecond) // oneshot: nothing more must come
	if err := p.stop(15 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	b, err := os.ReadFile(helloLog)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var rec map[string]string
		if err := json.Unmarshal([]byte(l), &rec); err != nil || len(rec) != 1 {
			t.Fatalf("line %.80q is not a {\"wasi_stdout\": ...} record: %v", l, err)
		}
		got = append(got, rec["wasi_stdout"])
	}
	want := []string{"line 1", "line 2", "line 3",
		strings.Repeat("x", 4095), strings.Repeat("x", 4095), strings.Repeat("x", 1810), "last"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hello.log: %d records, want exactly one run's %d:\n%.300q", len(got), len(want), got)
	}

	// out_file format: TAG: [SEC.NSEC, {record}], the time being the parser's.
	b, err = os.ReadFile(jsonLog)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(string(b), "\n")
	if strings.Count(line, "\n") != 0 {
		t.Fatalf("json.log holds more than one record:\n%s", b)
	}
	rest, ok := strings.CutPrefix(line, "wasi.json: [")
	if !ok {
		t.Fatalf("json.log line %q", line)
	}
	var ts float64
	var body map[string]any
	sep := strings.Index(rest, ", ")
	if sep < 0 {
		t.Fatalf("json.log line %q", line)
	}
	if _, err := fmt.Sscanf(rest[:sep], "%f", &ts); err != nil {
		t.Fatalf("time in %q: %v", line, err)
	}
	if err := json.Unmarshal([]byte(strings.TrimSuffix(rest[sep+2:], "]")), &body); err != nil {
		t.Fatalf("record in %q: %v", line, err)
	}
	if body["name"] != "John Doe" || body["age"] != float64(43) || body["time"] != nil {
		t.Errorf("parsed record %v", body)
	}
	if ts < float64(start.Unix()-1) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("record time %f is not the program's time (started %d)", ts, start.Unix())
	}
	if b, err := os.ReadFile(filepath.Join(share, "helloworld.txt")); err != nil || string(b) != "Hello, world!\n" {
		t.Errorf("helloworld.txt in accessible_paths: %q %v", b, err)
	}
}
