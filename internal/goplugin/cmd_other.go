//go:build !linux

package goplugin

import "os/exec"

func pluginCommand(path string) *exec.Cmd { return exec.Command(path) }
