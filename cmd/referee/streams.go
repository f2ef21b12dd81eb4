package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// streams are the process's standard streams, passed down so that commands
// can be run against buffers in tests.
type streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// ErrIsTerminal says whether Err is an interactive terminal, where
	// progress bars make sense; otherwise commands write log lines.
	ErrIsTerminal bool
	// OutIsTerminal says whether Out is a terminal, where a person reads
	// a summary; otherwise commands print what scripts parse.
	OutIsTerminal bool
}

func newStreams(in io.Reader, out, errw io.Writer) streams {
	s := streams{In: in, Out: out, Err: errw}
	if f, ok := errw.(*os.File); ok {
		s.ErrIsTerminal = term.IsTerminal(int(f.Fd()))
	}
	if f, ok := out.(*os.File); ok {
		s.OutIsTerminal = term.IsTerminal(int(f.Fd()))
	}
	return s
}
