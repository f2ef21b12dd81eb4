//go:build !unix

package external

import "os/exec"

// killGroup leaves the default: cancellation kills the command itself.
func killGroup(*exec.Cmd) {}
