package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"time"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/protocol"
)

// Defaults of Options.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultKeepAlive = 30 * time.Second
	// DefaultWindow is the v2 window used when the server agrees to v2
	// without naming one.
	DefaultWindow = 32
	// DefaultResumeTries, DefaultResumeTimeout and DefaultResumeBackoff
	// bound the attempts to resume a session after a lost connection.
	DefaultResumeTries   = 5
	DefaultResumeTimeout = 60 * time.Second
	DefaultResumeBackoff = 500 * time.Millisecond
)

// Options say what to stream where. The zero value of a field takes its
// default where one is given.
type Options struct {
	// Server is the server's base URL as ResolveEndpoints reads it.
	Server string
	// Video is the video file to stream, or the URL of a network source
	// OpenCV opens (rtsp://, http(s):// MJPEG). When it is empty, camera
	// number Camera is captured for Duration instead. A live network
	// source (one without a frame count) is captured until Duration
	// (when set) or until it stops; one that stops before Duration ends
	// the session with the frames captured, and a warning.
	Video    string
	Camera   int
	Duration time.Duration
	// Signal is the phrase log file sent after the frames; StdinSignal
	// ("-") reads it from Stdin. For a file it must read as a phrase log
	// before anything is sent; for a live source (a camera, a network
	// stream) the scoring box writes it only when the phrase ends, so only
	// its folder is checked first, and the file is read once the capture
	// has ended, when it has appeared and stopped growing, within
	// SignalWait (default DefaultSignalWait).
	Signal     string
	Stdin      io.Reader
	SignalWait time.Duration
	// SessionID names the session; empty means one generated from the
	// clock, the phrase number of the signal and 64 random bits.
	SessionID string
	// Encoding is protocol.EncodingJPEG (default), EncodingPNG or
	// EncodingRaw; JPEGQuality (1..100, default 85) applies to JPEG.
	Encoding    string
	JPEGQuality int
	// FPS caps the rate frames are sent at (frame n leaves no earlier than
	// n/FPS after the first); 0 sends as fast as the path allows. It is
	// also the session's frame rate for a camera (default 30) and for a
	// file that reports none.
	FPS float64
	// Timeout bounds connecting, each write, and each answer the session
	// waits for (session_started, acks, session_ended, signal_ack,
	// process_start). Processing itself may take longer: then only
	// KeepAlive applies. Default DefaultTimeout.
	Timeout time.Duration
	// KeepAlive is how long the connection may stay silent, not even
	// answering a ping, before it counts as lost. Default DefaultKeepAlive.
	KeepAlive time.Duration
	// Protocol is protocol.V2 (default) or protocol.V1.
	Protocol string
	// Token, when set, is sent as "Authorization: Bearer <Token>" to a
	// server that requires it.
	Token string
	// CAFile is a PEM bundle of the CAs trusted for an https server,
	// instead of the system's roots.
	CAFile string
	// ResumeTries is how many times a lost connection is replaced before
	// the run fails (default DefaultResumeTries; negative: never, the run
	// fails at the first loss). The waits between attempts start at
	// ResumeBackoff (default DefaultResumeBackoff) and double, and one
	// outage may last at most ResumeTimeout (default
	// DefaultResumeTimeout). Every frame sent is kept in a temporary file
	// while the run lasts, so that those the server lacks after a resume
	// can be sent again.
	ResumeTries   int
	ResumeTimeout time.Duration
	ResumeBackoff time.Duration
	// Logger receives the session's log lines; nil discards them.
	Logger *slog.Logger
	// ProgressBar, when set, shows the frames sent as a progress bar there
	// instead of "Progress:" log lines, then the server's processing as a
	// second bar. Info lines would break the bars' line: the caller quiets
	// Logger to warnings.
	ProgressBar io.Writer

	// wrapSource, when set by tests, wraps the opened source's reader to
	// inject faults into it.
	wrapSource func(frameSource) frameSource
}

// Result is what a completed run brings back.
type Result struct {
	SessionID string
	// Protocol is the protocol the session ran with, after any fallback.
	Protocol string
	// Frames is the number of frames sent, FrameBytes their encoded size.
	Frames     int
	FrameBytes int64
	// StreamTime is the time from the first frame sent to the last.
	StreamTime time.Duration
	// Validation is the server's account of the frames at session_end.
	Validation protocol.Validation
	// Raw is the result object of process_complete, exactly as received.
	Raw json.RawMessage
	// Resumes is the number of times the session was resumed on a new
	// connection.
	Resumes int
	// Times are when the session passed its milestones, by this process's
	// clock.
	Times Times
}

// Rate is the rate the frames were sent at, in frames per second and
// megabits per second, as the progress lines count it: 0, 0 when there is
// no interval to measure (one frame).
func (r *Result) Rate() (fps, mbps float64) {
	fps, mbps, _ = rate(r.Frames, r.FrameBytes, r.StreamTime)
	return fps, mbps
}

// Times are the milestones of a session, as the client saw them. After a
// resume, EndSent and Ended are those of the connection that completed.
type Times struct {
	// Started is the receipt of the first session_started (not a resume's).
	Started time.Time
	// EndSent is the sending of session_end.
	EndSent time.Time
	// Ended is the receipt of session_ended: the server holds, and has
	// counted, every frame.
	Ended time.Time
	// Completed is the receipt of process_complete.
	Completed time.Time
}

// Run streams one phrase: it checks the inputs and the server, opens a
// session, sends the frames and the phrase log, waits for processing, and
// returns the result. Errors are *Error, except a cancelled ctx (the
// session is then aborted with reason "interrupted" and the error wraps
// context.Canceled).
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ep, err := ResolveEndpoints(opts.Server)
	if err != nil {
		return nil, &Error{Kind: KindInput, Err: err}
	}
	src, err := openSource(&opts)
	if err != nil {
		return nil, err
	}
	defer src.close()
	if opts.wrapSource != nil {
		src.frames = opts.wrapSource(src.frames)
	}
	// A live capture's phrase log is written when the phrase ends: it is
	// read after the frames (the session sends it last anyway).
	var sig []byte
	n := 0
	if src.live {
		src.frames = watchStop(src.frames, src.name, opts.Duration, log)
		if err := checkSignalDir(opts.Signal); err != nil {
			return nil, err
		}
	} else {
		var phrase *signal.Phrase
		if sig, phrase, err = readSignal(opts.Signal, opts.Stdin); err != nil {
			return nil, err
		}
		if phrase.Phrase != nil {
			n = *phrase.Phrase
		}
	}
	id := opts.SessionID
	if id == "" {
		id = newSessionID(time.Now(), n)
	}
	log = log.With("session_id", id)
	log.Debug("Inputs checked", "source", src.name, "width", src.first.Width, "height", src.first.Height,
		"fps", src.fps, "expected_frames", src.expected, "signal_bytes", len(sig))
	tlsConf, err := loadCA(opts.CAFile)
	if err != nil {
		return nil, err
	}
	l := link{url: ep.Stream, timeout: opts.Timeout, keepAlive: opts.KeepAlive, token: opts.Token, tls: tlsConf}
	var jr *journal
	if opts.ResumeTries >= 0 {
		if jr, err = newJournal(); err != nil {
			return nil, &Error{Kind: KindInput, Err: err}
		}
		defer jr.close()
	}
	if err := checkHealth(ctx, ep.Health, l, log); err != nil {
		return nil, err
	}
	c, err := dial(ctx, l)
	if err != nil {
		return nil, err
	}
	log.Info("Connected to " + ep.Stream)
	s := &session{
		opts:       &opts,
		id:         id,
		log:        log,
		link:       l,
		c:          c,
		jr:         jr,
		src:        src,
		signal:     sig,
		signalName: signalName(opts.Signal),
		timer:      newStoppedTimer(),
	}
	// s.c is the last connection: a resume replaces the first.
	defer func() { s.c.close() }()
	return s.run(ctx)
}

// check fills in the defaults and validates the options.
func (o *Options) check() error {
	if o.Encoding == "" {
		o.Encoding = protocol.EncodingJPEG
	}
	if o.JPEGQuality == 0 {
		o.JPEGQuality = protocol.DefaultJPEGQuality
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.Protocol == "" {
		o.Protocol = protocol.V2
	}
	if o.ResumeTries == 0 {
		o.ResumeTries = DefaultResumeTries
	}
	if o.ResumeTimeout <= 0 {
		o.ResumeTimeout = DefaultResumeTimeout
	}
	if o.ResumeBackoff <= 0 {
		o.ResumeBackoff = DefaultResumeBackoff
	}
	if o.SignalWait <= 0 {
		o.SignalWait = DefaultSignalWait
	}
	return o.Validate()
}

// Validate says whether Run takes the options as they are once Run has
// filled in the defaults (a zero JPEGQuality or an empty Encoding is
// refused here: Run would have replaced it). It opens nothing. A bad value
// is an *Error of KindInput, wrapping an *OptionError when a field's value
// is wrong in itself.
func (o Options) Validate() error {
	bad := func(field, name string, value any, want string) error {
		return &Error{Kind: KindInput, Err: &OptionError{Field: field, Name: name, Value: value, Want: want}}
	}
	switch {
	case !protocol.KnownEncoding(o.Encoding):
		return bad("Encoding", "encoding", o.Encoding, protocol.EncodingChoices())
	case o.JPEGQuality < 1 || o.JPEGQuality > 100:
		return bad("JPEGQuality", "JPEG quality", o.JPEGQuality, "1 to 100")
	case o.Protocol != protocol.V1 && o.Protocol != protocol.V2:
		return bad("Protocol", "protocol", o.Protocol, "v1 or v2")
	case o.FPS < 0 || math.IsNaN(o.FPS) || math.IsInf(o.FPS, 0):
		return bad("FPS", "fps", o.FPS, "0 (as fast as possible) or a positive rate")
	case o.Video == "" && o.Camera < 0:
		return inputErrorf("no video: give a video file or a camera number")
	case o.Video == "" && o.Duration <= 0:
		return inputErrorf("camera %d needs a capture duration", o.Camera)
	case o.Signal == "":
		return inputErrorf("no signal file: give the phrase log to send")
	case o.SessionID != "" && !protocol.ValidSessionID(o.SessionID):
		return bad("SessionID", "session id", o.SessionID, fmt.Sprintf("1 to %d characters of A-Z, a-z, 0-9, _ and -", protocol.MaxSessionIDLength))
	}
	return nil
}

// OptionError is an Options field whose value Run does not take.
type OptionError struct {
	// Field is the name of the Options field, Name how a sentence calls
	// it; Want says what values would do.
	Field, Name string
	Value       any
	Want        string
}

func (e *OptionError) Error() string {
	if s, ok := e.Value.(string); ok {
		return fmt.Sprintf("%s %q: want %s", e.Name, s, e.Want)
	}
	return fmt.Sprintf("%s %v: want %s", e.Name, e.Value, e.Want)
}

// signalName is the file name sent with the signal.
func signalName(path string) string {
	if path == StdinSignal {
		return "stdin.txt"
	}
	return filepath.Base(path)
}

// newSessionID is a default session id: the capture box's
// date_time_phraseNN, then 64 random bits in hex, so that two clients
// started in the same second for the same phrase, or one run twice, never
// share an id, and a result never names another run's artifacts.
func newSessionID(now time.Time, phrase int) string {
	var b [8]byte
	rand.Read(b[:]) // never fails: crypto/rand panics rather than return short
	return protocol.NewSessionID(now, phrase) + "_" + hex.EncodeToString(b[:])
}

func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}
