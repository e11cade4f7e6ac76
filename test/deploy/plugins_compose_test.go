package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pluginsCompose finds Docker and Compose for the plugins Compose test: the
// `docker compose` plugin, else the standalone docker-compose. It skips when
// either is missing or no daemon answers, unless FLOE_REQUIRE_DOCKER=1 (CI),
// where that is a failure.
func pluginsCompose(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("Docker test; run without -short")
	}
	cmd, err := func() ([]string, error) {
		if _, err := exec.LookPath("docker"); err != nil {
			return nil, fmt.Errorf("no docker command: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("no Docker daemon answers (docker version: %v: %s)", err, strings.TrimSpace(string(out)))
		}
		if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
			return []string{"docker", "compose"}, nil
		}
		if _, err := exec.LookPath("docker-compose"); err == nil {
			if out, err := exec.CommandContext(ctx, "docker-compose", "version").CombinedOutput(); err != nil {
				return nil, fmt.Errorf("docker-compose does not run: %v: %s", err, out)
			}
			return []string{"docker-compose"}, nil
		}
		return nil, fmt.Errorf("neither `docker compose` nor `docker-compose` is installed")
	}()
	if err != nil {
		if os.Getenv("FLOE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("FLOE_REQUIRE_DOCKER=1 but %v", err)
		}
		t.Skipf("skipping Docker test: %v (set FLOE_REQUIRE_DOCKER=1 to make this a failure)", err)
	}
	return cmd
}

// run runs a command with a timeout and returns its combined output.
func runCmd(dir string, env []string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %s", name, strings.Join(args, " "), timeout)
	}
	return out.String(), err
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

var gstdoutLine = regexp.MustCompile(`(?m)from-go-plugin:\[demo\] (\S+) map\[message:dummy\]$`)

// deploy/compose/plugins.yml runs the plugin image variant
// (deploy/build-image-plugins.sh: FROM scratch plus the C runtime copied
// from this host): the fluent-bit-go example plugin out_gstdout, loaded
// through plugins_file by floe-plugin-host, prints the dummy input's records
// with the Prefix of its [OUTPUT] section and their timestamps, a second
// apart, in the container's log. FLOE_PLUGINS_IMAGE names an image to test
// instead of building one.
func TestComposePluginsVariantRunsGoPlugin(t *testing.T) {
	compose := pluginsCompose(t)
	root := repoRoot(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	image, project := "floe-plugins-test:"+id, "floeplugins"+id
	env := append(os.Environ(), "FLOE_PLUGINS_IMAGE="+image)

	if img := os.Getenv("FLOE_PLUGINS_IMAGE"); img != "" {
		// An image built already (CI builds it once): test it as it is.
		image = img
		env = append(os.Environ(), "FLOE_PLUGINS_IMAGE="+image)
		if out, err := runCmd(root, env, time.Minute, "docker", "image", "inspect", image); err != nil {
			t.Fatalf("FLOE_PLUGINS_IMAGE=%s: %v\n%s", image, err, lastBytes(out, 500))
		}
	} else {
		start := time.Now()
		if out, err := runCmd(root, env, 10*time.Minute, "sh", filepath.Join("deploy", "build-image-plugins.sh"), image); err != nil {
			t.Fatalf("deploy/build-image-plugins.sh: %v\n%s", err, lastBytes(out, 3000))
		}
		t.Cleanup(func() {
			if out, err := runCmd(root, env, time.Minute, "docker", "image", "rm", image); err != nil {
				t.Errorf("docker image rm %s: %v\n%s", image, err, lastBytes(out, 1000))
			}
		})
		t.Logf("image %s built in %s", image, time.Since(start).Round(time.Millisecond))
	}

	composeRun := func(timeout time.Duration, args ...string) (string, error) {
		full := append(append([]string(nil), compose[1:]...), "-p", project, "-f", filepath.Join("deploy", "compose", "plugins.yml"))
		return runCmd(root, env, timeout, compose[0], append(full, args...)...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := composeRun(time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("--- compose logs (tail):\n%s", lastBytes(out, 6000))
		}
		if out, err := composeRun(2*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("compose down: %v\n%s", err, lastBytes(out, 2000))
		}
	})
	upAt := time.Now()
	if out, err := composeRun(2*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, lastBytes(out, 3000))
	}
	t.Logf("compose up (%s): %s", strings.Join(compose, " "), time.Since(upAt).Round(time.Millisecond))

	const want = 3
	var logs string
	var stamps []time.Time
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := composeRun(time.Minute, "logs", "--no-color", "floe")
		if err != nil {
			t.Fatalf("compose logs: %v\n%s", err, lastBytes(out, 2000))
		}
		logs = out
		if m := gstdoutLine.FindAllStringSubmatch(out, -1); len(m) >= want {
			for _, l := range m {
				ts, err := time.Parse(time.RFC3339Nano, l[1])
				if err != nil {
					t.Fatalf("plugin line %q: timestamp: %v", l[0], err)
				}
				stamps = append(stamps, ts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d lines of the plugin in the container log after 60 s:\n%s", want, lastBytes(logs, 4000))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("plugin records in the log %s after compose up", time.Since(upAt).Round(time.Millisecond))
	// The records are the dummy input's, stamped when made (Rate 1): after
	// the container started, in order, about a second apart.
	for i, ts := range stamps {
		if ts.Before(upAt.Add(-5*time.Second)) || ts.After(time.Now().Add(5*time.Second)) {
			t.Errorf("record %d stamped %s, outside the container's run (up at %s)", i, ts, upAt)
		}
		if i > 0 {
			if d := ts.Sub(stamps[i-1]); d < 500*time.Millisecond || d > 3*time.Second {
				t.Errorf("records %d and %d are %s apart, want about 1s (Rate 1)", i-1, i, d)
			}
		}
	}
	if strings.Contains(logs, "level=ERROR") {
		t.Errorf("errors in the container log:\n%s", lastBytes(logs, 4000))
	}
}
