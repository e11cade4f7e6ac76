package app

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugins/all"
)

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.ParseClassic("test.conf", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestValidateAppliesFluentBitDefaults(t *testing.T) {
	plan, err := Validate(parse(t, `[INPUT]
    Name dummy
[OUTPUT]
    Name stdout
`), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Inputs[0].Tag != "dummy.0" {
		t.Errorf("default tag = %q, want dummy.0", plan.Inputs[0].Tag)
	}
	if !plan.Outputs[0].Matcher.Match("anything.at.all") {
		t.Error("single input + single output without Match did not get Match *")
	}
	if plan.Service.Flush != time.Second || plan.Service.SchedulerBase != 5*time.Second || plan.Service.SchedulerCap != 2000*time.Second {
		t.Errorf("service defaults: %+v", plan.Service)
	}
	if plan.Outputs[0].ID != "stdout_0" {
		t.Errorf("output id %q", plan.Outputs[0].ID)
	}
}

func TestValidateNoDefaultMatchWithTwoInputs(t *testing.T) {
	plan, err := Validate(parse(t, `[INPUT]
    Name dummy
[INPUT]
    Name dummy
[OUTPUT]
    Name stdout
`), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Inputs[1].Tag != "dummy.1" {
		t.Errorf("second input tag = %q, want dummy.1", plan.Inputs[1].Tag)
	}
	if plan.Outputs[0].Matcher.Match("dummy.0") {
		t.Error("output without Match matched although there are two inputs")
	}
	if w := plan.Warnings(); len(w) != 1 || !strings.Contains(w[0], "NO match for stdout.0") {
		t.Errorf("warnings %v", w)
	}
}

func TestValidateCollectsEveryProblem(t *testing.T) {
	_, err := Validate(parse(t, `[SERVICE]
    Flush  soon
    Colour blue
[INPUT]
    Name nosuch
[OUTPUT]
    Name        stdout
    Match_Regex ([
    Retry_Limit forever
    Alias       same
[OUTPUT]
    Name  null
    Alias same
`), all.Registry())
	var list config.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want ErrorList, got %v", err)
	}
	want := []string{"test.conf:2: key flush", "test.conf:3: key colour", "test.conf:5: key name: unknown input plugin",
		"test.conf:8: key match_regex", "test.conf:9: key retry_limit", "key alias"}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestRetryLimit(t *testing.T) {
	for in, want := range map[string]int{"": 1, "1": 1, "5": 5, "no_limits": -1, "False": -1, "off": -1, "no_retries": 0} {
		if got, ok := RetryLimit(in); !ok || got != want {
			t.Errorf("RetryLimit(%q) = %d,%v want %d", in, got, ok, want)
		}
	}
	if _, ok := RetryLimit("-3"); ok {
		t.Error("negative retry_limit accepted")
	}
}

func TestParseStages(t *testing.T) {
	s, err := ParseStages([]string{"ingest,filter", "output"})
	if err != nil || !s[StageIngest] || !s[StageFilter] || !s[StageOutput] || s[StageRouter] || s[StageNATS] {
		t.Fatalf("%v %v", s, err)
	}
	all, _ := ParseStages(nil)
	if !all[StageAll] || !all[StageRouter] {
		t.Fatalf("default stages %v", all)
	}
	if _, err := ParseStages([]string{"ingest,bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown stage: %v", err)
	}
}

func TestValidateLoadsParsers(t *testing.T) {
	dir := t.TempDir()
	pf := dir + "/parsers.conf"
	if err := os.WriteFile(pf, []byte("[PARSER]\n    Name   kv\n    Format regex\n    Regex  ^(?<k>[a-z]+)=(?<v>.*)$\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := Validate(parse(t, "[SERVICE]\n    Parsers_File "+pf+"\n[INPUT]\n    Name dummy\n[OUTPUT]\n    Name null\n"), all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := plan.Parsers.Lookup("kv")
	if !ok {
		t.Fatal("parser from parsers_file not found")
	}
	_, rec, err := p.Parse([]byte("level=warn"))
	if err != nil || len(rec) != 2 || rec[0].Value != "level" || rec[1].Value != "warn" {
		t.Fatalf("parsed %v, %v", rec, err)
	}
	if _, ok := plan.Parsers.Lookup("docker"); !ok {
		t.Error("Fluent Bit's stock docker parser is missing")
	}
	_, err = Validate(parse(t, "[SERVICE]\n    Parsers_File "+dir+"/missing.conf\n[INPUT]\n    Name dummy\n[OUTPUT]\n    Name null\n"), all.Registry())
	if err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Fatalf("missing parsers file: %v", err)
	}
}

// storage.max_file_store bounds FLOE_IN and FLOE_FILTERED to a quarter of the
// store each, so that the inner hops can never fill it (see topology).
func TestMaxFileStoreBoundsInnerStreams(t *testing.T) {
	for _, tc := range []struct {
		service      string
		in, filtered int64
	}{
		{"    storage.max_file_store 8M\n", 2_000_000, 2_000_000},
		{"    storage.max_file_store 8M\n    storage.total_limit_size 1M\n", 1_000_000, 2_000_000},
		{"    storage.max_file_store 8M\n    storage.total_limit_size 5M\n", 2_000_000, 2_000_000},
		{"    storage.total_limit_size 5M\n", 5_000_000, 0},
		{"", 0, 0},
	} {
		plan, err := Validate(parse(t, "[SERVICE]\n"+tc.service+"[INPUT]\n    Name dummy\n[OUTPUT]\n    Name stdout\n"), all.Registry())
		if err != nil {
			t.Fatal(err)
		}
		p := &process{plan: plan, svc: plan.Service}
		topo := p.topology()
		if topo.InMaxBytes != tc.in || topo.FilteredMaxBytes != tc.filtered {
			t.Errorf("%q: FLOE_IN %d, FLOE_FILTERED %d; want %d, %d", tc.service, topo.InMaxBytes, topo.FilteredMaxBytes, tc.in, tc.filtered)
		}
	}
}

func TestMaxFileStoreTooSmallIsRefusedWithItsLine(t *testing.T) {
	_, err := Validate(parse(t, "[SERVICE]\n    storage.max_file_store 1M\n[INPUT]\n    Name dummy\n[OUTPUT]\n    Name stdout\n"), all.Registry())
	if err == nil || !strings.Contains(err.Error(), "test.conf:2") || !strings.Contains(err.Error(), "at least 4M") {
		t.Fatalf("err = %v, want test.conf:2 ... at least 4M", err)
	}
}

// nats.ack_wait reaches the stages' consumers; below a second is refused
// because progress is sent every third of it.
func TestAckWait(t *testing.T) {
	for _, tc := range []struct {
		service string
		want    time.Duration
	}{
		{"", 10 * time.Second},
		{"    nats.ack_wait 2\n", 2 * time.Second},
		{"    nats.ack_wait 1.5\n", 1500 * time.Millisecond},
	} {
		plan, err := Validate(parse(t, "[SERVICE]\n"+tc.service+"[INPUT]\n    Name dummy\n[OUTPUT]\n    Name stdout\n"), all.Registry())
		if err != nil {
			t.Fatal(err)
		}
		if plan.Service.AckWait != tc.want {
			t.Errorf("%q: AckWait %s, want %s", tc.service, plan.Service.AckWait, tc.want)
		}
	}
	_, err := Validate(parse(t, "[SERVICE]\n    nats.ack_wait 0.5\n[INPUT]\n    Name dummy\n[OUTPUT]\n    Name stdout\n"), all.Registry())
	if err == nil || !strings.Contains(err.Error(), "test.conf:2") || !strings.Contains(err.Error(), "at least 1 second") {
		t.Fatalf("err = %v, want test.conf:2 ... at least 1 second", err)
	}
}
