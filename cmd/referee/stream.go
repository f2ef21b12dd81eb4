package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/referee-project/referee/client"
	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/atomicfile"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

// streamOptions is the resolved configuration of "referee stream". The
// client's flags are bound to the fields of Client; its ResumeTries 0
// means never resume here, as --resume-tries 0 says.
type streamOptions struct {
	Client client.Options
	Output string
	// JSON prints the result JSON on a terminal too, instead of the
	// summary.
	JSON    bool
	Verbose bool

	Logger *slog.Logger
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	// ErrIsTerminal shows progress bars on Err instead of info log lines,
	// unless Verbose; OutIsTerminal prints the summary on Out instead of
	// the result JSON, unless JSON, with or without Output.
	ErrIsTerminal bool
	OutIsTerminal bool
}

func newStreamCmd(a *app) *cobra.Command {
	opts := streamOptions{Client: client.Options{Camera: -1, Timeout: client.DefaultTimeout, SignalWait: client.DefaultSignalWait, ResumeTries: client.DefaultResumeTries, ResumeTimeout: client.DefaultResumeTimeout}}
	cmd := &cobra.Command{
		Use:   "stream SERVER (--video FILE|URL | --camera N --duration S) --signal FILE",
		Short: "Stream a phrase's video and signal to a referee server and print the verdict",
		Long: `Stream one phrase to a referee server: the frames of a video file (or a
live camera), then the scoring box's phrase log, then wait for the server
to rebuild the video and analyse it, and print the result JSON.

SERVER is the server's base URL: http://HOST:PORT, https://HOST/PREFIX, or
just HOST:PORT. The WebSocket endpoint ws(s)://HOST:PORT/stream is derived
from it. An https server's certificate is checked against the system's
roots, or against --ca FILE. A server started with a token needs the same
--token (or REFEREE_TOKEN).

When the connection drops mid-stream (Wi-Fi, a server restart), the client
reconnects up to --resume-tries times, waiting 0.5 s, 1 s, 2 s, ... between
attempts for at most --resume-timeout, resumes the same session and sends
only the frames the server lacks, then the end of the session and the
signal again. Every frame sent is kept in a temporary file until the run
ends for that purpose.

--video also takes the URL of a network source OpenCV opens: an IP
camera's rtsp:// stream or its http(s):// MJPEG stream. A live source (a
camera, a stream without a frame count) is captured for --duration (a URL
without it: until the stream ends); when it stops early, the session ends
with the frames captured and a warning says so.

Before any session is opened, the video must open and its first frame
decode, the signal file must read as a phrase log, and the server's
/health must answer within --timeout. In a live capture the scoring box
writes its phrase log only when the phrase ends: only the signal's folder
must be readable at the start, and the file is read once the capture has
ended, when it has appeared and stopped growing, within --signal-wait.
--signal - reads the phrase log from standard input (for a live capture,
once the capture has ended). Ctrl-C stops the capture, tells the server
the session is aborted, and exits with status 130. When something fails once the
session exists, the server is told why (session_abort) before the client
disconnects.

On a terminal, stdout gets a short summary: the winner, the confidence, the
reason and where the server keeps the artifacts. Otherwise, or with --json,
it gets the result JSON, for scripts; --output FILE also writes the result
JSON there. Logs and progress go to stderr: on a terminal, progress bars
and only the warnings and errors, unless --verbose. Exit status: 0 result received; 1 the server answered with an error,
refused the token, or processing failed; 2 bad local input or usage; 3 the
server can't be reached or the connection was lost and not regained; 130
interrupted (Ctrl-C).`,
		Example: `  # Stream a recorded phrase to a server on the club's network
  referee stream http://192.168.1.20:8080 --video phrase04.avi --signal phrase04.txt

  # Talk to the existing Python service, pace like a live camera, keep the result
  referee stream server:8080 --video phrase04.mp4 --signal phrase04.txt \
      --protocol v1 --fps 30 --output result.json

  # Capture 8 seconds from camera 0; the box writes phrase05.txt when the phrase ends
  referee stream http://server:8080 --camera 0 --duration 8 --signal /box/logs/phrase05.txt

  # Capture 8 seconds from an IP camera's MJPEG stream, the log piped in
  ssh scoring-box cat logs/latest.txt | referee stream http://server:8080 --video http://cam.local/video.mjpg --duration 8 --signal -`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("stream takes one argument, the server URL (e.g. http://server:8080); got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Client.Server = args[0]
			opts.Verbose = a.verbose
			opts.Logger = a.logger
			opts.In, opts.Out, opts.Err = a.streams.In, a.streams.Out, a.streams.Err
			opts.ErrIsTerminal = a.streams.ErrIsTerminal
			opts.OutIsTerminal = a.streams.OutIsTerminal
			return runStream(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Client.Video, "video", "", "video file to stream (anything OpenCV reads: .avi, .mp4, ...), or a network source's URL (rtsp://, http(s):// MJPEG)")
	f.StringVar(&opts.Client.Signal, "signal", "", "the scoring box's phrase log (.txt) sent after the frames, - for standard input (required)")
	f.Var((*streamSeconds)(&opts.Client.SignalWait), "signal-wait", "live capture: how long to wait, once it ends, for the phrase log to appear and stop growing: seconds or a duration")
	f.IntVar(&opts.Client.Camera, "camera", -1, "capture from camera N instead of a file (-1: none); needs --duration")
	f.Var((*streamSeconds)(&opts.Client.Duration), "duration", "how long to capture from the camera or a live --video URL: seconds or a duration (8, 8s, 1m)")
	f.StringVar(&opts.Client.SessionID, "session-id", "", "session id (default: date_time_phraseNN_RANDOM from the clock, the signal's phrase number and 64 random bits)")
	f.StringVar(&opts.Client.Encoding, "encoding", protocol.EncodingJPEG, "frame encoding: "+protocol.EncodingChoices())
	f.IntVar(&opts.Client.JPEGQuality, "jpeg-quality", protocol.DefaultJPEGQuality, "JPEG quality, 1 to 100")
	f.Float64Var(&opts.Client.FPS, "fps", 0, "cap on the frames sent per second, paced like a live camera (0: as fast as possible); also the camera's frame rate (default 30 there)")
	f.BoolVar(&opts.JSON, "json", false, "print the result JSON on a terminal too (without a terminal it always is)")
	f.StringVarP(&opts.Output, "output", "o", "", "also write the result JSON to this file; stdout is unchanged (a regular file is replaced atomically; a device or FIFO is written to; links are followed)")
	f.Var((*streamSeconds)(&opts.Client.Timeout), "timeout", "connect and response timeout: seconds or a duration")
	f.StringVar(&opts.Client.Protocol, "protocol", protocol.V2, "streaming protocol: v2 (windowed, falls back to v1 if the server lacks it) or v1 (one ack per frame, as the existing service's clients)")
	f.StringVar(&opts.Client.Token, "token", "", "the server's shared token, sent as \"Authorization: Bearer TOKEN\" (prefer REFEREE_TOKEN: a flag shows in the process list)")
	f.StringVar(&opts.Client.CAFile, "ca", "", "PEM file of the CA certificates to trust for an https server (default: the system's)")
	f.IntVar(&opts.Client.ResumeTries, "resume-tries", client.DefaultResumeTries, "how many times to reconnect and resume the session after a lost connection (0: never)")
	f.Var((*streamSeconds)(&opts.Client.ResumeTimeout), "resume-timeout", "how long one outage may last before the run fails: seconds or a duration")
	return cmd
}

// runStream checks the options, streams the phrase and writes the result.
func runStream(ctx context.Context, opts streamOptions) error {
	if err := opts.check(); err != nil {
		return err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	copts := opts.Client
	copts.ProgressBar, log = streamReporting(&opts, log)
	copts.Stdin, copts.Logger = opts.In, log
	if copts.ResumeTries == 0 {
		// Never resume: to the client, 0 would mean its default.
		copts.ResumeTries = -1
	}
	res, err := client.Run(ctx, copts)
	if err != nil {
		return streamExit(flagHint(err))
	}
	fps, mbps := res.Rate()
	log.Info(fmt.Sprintf("Streamed %d frames in %.1f s (%.1f FPS, %.1f Mbps) with protocol %s",
		res.Frames, res.StreamTime.Seconds(), fps, mbps, res.Protocol), "session_id", res.SessionID)
	var out bytes.Buffer
	if err := json.Indent(&out, res.Raw, "", "  "); err != nil {
		out.Reset()
		out.Write(res.Raw)
	}
	out.WriteByte('\n')
	// --output adds the file: stdout gets what it would without it, the
	// summary for a person at a terminal, the JSON for a script.
	var outErr error
	if opts.OutIsTerminal && !opts.JSON {
		outErr = writeStreamSummary(opts.Out, res.Raw, out.Bytes())
	} else if _, err := opts.Out.Write(out.Bytes()); err != nil {
		outErr = usageErrorf("write the result to stdout: %w", err)
	}
	if opts.Output == "" {
		return outErr
	}
	if err := atomicfile.WriteFile(opts.Output, out.Bytes(), 0o644); err != nil {
		return usageErrorf("write the result to %s: %w (the result was received; check the directory is writable)", opts.Output, err)
	}
	log.Info("Result written to "+opts.Output, "session_id", res.SessionID)
	return outErr
}

// streamReporting decides how the client reports on stderr: on a
// terminal, unless --verbose, a progress bar to Err, with log quieted to
// warnings and errors, as info lines would break the bar's line and repeat
// what it shows; otherwise no bar and log as it is.
func streamReporting(opts *streamOptions, log *slog.Logger) (bar io.Writer, _ *slog.Logger) {
	if !opts.ErrIsTerminal || opts.Verbose {
		return nil, log
	}
	return opts.Err, slog.New(warningsOnly{log.Handler()})
}

// warningsOnly passes on its handler's records of level Warn and above.
type warningsOnly struct{ h slog.Handler }

func (w warningsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.h.Enabled(ctx, l)
}

func (w warningsOnly) Handle(ctx context.Context, r slog.Record) error { return w.h.Handle(ctx, r) }

func (w warningsOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warningsOnly{w.h.WithAttrs(attrs)}
}

func (w warningsOnly) WithGroup(name string) slog.Handler { return warningsOnly{w.h.WithGroup(name)} }

// writeStreamSummary prints analyze's summary of the result raw, or the
// result JSON indented when raw is not a result this client knows (an
// older service's).
func writeStreamSummary(w io.Writer, raw json.RawMessage, indented []byte) error {
	var res pipeline.Result
	if err := json.Unmarshal(raw, &res); err != nil || res.Winner == "" {
		_, err := w.Write(indented)
		return err
	}
	return writeAnalyzeSummary(w, &res)
}

// check validates the flags: every mistake is a usage error (exit 2) found
// before anything is opened. The client validates what it takes
// (client.Options.Validate); the rest is the command line's own.
func (o *streamOptions) check() error {
	c := &o.Client
	switch {
	case c.Video != "" && c.Camera >= 0:
		return usageErrorf("give --video FILE or --camera N, not both")
	case c.Video == "" && c.Camera < 0:
		return usageErrorf("nothing to stream: give --video FILE (or --camera N with --duration S)")
	case c.Camera < -1:
		return usageErrorf("--camera %d: want a camera index, 0 or more (-1: none)", c.Camera)
	case c.Camera >= 0 && c.Duration <= 0:
		return usageErrorf("--camera %d needs --duration S: how many seconds to capture", c.Camera)
	case c.Camera < 0 && c.Duration != 0 && !videoio.IsURL(c.Video):
		return usageErrorf("--duration applies to --camera and --video URL only; a video file streams whole")
	case c.Duration < 0:
		return usageErrorf("--duration %v: want a positive duration", c.Duration)
	case c.SignalWait <= 0:
		return usageErrorf("--signal-wait %v: want a positive duration", c.SignalWait)
	case c.Signal == "":
		return usageErrorf("--signal FILE is required: the scoring box's phrase log for this phrase")
	}
	if err := c.Validate(); err != nil {
		return withExit(exitUsage, flagHint(err))
	}
	switch {
	case c.Timeout <= 0:
		return usageErrorf("--timeout %v: want a positive duration", c.Timeout)
	case c.ResumeTries < 0:
		return usageErrorf("--resume-tries %d: want 0 (never resume) or more", c.ResumeTries)
	case c.ResumeTimeout <= 0:
		return usageErrorf("--resume-timeout %v: want a positive duration", c.ResumeTimeout)
	}
	if _, err := client.ResolveEndpoints(c.Server); err != nil {
		return withExit(exitUsage, err)
	}
	if o.Output != "" {
		dir := filepath.Dir(o.Output)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return usageErrorf("--output %s: directory %s does not exist", o.Output, dir)
		}
	}
	return nil
}

// streamExit gives a client error its exit status.
func streamExit(err error) error {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Kind {
	case client.KindInput:
		return withExit(exitUsage, err)
	case client.KindConnection:
		return withExit(exitUnavailable, err)
	}
	return withExit(exitFailure, err)
}

// streamSeconds is a duration flag that also takes a plain number of
// seconds, as "--duration 8" is typed.
type streamSeconds time.Duration

func (d *streamSeconds) String() string { return time.Duration(*d).String() }

func (d *streamSeconds) Set(s string) error {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			return fmt.Errorf("%q: want seconds or a duration like 8s", s)
		}
		*d = streamSeconds(f * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want seconds or a duration like 8s", s)
	}
	*d = streamSeconds(v)
	return nil
}

// Type is "duration" so that the configuration resolver treats plain
// numbers from the environment as seconds too.
func (d *streamSeconds) Type() string { return "duration" }
