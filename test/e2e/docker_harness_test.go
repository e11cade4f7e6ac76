package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Docker tests run the real image with the real Compose files. They skip
// when no Docker daemon answers, unless FLOE_REQUIRE_DOCKER=1 (CI), where
// that is a failure. The image is built once per test binary
// (deploy/build-image.sh, tag floe:dev) unless FLOE_IMAGE names an existing
// image to test instead.

var (
	dockerOnce    sync.Once
	dockerErr     error
	composeCmd    []string // "docker compose" or "docker-compose"
	imageOnce     sync.Once
	imageErr      error
	imageName     string
	imageDuration time.Duration
)

// requireDocker skips (or, with FLOE_REQUIRE_DOCKER=1, fails) the test when
// Docker or Compose is missing, and returns the image to run.
func requireDocker(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("Docker test; run without -short")
	}
	dockerOnce.Do(func() { composeCmd, dockerErr = probeDocker() })
	if dockerErr != nil {
		if os.Getenv("FLOE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("FLOE_REQUIRE_DOCKER=1 but %v", dockerErr)
		}
		t.Skipf("skipping Docker test: %v (set FLOE_REQUIRE_DOCKER=1 to make this a failure)", dockerErr)
	}
	imageOnce.Do(func() {
		start := time.Now()
		imageName, imageErr = buildImage()
		imageDuration = time.Since(start)
	})
	if imageErr != nil {
		t.Fatalf("image: %v", imageErr)
	}
	return imageName
}

func probeDocker() ([]string, error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, fmt.Errorf("no docker command: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("no Docker daemon answers (docker version: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	// Prefer the Compose plugin; fall back to the standalone docker-compose.
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
}

func buildImage() (string, error) {
	if img := os.Getenv("FLOE_IMAGE"); img != "" {
		if out, err := exec.Command("docker", "image", "inspect", img).CombinedOutput(); err != nil {
			return "", fmt.Errorf("FLOE_IMAGE=%s: %v: %s", img, err, tail(string(out), 500))
		}
		return img, nil
	}
	const img = "floe:dev"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(repoRoot(), "deploy", "build-image.sh"), img)
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("deploy/build-image.sh: %v\n%s", err, tail(string(out), 3000))
	}
	return img, nil
}

// project is one Compose project with a unique name, torn down (down -v)
// when the test ends.
type project struct {
	t     *testing.T
	name  string
	files []string
	env   []string
}

// newProject starts nothing; files are the -f arguments, in order.
func newProject(t *testing.T, image string, files ...string) *project {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := &project{t: t, name: "floetest" + hex.EncodeToString(b[:]), files: files,
		env: append(os.Environ(), "FLOE_IMAGE="+image)}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := p.run(2*time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("--- compose logs (tail):\n%s", tail(out, 12000))
		}
		if out, err := p.run(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
			t.Errorf("compose down: %v\n%s", err, tail(out, 2000))
		}
	})
	return p
}

// run runs a compose command of the project and returns its combined output.
func (p *project) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string(nil), composeCmd[1:]...)
	full = append(full, "-p", p.name)
	for _, f := range p.files {
		full = append(full, "-f", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, composeCmd[0], full...)
	cmd.Dir = repoRoot()
	cmd.Env = p.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %s", strings.Join(composeCmd, " "), strings.Join(args, " "), timeout)
	}
	return out.String(), err
}

// must runs a compose command and fails the test on error.
func (p *project) must(timeout time.Duration, args ...string) string {
	p.t.Helper()
	out, err := p.run(timeout, args...)
	if err != nil {
		p.t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, tail(out, 3000))
	}
	return out
}

// containers returns the IDs of a service's containers.
func (p *project) containers(service string) []string {
	p.t.Helper()
	out := p.must(time.Minute, "ps", "-q", service)
	return strings.Fields(out)
}

// docker runs a docker command and returns its trimmed output.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
	}
	return strings.TrimSpace(string(out))
}

// worldWritableDir is a host directory the image's user (65532) can write to
// through a bind mount.
func worldWritableDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	return dir
}
