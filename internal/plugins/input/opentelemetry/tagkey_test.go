package opentelemetry

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

// tag_key is accepted, as Fluent Bit's config map has it, and changes no
// tag: a record holding that key still carries the request's tag.
func TestTagKeyAccepted(t *testing.T) {
	w := &signalWriter{}
	_, addr, _, _ := start(t, w, "tag_key service")
	ld := plog.NewLogs()
	body := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetEmptyMap()
	body.PutStr("service", "cart")
	if resp, _ := post(t, "http://"+addr+"/v1/logs", ctProto, protoLogs(t, ld)); resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	tags, _ := records(t, w)
	if len(tags) != 1 || tags[0] != "v1_logs" {
		t.Errorf("tags %q, want the request's v1_logs", tags)
	}
}
