//go:build unix

package bench

import (
	"os"
	"syscall"
)

// stopSignal ends a server gracefully, as an operator does; graceful says
// the server must then exit with status 0.
var stopSignal os.Signal = syscall.SIGTERM

const (
	stopSignalName = "SIGTERM"
	graceful       = true
)

// selfCPU is this process's user and system CPU seconds so far (0 where
// getrusage fails, which it does not on Linux).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}
