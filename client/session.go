package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// session runs one streaming session over one connection. Only its own
// goroutine (the one calling run) touches its fields.
type session struct {
	opts       *Options
	id         string
	log        *slog.Logger
	link       link
	c          *conn
	src        *source
	signal     []byte
	signalName string
	// timer bounds each wait for an answer; it is stopped between waits.
	timer *time.Timer

	// startSent: the server may hold a session, so a failure must abort it.
	startSent bool
	// over: the server has ended the session (result or error); nothing to
	// abort any more.
	over bool

	proto  string
	window int
	prog   *progress

	// enc yields the source's frames once, across every connection; eof
	// says it has yielded the last.
	enc *encoder
	eof bool
	// sent is the number of frames taken from enc: frames 0..sent-1 have
	// gone out at least once, and are kept in jr for a resume.
	sent      int
	paceStart time.Time
	jr        *journal
	// resend lists the frames to send again on this connection, before
	// new ones: those the server lacked when the session was resumed.
	resend []int
	// connSent counts the frame messages sent on this connection,
	// connAcked those acknowledged (v1: frame_acks; v2: the last
	// frames_ack's through, which counts from 0 on each connection).
	connSent  int
	connAcked int
	// outage is the loss of connection being repaired, nil while a
	// connection works; resumes counts the sessions resumed.
	outage  *outage
	resumes int
	// times are the milestones so far, for the Result.
	times Times
}

// outage is one loss of connection and the attempts to resume after it.
type outage struct {
	start time.Time
	tries int
	cause error
}

// maxBackoff caps the wait between two attempts to reconnect.
const maxBackoff = 8 * time.Second

// run does the session and, when it fails while the server may still hold
// the session, tells the server why with session_abort. A lost connection
// is resumed on a new one, within the retry budget of the options.
func (s *session) run(ctx context.Context) (*Result, error) {
	defer func() {
		if s.enc != nil {
			s.enc.stop()
		}
		if s.prog != nil {
			s.prog.done()
		}
	}()
	for {
		res, err := s.attempt(ctx)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil || !isResumable(err) || s.opts.ResumeTries < 0 {
			s.abort(err)
			return nil, err
		}
		if s.outage == nil {
			s.outage = &outage{start: time.Now()}
		}
		s.outage.cause = err
		if err := s.reconnect(ctx); err != nil {
			s.abort(err)
			return nil, err
		}
	}
}

// reconnect replaces the lost connection with a new one, waiting before
// each attempt (ResumeBackoff, doubling, at most maxBackoff) until one
// succeeds or the outage's tries or time are used up.
func (s *session) reconnect(ctx context.Context) error {
	o := s.outage
	s.c.close()
	for {
		wait := min(s.opts.ResumeBackoff<<min(o.tries, 16), maxBackoff)
		if o.tries >= s.opts.ResumeTries || time.Since(o.start)+wait > s.opts.ResumeTimeout {
			return &Error{Kind: KindConnection, Err: withCause(o.cause,
				"Connection lost and not regained: %d attempts to resume session %s in %s failed (at most %d within --resume-timeout %s); the last: %v",
				o.tries, s.id, time.Since(o.start).Round(time.Millisecond), s.opts.ResumeTries, s.opts.ResumeTimeout, o.cause)}
		}
		o.tries++
		s.log.Warn(fmt.Sprintf("Connection lost; resuming the session in %s (attempt %d of %d)", wait, o.tries, s.opts.ResumeTries),
			"frames_sent", s.sent, "error", o.cause.Error())
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("interrupted while resuming after %d frames: %w", s.sent, context.Cause(ctx))
		}
		c, err := dial(ctx, s.link)
		if err == nil {
			s.c = c
			s.log.Info("Reconnected to "+s.link.url, "attempt", o.tries)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while resuming after %d frames: %w", s.sent, context.Cause(ctx))
		}
		var e *Error
		if errors.As(err, &e) && e.Kind != KindConnection {
			return err // a refused token: trying again changes nothing
		}
		o.cause = err
	}
}

// attempt runs the session over the current connection: from session_start
// (a resume after the first) to the result.
func (s *session) attempt(ctx context.Context) (*Result, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	if err := s.sendFrames(ctx); err != nil {
		return nil, err
	}
	s.prog.done()
	if err := s.c.sendMessage(ctx, protocol.SessionEnd{SessionID: s.id, TotalFrames: s.sent}); err != nil {
		return nil, s.sendError(ctx, err)
	}
	s.times.EndSent = time.Now()
	fps, mbps := s.prog.rate()
	s.log.Info(fmt.Sprintf("Sent session end (%d frames)", s.sent), "fps", round1(fps), "mbps", round1(mbps))
	m, err := s.await(ctx, s.opts.Timeout, protocol.TypeSessionEnded)
	if err != nil {
		return nil, err
	}
	s.times.Ended = time.Now()
	v := m.(protocol.SessionEnded).Validation
	s.log.Info("Session ended successfully", "valid", v.Valid, "frame_count", v.FrameCount,
		"missing", v.MissingFrames, "duplicates", v.DuplicateFrames, "out_of_order", v.OutOfOrderFrames)
	for _, issue := range v.Issues {
		// The Python service reports "No signal data received" on every
		// healthy run: it validates before the signal is sent. Issues are
		// for the reader, not a reason to stop.
		s.log.Info("Server validation: "+issue, "valid", v.Valid)
	}
	if v.FrameCount != s.sent {
		s.log.Warn(fmt.Sprintf("The server counted %d frames, %d were sent", v.FrameCount, s.sent))
	}
	if err := s.sendSignal(ctx); err != nil {
		return nil, err
	}
	raw, err := s.process(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{
		SessionID:  s.id,
		Protocol:   s.proto,
		Frames:     s.sent,
		FrameBytes: s.prog.bytes,
		StreamTime: s.prog.elapsed(),
		Validation: v,
		Raw:        raw,
		Resumes:    s.resumes,
		Times:      s.times,
	}, nil
}

// start opens the session and settles the protocol; after the first
// session_start it asks to resume the session and lists the frames the
// server lacks for sendFrames.
func (s *session) start(ctx context.Context) error {
	first := s.src.first
	resume := s.startSent
	msg := protocol.SessionStart{
		SessionID:      s.id,
		FPS:            s.src.fps,
		Width:          first.Width,
		Height:         first.Height,
		ExpectedFrames: s.src.expected,
		VideoFormat:    protocol.DefaultVideoFormat,
		Resume:         resume,
	}
	if resume {
		// Only a run that keeps a journal ever resumes.
		msg.ResumeToken = s.jr.token
	}
	if s.opts.Protocol == protocol.V2 {
		// A v1 request carries no protocol field at all, exactly what the
		// existing service's clients send.
		msg.Protocol = protocol.V2
	}
	if err := s.c.sendMessage(ctx, msg); err != nil {
		return s.sendError(ctx, err)
	}
	s.startSent = true
	s.log.Info("Sent session start", "fps", msg.FPS, "width", msg.Width, "height", msg.Height,
		"expected_frames", msg.ExpectedFrames, "protocol", s.opts.Protocol, "resume", resume)
	m, err := s.await(ctx, s.opts.Timeout, protocol.TypeSessionStarted)
	if err != nil {
		return err
	}
	started := m.(protocol.SessionStarted)
	if !started.Resume && s.jr != nil {
		// A new session, the first or one the server no longer held:
		// a later resume must show its token.
		s.jr.token = started.ResumeToken
	}
	if started.SessionID != "" && started.SessionID != s.id {
		s.log.Warn("The server renamed the session", "server_session", started.SessionID)
		s.id = started.SessionID
		s.log = s.log.With("session_id", s.id)
	}
	proto, window := protocol.V1, 0
	switch {
	case s.opts.Protocol == protocol.V1:
	case started.Protocol == protocol.V2:
		proto, window = protocol.V2, started.Window
		if window <= 0 {
			window = DefaultWindow
		}
	case started.Protocol == "" || started.Protocol == protocol.V1:
		if s.proto == "" {
			s.log.Info("The server answered without protocol v2: falling back to v1 (one frame_ack per frame)")
		}
	default:
		return serverErrorf("the server chose protocol %q, which this client does not speak (check the server's version)", started.Protocol)
	}
	if s.proto != "" && proto != s.proto {
		// The frames kept for resending are encoded for the first.
		return serverErrorf("the server resumed session %s with protocol %s, it was started with %s (check the server's version)", s.id, proto, s.proto)
	}
	s.proto, s.window = proto, window
	s.connSent, s.connAcked = 0, 0
	s.outage = nil
	if resume {
		s.resumes++
		s.resend = s.resend[:0]
		for n := range s.sent {
			if !started.Resume || !protocol.RangesContain(started.Have, n) {
				s.resend = append(s.resend, n)
			}
		}
		s.log.Info("Session resumed", "server_had_it", started.Resume, "have", fmt.Sprint(started.Have),
			"frames_sent", s.sent, "to_resend", len(s.resend), "protocol", s.proto)
	} else {
		s.times.Started = time.Now()
		if s.proto == protocol.V2 {
			s.log.Info("Session started successfully", "protocol", s.proto, "window", s.window)
		} else {
			s.log.Info("Session started successfully", "protocol", s.proto)
		}
	}
	if s.enc == nil {
		s.prog = newProgress(s.log, s.opts.ProgressBar, s.src.expected)
		s.enc = startEncoder(ctx, s.src.frames, s.src.first, encodeConfig{
			encoding: s.opts.Encoding,
			quality:  s.opts.JPEGQuality,
			v2:       s.proto == protocol.V2,
			fps:      s.src.fps,
			live:     s.src.live,
			start:    time.Now(),
			maxTime:  s.opts.Duration,
			workers:  workersFor(s.opts.Encoding),
		})
	}
	return nil
}

// sendFrames sends the frames the server lacks from an earlier connection,
// then every new frame of the source: v1 one acknowledged frame at a time,
// v2 with up to window frames unacknowledged.
func (s *session) sendFrames(ctx context.Context) error {
	v2 := s.proto == protocol.V2
	limit, ackName := 1, protocol.TypeFrameAck
	if v2 {
		limit, ackName = s.window, protocol.TypeFramesAck
	}
	pace := newStoppedTimer()
	defer pace.Stop()
	defer s.timer.Stop()
	timerArmed := false
	for {
		inflight := s.connSent - s.connAcked
		done := s.eof && len(s.resend) == 0
		if done && (v2 || inflight == 0) {
			return nil
		}
		blocked := inflight >= limit
		if !blocked && len(s.resend) > 0 {
			f, err := s.jr.frame(s.resend[0])
			if err != nil {
				return &Error{Kind: KindInput, Err: withCause(err, "Cannot resend a frame the server lacks: %v", err)}
			}
			if err := s.sendFrame(ctx, f); err != nil {
				return err
			}
			s.resend = s.resend[1:]
			continue
		}
		var next <-chan encodedFrame
		var paceC <-chan time.Time
		if !s.eof && !blocked && len(s.resend) == 0 {
			next = s.enc.frames()
			if s.opts.FPS > 0 && s.sent > 0 {
				due := s.paceStart.Add(time.Duration(float64(s.sent) / s.opts.FPS * float64(time.Second)))
				if wait := time.Until(due); wait > 0 {
					next = nil
					pace.Reset(wait)
					paceC = pace.C
				}
			}
		}
		// An answer is due while the window is full, or when the last v1
		// frame awaits its ack.
		if waiting := blocked || done; waiting != timerArmed {
			if waiting {
				s.timer.Reset(s.opts.Timeout)
			} else {
				s.timer.Stop()
			}
			timerArmed = waiting
		}
		select {
		case f, ok := <-next:
			if !ok {
				if ctx.Err() != nil {
					// The encoder stopped because ctx ended, not at the
					// end of the video.
					return fmt.Errorf("interrupted after %d frames: %w", s.sent, context.Cause(ctx))
				}
				s.eof = true
				continue
			}
			if f.err != nil {
				return &Error{Kind: KindInput, Err: withCause(f.err, "%v (%s); check the source with referee probe-video", f.err, s.src.name)}
			}
			if err := s.sendNew(ctx, f); err != nil {
				return err
			}
		case in := <-s.c.in:
			before := s.connAcked
			if err := s.handle(in); err != nil {
				return err
			}
			if s.connAcked != before && timerArmed {
				// Progress: the next wait gets a full timeout again.
				s.timer.Stop()
				timerArmed = false
			}
		case <-paceC:
		case <-s.timer.C:
			return lostf(nil, "Connection timeout: no %s from the server within %s with %d frames unacknowledged (check the server's log and the network)", ackName, s.opts.Timeout, inflight)
		case <-s.c.dead:
			if len(s.c.in) > 0 {
				continue // what the server said before it closed comes first
			}
			return s.c.err
		case <-ctx.Done():
			return fmt.Errorf("interrupted after %d frames: %w", s.sent, context.Cause(ctx))
		}
	}
}

// sendNew sends a frame the encoder yielded, keeping a copy first: once
// taken from the encoder, only the journal can give it again.
func (s *session) sendNew(ctx context.Context, f encodedFrame) error {
	if s.jr != nil {
		if err := s.jr.add(f); err != nil {
			return &Error{Kind: KindInput, Err: err}
		}
	}
	if s.sent == 0 {
		s.paceStart = time.Now()
	}
	s.sent++
	s.prog.frameSent(f.size)
	return s.sendFrame(ctx, f)
}

func (s *session) sendFrame(ctx context.Context, f encodedFrame) error {
	if s.proto == protocol.V1 {
		hdr := protocol.Frame{
			SessionID:   s.id,
			FrameNumber: f.number,
			Timestamp:   float64(f.captured.UnixMicro()) / 1e6,
			Encoding:    s.opts.Encoding,
			Size:        len(f.data),
		}
		if s.opts.Encoding == protocol.EncodingJPEG {
			hdr.Quality = s.opts.JPEGQuality
		}
		if err := s.c.sendMessage(ctx, hdr); err != nil {
			return s.sendError(ctx, err)
		}
	}
	if err := s.c.send(ctx, websocket.BinaryMessage, f.data); err != nil {
		return s.sendError(ctx, err)
	}
	s.connSent++
	return nil
}

// sendError turns a failed send into the run's error: the caller's
// cancellation, or what the connection died of.
func (s *session) sendError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %d frames: %w", s.sent, context.Cause(ctx))
	}
	return err
}

func (s *session) sendSignal(ctx context.Context) error {
	if s.signal == nil {
		sig, err := awaitSignal(ctx, s.opts.Signal, s.opts.Stdin, s.opts.SignalWait, s.log)
		if err != nil {
			return err
		}
		s.signal = sig
	}
	hdr := protocol.Signal{SessionID: s.id, Filename: s.signalName, Size: len(s.signal)}
	if err := s.c.sendMessage(ctx, hdr); err != nil {
		return s.sendError(ctx, err)
	}
	if err := s.c.send(ctx, websocket.BinaryMessage, s.signal); err != nil {
		return s.sendError(ctx, err)
	}
	s.log.Info(fmt.Sprintf("Sent signal data (%d bytes)", len(s.signal)), "file", s.signalName)
	m, err := s.await(ctx, s.opts.Timeout, protocol.TypeSignalAck)
	if err != nil {
		return err
	}
	s.log.Debug("Signal acknowledged", "status", m.(protocol.SignalAck).Status)
	return nil
}

// process waits for the processing to finish and returns its result. The
// first processing message must come within the timeout; after it,
// processing may take as long as it needs while the connection lives.
func (s *session) process(ctx context.Context) (json.RawMessage, error) {
	timeout := s.opts.Timeout
	logged := map[string]int{}
	for {
		m, err := s.await(ctx, timeout, protocol.TypeProcessStart, protocol.TypeProcessProgress, protocol.TypeProcessComplete)
		if err != nil {
			return nil, err
		}
		timeout = 0
		switch m := m.(type) {
		case protocol.ProcessStart:
			s.log.Debug("Processing started")
		case protocol.ProcessProgress:
			// A stage's first report, every tenth and its end: a server
			// reporting per frame must not flood the log.
			pct := int(100*m.Progress + 0.5)
			s.prog.processing(m.Stage, pct)
			last, seen := logged[m.Stage]
			if !seen || pct >= last+10 || (pct >= 100 && last < 100) {
				logged[m.Stage] = pct
				s.log.Info(fmt.Sprintf("Processing: %s (%d%%)", m.Stage, pct), "message", m.Message)
			}
		case protocol.ProcessComplete:
			s.over = true
			if len(m.Result) == 0 {
				s.log.Warn("The server completed processing without a result object")
				m.Result = json.RawMessage("null")
			}
			s.times.Completed = time.Now()
			s.prog.processed()
			s.log.Info("Processing complete!")
			return m.Result, nil
		}
	}
}

// await returns the next message of one of the types wanted. Messages that
// may come at any time are dealt with on the way (acks, pongs, recoverable
// errors); a fatal error message fails the wait. With timeout > 0 the wait
// fails when nothing wanted arrives in time.
func (s *session) await(ctx context.Context, timeout time.Duration, types ...string) (protocol.Message, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		s.timer.Reset(timeout)
		defer s.timer.Stop()
		deadline = s.timer.C
	}
	for {
		select {
		case in := <-s.c.in:
			if in.err == nil {
				for _, t := range types {
					if in.msg.MessageType() == t {
						return in.msg, nil
					}
				}
			}
			if err := s.handle(in); err != nil {
				return nil, err
			}
		case <-deadline:
			return nil, lostf(nil, "Connection timeout: no %s from the server within %s (check the server's log, or raise --timeout)", types[0], timeout)
		case <-s.c.dead:
			// The read pump delivers every message before it reports the
			// connection dead, so a result followed by the server's close
			// frame is still read.
			if len(s.c.in) > 0 {
				continue
			}
			return nil, s.c.err
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted after %d frames: %w", s.sent, context.Cause(ctx))
		}
	}
}

// handle deals with a message nobody is waiting for.
func (s *session) handle(in incoming) error {
	if in.err != nil {
		var de *protocol.DecodeError
		if errors.As(in.err, &de) && de.Code == protocol.CodeUnknownMessageType {
			s.log.Debug("Ignoring a message of unknown type", "type", de.Type)
			return nil
		}
		if de != nil {
			return serverErrorf("the server sent a malformed message: %v (check the server's version)", in.err)
		}
		s.log.Warn("Ignoring a message", "error", in.err)
		return nil
	}
	switch m := in.msg.(type) {
	case protocol.Error:
		if m.Recoverable {
			s.log.Warn("The server reported a recoverable error", "code", m.ErrorCode, "message", m.ErrorMessage)
			return nil
		}
		s.over = true
		return s.serverFailure(m)
	case protocol.FrameAck:
		if s.proto != protocol.V1 {
			return nil
		}
		s.connAcked++
		switch m.Status {
		case protocol.AckError:
			s.log.Warn("The server could not store a frame", "frame", m.FrameNumber)
		case protocol.AckDuplicate:
			s.log.Warn("The server saw a frame twice", "frame", m.FrameNumber)
		}
	case protocol.FramesAck:
		if s.proto != protocol.V2 {
			return nil
		}
		switch {
		case m.Through > s.connSent:
			return serverErrorf("the server acknowledged %d frames but only %d were sent on this connection (check the server's version)", m.Through, s.connSent)
		case m.Through > s.connAcked:
			s.connAcked = m.Through
		}
	case protocol.Pong:
	default:
		s.log.Debug("Ignoring an unexpected message", "type", in.msg.MessageType())
	}
	return nil
}

// serverFailure is the run's error for an error message from the server:
// what it said, and what to check.
func (s *session) serverFailure(m protocol.Error) error {
	var what, check string
	switch {
	case !s.startSent || s.proto == "":
		what = "The server refused the session"
	case m.ErrorCode == protocol.CodeProcessingFailed:
		what = "Processing failed on the server"
	default:
		what = fmt.Sprintf("The server ended the session after %d frames", s.sent)
	}
	switch m.ErrorCode {
	case protocol.CodeSessionStartFailed:
		check = "check the server's session and memory limits, or give another --session-id"
	case protocol.CodeStreamingDisabled:
		check = "streaming is disabled on that server"
	case protocol.CodeLimitExceeded:
		check = "check the server's size limits, or lower --jpeg-quality"
	default:
		check = "check the server's log for session " + s.id
	}
	se := &ServerError{Code: m.ErrorCode, Message: m.ErrorMessage}
	return &Error{Kind: KindServer, Err: withCause(se, "%s: %s (%s)", what, se, check)}
}

// abort tells the server why the session ends early, once, when the server
// may still hold it and the connection still works. The server then logs
// the reason instead of a bare "0 frames".
func (s *session) abort(cause error) {
	if !s.startSent || s.over || s.c.lost() != nil {
		return
	}
	reason := cause.Error()
	if errors.Is(cause, context.Canceled) {
		reason = "interrupted"
	}
	if err := s.c.sendNow(protocol.SessionAbort{SessionID: s.id, Reason: reason}); err != nil {
		s.log.Warn("Could not send session abort", "reason", reason, "error", err)
		return
	}
	s.log.Info("Sent session abort", "reason", reason)
}

func round1(f float64) float64 {
	return float64(int64(f*10+0.5)) / 10
}
