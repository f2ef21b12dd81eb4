package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit statuses. They are the same for every subcommand, so that scripts on
// a capture box can tell a bad input from a server that is down.
const (
	// exitOK: the command did what was asked.
	exitOK = 0
	// exitFailure: the server answered with an error, or processing failed.
	exitFailure = 1
	// exitUsage: bad local input or usage: a missing or unreadable file, a
	// bad flag value.
	exitUsage = 2
	// exitUnavailable: the server can't be reached, or the connection was
	// lost or closed by the server.
	exitUnavailable = 3
	// exitInterrupted: stopped by SIGINT (Ctrl-C) or SIGTERM, 128 + 2 as
	// a shell reports a command killed by SIGINT.
	exitInterrupted = 130
)

// exitError carries the exit status for err. It is the only way a
// subcommand chooses its status; errors without one exit with exitFailure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit returns err marked with the exit status code, or nil for a nil err.
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageErrorf is a bad local input or usage error (exit status 2).
func usageErrorf(format string, args ...any) error {
	return withExit(exitUsage, fmt.Errorf(format, args...))
}

// exitCode turns an error returned by a subcommand into the process's exit
// status. A command's context is cancelled only by SIGINT or SIGTERM, so an
// error that wraps context.Canceled is an interruption.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitFailure
}
