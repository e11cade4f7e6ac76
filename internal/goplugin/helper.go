package goplugin

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// hostSource is the C helper that loads fluent-bit-go shared objects.
//
//go:embed host/floe-plugin-host.c
var hostSource []byte

// HostBinaryName is the helper's file name next to the floe binary or in PATH.
const HostBinaryName = "floe-plugin-host"

// EnvHost names the helper explicitly (FLOE_PLUGIN_HOST=/path/to/floe-plugin-host).
const EnvHost = "FLOE_PLUGIN_HOST"

var (
	helperOnce sync.Once
	helperPath string
	helperErr  error
)

// HelperPath finds the C helper: $FLOE_PLUGIN_HOST, then floe-plugin-host
// beside the running executable, then in PATH; failing those it compiles
// the embedded source with the machine's C compiler ($CC, gcc or cc) into
// the user cache directory, once per source version.
func HelperPath() (string, error) {
	helperOnce.Do(func() { helperPath, helperErr = findHelper() })
	return helperPath, helperErr
}

func findHelper() (string, error) {
	if p := os.Getenv(EnvHost); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvHost, p, err)
		}
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), HostBinaryName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(HostBinaryName); err == nil {
		return p, nil
	}
	sum := sha256.Sum256(hostSource)
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	out := filepath.Join(dir, "floe", HostBinaryName+"-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := BuildHelper(out); err != nil {
		return "", fmt.Errorf("no %s found (beside floe, in PATH or %s) and building it failed: %w", HostBinaryName, EnvHost, err)
	}
	return out, nil
}

// BuildHelper compiles the helper to out with $CC, gcc or cc.
func BuildHelper(out string) error {
	cc := os.Getenv("CC")
	if cc == "" {
		for _, c := range []string{"gcc", "cc"} {
			if p, err := exec.LookPath(c); err == nil {
				cc = p
				break
			}
		}
	}
	if cc == "" {
		return errors.New("no C compiler (set CC, or install gcc)")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "floe-plugin-host.c")
	if err := os.WriteFile(src, hostSource, 0o644); err != nil {
		return err
	}
	bin := filepath.Join(tmp, HostBinaryName)
	cmd := exec.Command(cc, "-O2", "-Wall", "-o", bin, src, "-ldl", "-lpthread")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", cc, err, msg)
	}
	// Rename is atomic, so concurrent builders never see half a binary.
	return os.Rename(bin, out)
}
