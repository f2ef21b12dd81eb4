package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/referee-project/referee/pipeline/bgr"
)

// StdinSignal as Options.Signal reads the phrase log from Options.Stdin.
const StdinSignal = "-"

// DefaultSignalWait is how long a live capture waits, once it ends, for the
// scoring box's phrase log to appear and stop growing.
const DefaultSignalWait = 30 * time.Second

// signalSettle is how long the phrase log must keep its size and time
// before it counts as written: the box writes it in a few small writes.
const signalSettle = 500 * time.Millisecond

// signalPoll is how often the phrase log is looked at while waiting.
const signalPoll = 100 * time.Millisecond

// stopWatch wraps a live source's frames and says when the source stops
// before the capture's duration is over (a camera unplugged, a network
// stream that ends): the session then ends with the frames captured, and
// the log says so. Only the encoder's reader goroutine calls Read.
type stopWatch struct {
	frameSource
	name  string
	log   *slog.Logger
	want  time.Duration
	start time.Time
	// frames counts the frames read, the preflight's first included.
	frames int
	done   bool
}

func watchStop(src frameSource, name string, want time.Duration, log *slog.Logger) *stopWatch {
	return &stopWatch{frameSource: src, name: name, want: want, log: log, frames: 1}
}

func (w *stopWatch) Read(dst *bgr.Image) error {
	if w.start.IsZero() {
		w.start = time.Now()
	}
	err := w.frameSource.Read(dst)
	switch {
	case err == nil:
		w.frames++
	case errors.Is(err, io.EOF) && !w.done:
		w.done = true
		got := time.Since(w.start).Seconds()
		if w.want > 0 {
			w.log.Warn(fmt.Sprintf("The %s stopped after %d frames (%.1f s of the %s asked): the session ends with what was captured", w.name, w.frames, got, w.want),
				"frames", w.frames)
		} else {
			w.log.Info(fmt.Sprintf("The %s ended after %d frames (%.1f s)", w.name, w.frames, got), "frames", w.frames)
		}
	}
	return err
}

// checkSignalDir is the live capture's check of --signal: the scoring box
// writes its log only when the phrase ends, so all that can be checked
// before is that the folder it goes to is there and readable.
func checkSignalDir(path string) error {
	if path == StdinSignal {
		return nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return inputErrorf("Signal file %s is a directory (give the phrase log .txt the scoring box will write)", path)
	}
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err == nil {
		_, err = d.Readdirnames(1)
		d.Close()
		if errors.Is(err, io.EOF) {
			err = nil // empty, and readable
		}
	}
	if err != nil {
		return &Error{Kind: KindInput, Err: withCause(err, "Cannot read the folder of the signal file %s: %v (the scoring box writes its phrase log there when the phrase ends; check that the folder exists and is readable)", path, err)}
	}
	return nil
}

// awaitSignal reads the phrase log once a live capture has ended: from
// stdin, or the file once it exists, is not empty and has kept its size and
// time for signalSettle, within wait.
func awaitSignal(ctx context.Context, path string, stdin io.Reader, wait time.Duration, log *slog.Logger) ([]byte, error) {
	if path == StdinSignal {
		log.Info("Capture ended; reading the phrase log from standard input")
		data, _, err := readSignal(path, stdin)
		return data, err
	}
	log.Info("Capture ended; waiting for the scoring box's phrase log", "file", path, "timeout", wait.String())
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(signalPoll)
	defer tick.Stop()
	var last fs.FileInfo
	var since time.Time
	for {
		st, err := os.Stat(path)
		switch {
		case err == nil && st.IsDir():
			return nil, inputErrorf("Signal file %s is a directory (give the phrase log .txt the scoring box writes)", path)
		case err == nil && st.Size() > 0:
			if last == nil || st.Size() != last.Size() || !st.ModTime().Equal(last.ModTime()) {
				last, since = st, time.Now()
			} else if time.Since(since) >= signalSettle {
				data, _, err := readSignal(path, nil)
				return data, err
			}
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, &Error{Kind: KindInput, Err: withCause(err, "Cannot read signal file %s: %v (check its permissions)", path, err)}
		}
		if time.Now().After(deadline) {
			if last == nil {
				return nil, &Error{Kind: KindInput, Err: withCause(fs.ErrNotExist, "Signal file %s did not appear within %s of the end of the capture (check that the scoring box writes its phrase log there, or raise --signal-wait)", path, wait)}
			}
			return nil, inputErrorf("Signal file %s was still being written %s after the end of the capture (check the scoring box, or raise --signal-wait)", path, wait)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted while waiting for the signal file %s: %w", path, context.Cause(ctx))
		}
	}
}
