package main

import (
	"errors"
	"fmt"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/server/worker"
)

// clientFlags names the flag of "referee stream" each client.Options field
// with a value of its own is set by.
var clientFlags = map[string]string{
	"Encoding":    "encoding",
	"JPEGQuality": "jpeg-quality",
	"Protocol":    "protocol",
	"FPS":         "fps",
	"SessionID":   "session-id",
}

// clientSettingHints say how to avoid a client.SettingError of each field
// from the command line.
var clientSettingHints = map[string]string{
	"ResumeTries": "check that the temporary directory is writable, or give --resume-tries 0",
}

// flagHint words an error of a library for the command line: a bad option
// value is told as the flag that set it, and the flag to check is added to
// an error about a setting. Other errors are returned as they are.
func flagHint(err error) error {
	var de *worker.DataDirError
	if errors.As(err, &de) {
		return &hinted{err.Error() + " (check --data-dir and its permissions)", err}
	}
	var se *client.SettingError
	if errors.As(err, &se) {
		if hint, ok := clientSettingHints[se.Field]; ok {
			return &hinted{err.Error() + " (" + hint + ")", err}
		}
	}
	var oe *client.OptionError
	if errors.As(err, &oe) {
		if flag, ok := clientFlags[oe.Field]; ok {
			v := fmt.Sprint(oe.Value)
			if s, ok := oe.Value.(string); ok {
				v = fmt.Sprintf("%q", s)
			}
			return &hinted{fmt.Sprintf("--%s %s: want %s", flag, v, oe.Want), err}
		}
	}
	return err
}

// hinted is an error worded for the command line; it wraps the library's.
type hinted struct {
	msg string
	err error
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }
