//go:build !unix

package bench

import "os"

// stopSignal ends a server: without SIGTERM, by killing it, so that the
// figures of a run stand but its graceful shutdown is not exercised
// (graceful is false: its exit status means nothing).
var stopSignal os.Signal = os.Kill

const (
	stopSignalName = "a kill"
	graceful       = false
)

// selfCPU is unknown (0) here: it comes from getrusage.
func selfCPU() float64 { return 0 }
