// Package deploy checks the deployment files under deploy/ and the top-level
// docker-compose.yml without running them: the Kubernetes manifests decode
// strictly into the Kubernetes API types and refer to each other correctly,
// the Compose files are wired as documented, and every Floe configuration
// they carry passes `floe validate`. The Docker tests in test/e2e run them.
package deploy

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/floe-io/floe/internal/app"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/plugins/all"
)

// repoRoot is the module root (this package is test/deploy).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// floePlan parses a classic Floe configuration as `floe validate` would,
// with env as the whole process environment (plus Fluent Bit's HOSTNAME when
// env lacks it), and returns its plan; any problem fails the test.
func floePlan(t *testing.T, name string, data []byte, env map[string]string) *app.Plan {
	t.Helper()
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if k == "HOSTNAME" {
			return "floe-test-host", true
		}
		return "", false
	}
	cfg, err := config.ParseClassic(name, data, lookup)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return nil
	}
	plan, err := app.Validate(cfg, all.Registry())
	if err != nil {
		t.Errorf("%s: floe validate: %v", name, err)
		return nil
	}
	return plan
}

// portOf returns the port of a host:port address, "" when it has none.
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}
