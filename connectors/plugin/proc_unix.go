//go:build unix

package plugin

import (
	"os/exec"
	"syscall"
)

// setGroup starts the plugin in a process group of its own: the Ctrl-C of
// the terminal goes to star-deploy, which cancels what the plugin runs,
// instead of killing the plugin in the middle of it.
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the plugin and whatever else runs in its process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Process.Kill()
	}
}
