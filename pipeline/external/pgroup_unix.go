//go:build unix

package external

import (
	"os/exec"
	"syscall"
)

// killGroup makes the command the leader of its own process group and, on
// cancellation, kills the whole group, so that a script's children (a
// "sleep" it waits on, a model server it started) die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
