package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exec with exit_after_oneshot ends Floe once the command's lines are
// delivered; with propagate_exit_code Floe exits with the command's status,
// as Fluent Bit does, so a cron job or an init container sees the failure.
func TestExecPropagatesExitCodeAfterDelivering(t *testing.T) {
	for _, tc := range []struct {
		name      string
		propagate string
		want      int
	}{
		{"propagate", "on", 3},
		{"no_propagate", "off", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "floe.conf")
			writeFile(t, cfg, fmt.Sprintf(`[SERVICE]
    Flush  0.1

[INPUT]
    Name                 exec
    Tag                  job
    Command              printf 'one\ntwo\n'; exit 3
    Exit_After_Oneshot   on
    Propagate_Exit_Code  %s

[OUTPUT]
    Name    file
    Match   job
    Path    %s
    File    job.log
    Format  plain
`, tc.propagate, out))
			p := startFloe(t, "floe", nil, "-c", cfg, "--storage-path", filepath.Join(dir, "store"))
			err := p.wait(60 * time.Second)
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Fatalf("floe exited %d, want %d; stderr:\n%s", code, tc.want, tail(p.stderr.String(), 2000))
			}
			data, err := os.ReadFile(filepath.Join(out, "job.log"))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSpace(string(data))
			if got != `{"exec":"one"}`+"\n"+`{"exec":"two"}` {
				t.Fatalf("delivered %q, want both lines once", got)
			}
		})
	}
}
