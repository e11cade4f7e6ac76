package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

var composeLine = regexp.MustCompile(`^\[\[\d{19},\{"_tag":"app\.web"\}\],\{"message":"GET /index\.html 200",.*"pipeline":"floe".*\}\]$`)

// docker-compose.yml with the deploy/compose/vivo.yml override: the vivo
// service serves the pipeline's events (after grep and modify) and Floe's
// own metrics on its published port. Needs the vivo stage wired.
func TestComposeVivoOverride(t *testing.T) {
	image := requireDocker(t)
	port := strings.Split(freePort(t), ":")[1]
	p := newProject(t, image, "docker-compose.yml", "deploy/compose/vivo.yml")
	p.env = append(p.env, "FLOE_VIVO_PORT="+port)
	p.must(5*time.Minute, "up", "-d")
	base := "http://127.0.0.1:" + port
	eventually(t, 2*time.Minute, "events at the vivo service", func() (bool, string) {
		status, _, body, _ := vivoGet(t, base+"/logs")
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		return status == 200 && len(lines) >= 2 && composeLine.MatchString(lines[0]), fmt.Sprintf("%d %.200q", status, body)
	})
	eventually(t, 2*time.Minute, "Floe's metrics at the vivo service", func() (bool, string) {
		_, _, body, _ := vivoGet(t, base+"/api/v1/metrics")
		return strings.Contains(body, `"fluentbit_input_records_total"`), fmt.Sprintf("%.200q", body)
	})
	status, hdr, body, _ := vivoGet(t, base+"/api/v1/logs?limit=1")
	if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "*" || !strings.HasPrefix(body, `{"source_type":"dummy","source_name":"dummy.0","tag":"app.web"`) {
		t.Errorf("/api/v1/logs: %d %v %s", status, hdr, body)
	}
	if status, _, _, _ := vivoGet(t, base+"/ui/"); status != 200 {
		t.Errorf("/ui/: %d", status)
	}
}
