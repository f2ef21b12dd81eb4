package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a pprof CPU profile of this process to path until
// the returned stop is called; flag names the option in errors.
func startCPUProfile(flag, path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, usageErrorf("--%s: %w", flag, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
