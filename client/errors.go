package client

import (
	"errors"
	"fmt"

	"github.com/referee-project/referee/protocol"
)

// Kind says which side a failure belongs to, so that a caller can tell a bad
// file from a refusing server from a network that is down.
type Kind int

const (
	// KindServer: the server answered with an error message (a refused
	// session, a failed processing, a protocol violation on our side).
	KindServer Kind = iota + 1
	// KindInput: a local input is unusable: the video, the camera, the
	// phrase log, the options.
	KindInput
	// KindConnection: the server cannot be reached, did not answer in
	// time, or the connection was lost or closed by the server.
	KindConnection
)

// String returns the kind's name as used in logs.
func (k Kind) String() string {
	switch k {
	case KindServer:
		return "server"
	case KindInput:
		return "input"
	case KindConnection:
		return "connection"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is the error of every failed Run: Err says what happened and what to
// check, in one line; Kind says whose fault it is.
type Error struct {
	Kind Kind
	Err  error
	// resumable marks a lost connection that a new one may make good: the
	// link dropped, the server went away or stopped answering. A refusal,
	// a close for a reason of the server's, or our own close is not.
	resumable bool
}

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// ServerError is an "error" message the server answered with. It is wrapped
// in an *Error of KindServer; errors.As finds it to read the code.
type ServerError struct {
	Code    protocol.ErrorCode
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// SettingError is a failure that another value of the Options field Field
// avoids (no resume journal without a writable temporary directory: with
// ResumeTries negative, none is needed). It is wrapped in an *Error; the
// caller that set the field says how to change it.
type SettingError struct {
	Field string
	Err   error
}

func (e *SettingError) Error() string { return e.Err.Error() }

func (e *SettingError) Unwrap() error { return e.Err }

func inputErrorf(format string, args ...any) error {
	return &Error{Kind: KindInput, Err: fmt.Errorf(format, args...)}
}

func connErrorf(format string, args ...any) error {
	return &Error{Kind: KindConnection, Err: fmt.Errorf(format, args...)}
}

func serverErrorf(format string, args ...any) error {
	return &Error{Kind: KindServer, Err: fmt.Errorf(format, args...)}
}

// lostf is a connection failure that a resume may repair.
func lostf(cause error, format string, args ...any) error {
	return &Error{Kind: KindConnection, Err: withCause(cause, format, args...), resumable: true}
}

// isResumable reports whether err is a lost connection worth resuming.
func isResumable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.resumable
}
