package goplugin

import (
	"os/exec"
	"syscall"
)

// pluginCommand starts an SDK plugin that dies with Floe, even when Floe is
// killed without a chance to stop it.
func pluginCommand(path string) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
