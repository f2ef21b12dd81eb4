//go:build !linux

package bench

import (
	"errors"
	"os/exec"
)

// dieWithParent does nothing here: only Linux kills a child with its
// parent; a bench killed outright may leave its server running.
func dieWithParent(*exec.Cmd) {}

// procStatusMB fails here: the memory figures come from Linux's /proc, and
// read 0 elsewhere.
func procStatusMB(int) (map[string]float64, error) {
	return nil, errors.New("no /proc/PID/status on this system")
}

// cpuModel is unknown here: it comes from Linux's /proc/cpuinfo.
func cpuModel() string { return "unknown CPU" }

// loadAverage is unknown (0) here: it comes from Linux's /proc/loadavg.
func loadAverage() float64 { return 0 }
