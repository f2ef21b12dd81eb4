package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/protocol"
)

// Bounds of a session_start beyond which a client is surely wrong: no
// camera films fencing below 1 or above 240 frames per second, and no
// picture side is over 8192 pixels (MaxFramePixels bounds the area).
const (
	minFPS       = 1
	maxFPS       = 240
	maxDimension = 8192
)

// announcement is a v1 frame or signal message whose binary payload is the
// next message.
type announcement struct {
	frame  *protocol.Frame
	signal *protocol.Signal
}

func (a *announcement) String() string {
	if a.frame != nil {
		return fmt.Sprintf("the binary payload of frame %d (%d bytes)", a.frame.FrameNumber, a.frame.Size)
	}
	return fmt.Sprintf("the binary payload of the signal (%d bytes)", a.signal.Size)
}

// handle handles one message of the given kind. It returns an error only
// when reading the message failed, which ends the connection; protocol
// errors are answered (and, when fatal, close the connection) instead.
func (c *conn) handle(kind int, r io.Reader) error {
	if c.sess != nil && !c.sess.attachedTo(c) {
		c.setSession(nil) // finished (processed, aborted, reaped) or resumed elsewhere
	}
	err := c.dispatch(kind, r)
	var me *memoryError
	if errors.As(err, &me) {
		c.fail(protocol.CodeLimitExceeded, me.Error())
		err = nil
	}
	c.shrinkBuffer()
	return err
}

// dispatch reads and handles one message.
func (c *conn) dispatch(kind int, r io.Reader) error {
	if p := c.pending; p != nil {
		c.pending = nil
		if kind != websocket.BinaryMessage {
			return c.unexpectedText(r, "expected "+p.String())
		}
		if p.frame != nil {
			return c.onFramePayload(*p.frame, r)
		}
		return c.onSignalPayload(*p.signal, r)
	}
	if kind == websocket.BinaryMessage {
		return c.onBinary(r)
	}
	return c.onText(r)
}

// sizeOf returns the size of a message of which data has been read.
func sizeOf(data []byte, r io.Reader) (int64, error) {
	rest, err := io.Copy(io.Discard, r)
	return int64(len(data)) + rest, err
}

func (c *conn) unexpectedText(r io.Reader, expected string) error {
	data, err := c.readAll(r, c.srv.cfg.MaxMessageBytes)
	if err != nil {
		return err
	}
	got := "a text message"
	var env struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &env) == nil && env.Type != "" {
		got = fmt.Sprintf("a text message (type %q)", clip(env.Type))
	}
	c.fail(protocol.CodeProtocolError, expected+", got "+got)
	return nil
}

func (c *conn) onText(r io.Reader) error {
	limit := c.srv.cfg.MaxMessageBytes
	data, err := c.readAll(r, limit)
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		c.fail(protocol.CodeLimitExceeded, fmt.Sprintf("text message over the %d-byte limit for control messages", limit))
		return nil
	}
	m, err := protocol.Decode(data)
	if err != nil {
		var de *protocol.DecodeError
		if errors.As(err, &de) && de.Code == protocol.CodeUnknownMessageType {
			c.sendError(c.sess, protocol.CodeUnknownMessageType, fmt.Sprintf("unknown message type %q, ignored", clip(de.Type)), true)
			return nil
		}
		c.fail(protocol.CodeInvalidMessage, err.Error())
		return nil
	}
	switch m := m.(type) {
	case protocol.SessionStart:
		c.onStart(m)
	case protocol.Frame:
		c.onFrame(m)
	case protocol.SessionEnd:
		c.onEnd(m)
	case protocol.Signal:
		c.onSignal(m)
	case protocol.SessionAbort:
		c.onAbort(m)
	case protocol.Ping:
		c.send(protocol.Pong{})
	default:
		c.sendError(c.sess, protocol.CodeUnknownMessageType, fmt.Sprintf("%s is a message the server sends, not one it accepts; ignored", m.MessageType()), true)
	}
	return nil
}

// maxReason bounds the length of a client's abort reason in the logs.
const maxReason = 512

// clip shortens a client's string for quoting in a message or a log.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return trimTo(s, n) + "..."
}

// checkStart returns why a session_start cannot start a session, naming
// the field, or "". maxPixels is Config.MaxFramePixels.
func checkStart(m protocol.SessionStart, maxPixels int64) string {
	const unreadable = " (0 is what OpenCV reports for a video it cannot read)"
	switch {
	case m.SessionID != "" && !protocol.ValidSessionID(m.SessionID):
		return fmt.Sprintf("session_id %q is not valid: use 1 to %d letters, digits, '_' or '-'", clip(m.SessionID), protocol.MaxSessionIDLength)
	case !(m.FPS >= minFPS && m.FPS <= maxFPS):
		return fmt.Sprintf("fps %v: want %d to %d frames per second%s", m.FPS, minFPS, maxFPS, unreadable)
	case m.Width <= 0 || m.Width > maxDimension:
		return fmt.Sprintf("width %d: want 1 to %d pixels%s", m.Width, maxDimension, unreadable)
	case m.Height <= 0 || m.Height > maxDimension:
		return fmt.Sprintf("height %d: want 1 to %d pixels%s", m.Height, maxDimension, unreadable)
	case int64(m.Width)*int64(m.Height) > maxPixels:
		return fmt.Sprintf("width and height %dx%d: %d pixels, over the %d-pixel limit (max frame pixels)", m.Width, m.Height, int64(m.Width)*int64(m.Height), maxPixels)
	case m.ExpectedFrames < 0:
		return fmt.Sprintf("expected_frames %d: want 0 (unknown) or more", m.ExpectedFrames)
	case m.VideoFormat != "" && m.VideoFormat != protocol.DefaultVideoFormat:
		return fmt.Sprintf("video_format %q: only %q is supported", clip(m.VideoFormat), protocol.DefaultVideoFormat)
	}
	return ""
}

func (c *conn) onStart(m protocol.SessionStart) {
	if c.sess != nil {
		c.sendError(c.sess, protocol.CodeSessionStartFailed, fmt.Sprintf("session %s is still active on this connection: end it (session_end and signal) or abort it before starting another", c.sess.id), true)
		return
	}
	if msg := checkStart(m, c.srv.cfg.MaxFramePixels); msg != "" {
		c.fail(protocol.CodeInvalidMessage, msg)
		return
	}
	proto := protocol.V1
	switch m.Protocol {
	case protocol.V2:
		proto = protocol.V2
	case "", protocol.V1:
	default:
		c.log.Info("client asked for an unknown protocol, answering v1", "protocol", clip(m.Protocol))
	}
	if m.Resume && m.SessionID != "" {
		s, state, err := c.srv.reg.resume(m, proto, c)
		if errors.Is(err, errReplaceable) {
			c.srv.replace(s, c, "a resume without a token")
			s, err = nil, nil
		}
		if err != nil {
			var se *startError
			if !errors.As(err, &se) {
				se = &startError{protocol.CodeInternalError, err.Error()}
			}
			c.fail(se.code, se.msg)
			return
		}
		if s != nil {
			c.setSession(s)
			have := protocol.FrameRanges(s.spool.Numbers())
			msg := "resumed session"
			switch state {
			case stateProcessing:
				msg = "resumed during processing"
			case stateProcessed:
				msg = "resumed after processing; sending the stored result"
			}
			s.log.Info(msg, "new_remote", c.remote, "protocol", proto, "frames", s.spool.Count(), "ranges", len(have))
			c.srv.metrics.resumed.Inc()
			c.send(c.startedReply(s, proto, true, have))
			return
		}
		c.log.Info("client asked to resume a session the server does not hold", "session_id", m.SessionID,
			"hint", "grace period over, or a new data directory: starting it anew")
	}
	if q := c.srv.cfg.Jobs; q != nil {
		if err := q.Ready(); err != nil {
			c.fail(protocol.CodeSessionStartFailed, fmt.Sprintf("the server cannot take phrases now: the analysis cluster is unreachable (%v); try again when it is back", err))
			return
		}
	}
	if !m.Resume && m.SessionID != "" {
		// Clients that know nothing of resume use one session id for
		// every phrase: after an error, their rerun replaces the session
		// they left.
		if held := c.srv.reg.rerunOf(m.SessionID, c); held != nil {
			c.srv.replace(held, c, "a new session_start without resume")
		}
	}
	s, active, err := c.srv.reg.create(m.SessionID, m, proto, c)
	if err != nil {
		var se *startError
		if !errors.As(err, &se) {
			se = &startError{protocol.CodeInternalError, err.Error()}
		}
		c.fail(se.code, se.msg)
		return
	}
	c.setSession(s)
	c.srv.metrics.started.Inc()
	s.log.Info("created session", "active", active, "protocol", proto, "fps", m.FPS, "width", m.Width, "height", m.Height, "expected_frames", m.ExpectedFrames)
	c.send(c.startedReply(s, proto, false, nil))
}

// startedReply is the session_started of a new or a resumed session; have
// are the frames a resumed one holds. A new session's carries its resume
// token; a resumed one's does not, its client has it.
func (c *conn) startedReply(s *session, proto string, resumed bool, have [][2]int) protocol.SessionStarted {
	reply := protocol.SessionStarted{SessionID: s.id, Resume: resumed, Have: have}
	if !resumed {
		reply.ResumeToken = s.token
	}
	if proto == protocol.V2 {
		reply.Protocol, reply.Window = protocol.V2, c.srv.cfg.Window
	}
	return reply
}

// requireSession returns the connection's session if the message (what,
// naming the session id) may go to it; otherwise it fails the connection
// and returns nil.
func (c *conn) requireSession(id, what string) *session {
	switch {
	case c.sess == nil:
		c.fail(protocol.CodeNoActiveSession, what+" before session_start: start a session first")
		return nil
	case id != "" && id != c.sess.id:
		c.fail(protocol.CodeNoActiveSession, fmt.Sprintf("%s names session %q, but this connection streams session %s", what, clip(id), c.sess.id))
		return nil
	}
	return c.sess
}

func (c *conn) onFrame(m protocol.Frame) {
	s := c.requireSession(m.SessionID, fmt.Sprintf("frame %d", m.FrameNumber))
	switch {
	case s == nil:
	case s.protocol == protocol.V2:
		c.fail(protocol.CodeProtocolError, fmt.Sprintf("session %s speaks protocol v2: send frames as binary v2 frame messages, not frame messages", s.id))
	case m.Size < 0:
		c.fail(protocol.CodeInvalidMessage, fmt.Sprintf("frame %d announces %d bytes", m.FrameNumber, m.Size))
	case int64(m.Size) > c.srv.cfg.MaxFrameBytes:
		c.fail(protocol.CodeLimitExceeded, fmt.Sprintf("frame %d announces %d bytes, over the %d-byte frame limit", m.FrameNumber, m.Size, c.srv.cfg.MaxFrameBytes))
	default:
		c.pending = &announcement{frame: &m}
	}
}

func (c *conn) onFramePayload(f protocol.Frame, r io.Reader) error {
	data, err := c.readAll(r, int64(f.Size))
	if err != nil {
		return err
	}
	if c.sess == nil {
		return nil
	}
	c.countFrame(len(data))
	if len(data) != f.Size {
		size, err := sizeOf(data, r)
		if err != nil {
			return err
		}
		c.rejectFrame(f.FrameNumber, fmt.Sprintf("announced %d bytes, the binary message has %d", f.Size, size))
		return nil
	}
	c.storeFrame(f.FrameNumber, f.Encoding, data)
	return nil
}

// onBinary handles a binary message nothing announced: a v2 frame, or a
// protocol error.
func (c *conn) onBinary(r io.Reader) error {
	s := c.sess
	if s == nil || s.protocol != protocol.V2 {
		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return err
		}
		expected := "a text message (session_start first)"
		if s != nil {
			expected = "a text message (in protocol v1 a frame or signal message announces every binary message)"
		}
		c.fail(protocol.CodeProtocolError, fmt.Sprintf("expected %s, got a binary message (%d bytes)", expected, n))
		return nil
	}
	limit := c.srv.cfg.MaxFrameBytes + protocol.FrameHeaderSize
	data, err := c.readAll(r, limit)
	if err != nil {
		return err
	}
	c.countFrame(len(data))
	if int64(len(data)) > limit {
		c.fail(protocol.CodeLimitExceeded, fmt.Sprintf("v2 frame message over the %d-byte frame limit", c.srv.cfg.MaxFrameBytes))
		return nil
	}
	h, payload, err := protocol.ParseFrame(data)
	if err != nil {
		c.fail(protocol.CodeProtocolError, "expected a v2 frame message: "+err.Error())
		return nil
	}
	c.storeFrame(h.FrameNumber, h.Encoding, payload)
	return nil
}

// countFrame counts a frame message of n bytes in the metrics.
func (c *conn) countFrame(n int) {
	c.srv.metrics.frames.Inc()
	c.srv.metrics.bytes.Add(float64(n))
}

// checkFrame returns why a frame cannot be stored, or "". maxPixels is
// Config.MaxFramePixels. See checkPicture for what is checked of the
// picture.
func (s *session) checkFrame(number int, encoding string, payload []byte, maxPixels int64) string {
	s.mu.Lock()
	ended, state := s.ended, s.state
	s.mu.Unlock()
	switch {
	case ended || state != stateStreaming:
		return "the session has ended (session_end received)"
	case number < 0 || number > math.MaxUint32:
		return fmt.Sprintf("frame number out of range 0 to %d", uint32(math.MaxUint32))
	}
	return checkPicture(encoding, payload, s.start.Width, s.start.Height, maxPixels)
}

// checkPicture returns why payload is not a picture of w x h pixels in the
// encoding, or "". A JPEG is checked whole by checkJPEG and a raw frame by
// its exact size; a PNG only by its header: Server.decodePNG decodes it
// next.
func checkPicture(encoding string, payload []byte, width, height int, maxPixels int64) string {
	if len(payload) == 0 {
		return "empty payload"
	}
	var w, h int
	switch encoding {
	case protocol.EncodingJPEG:
		var err error
		if w, h, err = checkJPEG(payload); err != nil {
			return "not a readable jpeg picture: " + err.Error()
		}
	case protocol.EncodingPNG:
		cfg, err := png.DecodeConfig(bytes.NewReader(payload))
		if err != nil {
			return fmt.Sprintf("not a readable png picture: %v", err)
		}
		w, h = cfg.Width, cfg.Height
	case protocol.EncodingRaw:
		rh, rw, _, _, err := protocol.ParseRaw(payload)
		if err != nil {
			return err.Error()
		}
		w, h = rw, rh
	default:
		return fmt.Sprintf("unknown encoding %q: want %s", clip(encoding), protocol.EncodingChoices())
	}
	if pixels := int64(w) * int64(h); pixels > maxPixels || w > maxDimension || h > maxDimension {
		return fmt.Sprintf("the picture is %dx%d, over the limit of %d pixels and %d a side (max frame pixels)", w, h, maxPixels, maxDimension)
	}
	if w != width || h != height {
		return fmt.Sprintf("the picture is %dx%d, the session is %dx%d", w, h, width, height)
	}
	return ""
}

// storeFrame checks and stores one frame of the connection's session and
// acknowledges it as the session's protocol does.
func (c *conn) storeFrame(number int, encoding string, payload []byte) {
	s := c.sess
	if reason := s.checkFrame(number, encoding, payload, c.srv.cfg.MaxFramePixels); reason != "" {
		c.rejectFrame(number, reason)
		return
	}
	if encoding == protocol.EncodingPNG {
		if err := c.srv.decodePNG(c.ctx, payload, s.start.Width, s.start.Height); err != nil {
			if c.ctx.Err() == nil {
				c.rejectFrame(number, err.Error())
			}
			return
		}
	}
	if limit := c.srv.cfg.MaxFramesPerSession; s.spool.Count() >= limit && !s.spool.Has(number) {
		c.fail(protocol.CodeLimitExceeded, fmt.Sprintf("frame %d refused: session %s holds %d frames, the limit (max frames per session); end the session and start another", number, s.id, limit))
		return
	}
	res, err := s.addFrame(number, encoding, payload)
	if err != nil {
		var full *diskFullError
		if errors.As(err, &full) {
			c.fail(protocol.CodeLimitExceeded, err.Error())
			return
		}
		if !errors.Is(err, errSpoolClosed) {
			c.fail(protocol.CodeInternalError, fmt.Sprintf("cannot store frame %d: %v", number, err))
		}
		return
	}
	if !res.duplicate && (res.total == 1 || res.total%100 == 0) {
		s.log.Info("received frame", "frame", number, "total", res.total, "memory_mb", megabytes(int64(s.spool.Buffered())))
	}
	if s.protocol == protocol.V2 {
		c.ackWindow(s, res.messages, false)
		return
	}
	status := protocol.AckReceived
	if res.duplicate {
		status = protocol.AckDuplicate
	}
	c.send(protocol.FrameAck{SessionID: s.id, FrameNumber: number, Status: status})
}

// rejectFrame refuses one frame; the session goes on.
func (c *conn) rejectFrame(number int, reason string) {
	s := c.sess
	messages := s.countRejected()
	c.sendError(s, protocol.CodeFrameProcessingFailed, fmt.Sprintf("frame %d rejected: %s", number, reason), true)
	if s.protocol == protocol.V2 {
		c.ackWindow(s, messages, false)
		return
	}
	c.send(protocol.FrameAck{SessionID: s.id, FrameNumber: number, Status: protocol.AckError})
}

// ackWindow sends the cumulative v2 acknowledgement every quarter window,
// so that a client keeping a full window in flight never stalls; final
// acknowledges the rest at session_end.
func (c *conn) ackWindow(s *session, messages int, final bool) {
	if every := max(c.srv.cfg.Window/4, 1); messages%every == 0 != final {
		c.send(protocol.FramesAck{SessionID: s.id, Through: messages})
	}
}

func (c *conn) onEnd(m protocol.SessionEnd) {
	s := c.requireSession(m.SessionID, "session_end")
	if s == nil {
		return
	}
	a, messages, hasSignal := s.markEnded(m.TotalFrames)
	switch a {
	case arrivedReplay:
		if s.protocol == protocol.V2 {
			c.ackWindow(s, messages, true)
		}
		c.send(protocol.SessionEnded{SessionID: s.id, Validation: s.validation()})
		c.replayed(s)
		return
	case arrivedTwice:
		c.sendError(s, protocol.CodeInvalidMessage, "session_end already received; ignored", true)
		return
	}
	s.touch()
	if s.protocol == protocol.V2 {
		c.ackWindow(s, messages, true)
	}
	// What session_ended acknowledges must survive a power cut: a client
	// may delete its copy of the frames once it has the answer.
	if err := s.spool.Sync(); err != nil {
		if !errors.Is(err, errSpoolClosed) {
			c.fail(protocol.CodeInternalError, fmt.Sprintf("cannot write the frames of session %s to disk: %v (check the data directory's disk)", s.id, err))
		}
		return
	}
	v := s.validation()
	s.log.Info("session ended", "frames", v.FrameCount, "total_frames", m.TotalFrames, "missing", v.MissingFrames,
		"duplicates", v.DuplicateFrames, "out_of_order", v.OutOfOrderFrames, "spool_mb", megabytes(s.spool.Size()))
	c.send(protocol.SessionEnded{SessionID: s.id, Validation: v})
	if hasSignal {
		c.srv.startProcessing(s, c)
	}
}

func (c *conn) onSignal(m protocol.Signal) {
	s := c.requireSession(m.SessionID, "signal")
	switch {
	case s == nil:
	case m.Size < 0:
		c.fail(protocol.CodeInvalidMessage, fmt.Sprintf("signal announces %d bytes", m.Size))
	case int64(m.Size) > c.srv.cfg.MaxSignalBytes:
		c.fail(protocol.CodeLimitExceeded, fmt.Sprintf("signal of %d bytes is over the %d-byte limit (a phrase log is a few KiB: is this the video?)", m.Size, c.srv.cfg.MaxSignalBytes))
	default:
		c.pending = &announcement{signal: &m}
	}
}

// onSignalPayload takes the phrase log. A signal of the wrong size or that
// is not a phrase log is refused with a recoverable error, so the client
// can send a corrected one.
func (c *conn) onSignalPayload(m protocol.Signal, r io.Reader) error {
	data, err := c.readAll(r, int64(m.Size))
	if err != nil {
		return err
	}
	s := c.sess
	if s == nil {
		return nil
	}
	s.touch()
	if len(data) != m.Size {
		size, err := sizeOf(data, r)
		if err != nil {
			return err
		}
		c.sendError(s, protocol.CodeInvalidMessage, fmt.Sprintf("signal %q: announced %d bytes, the binary message has %d; send the signal again", clip(m.Filename), m.Size, size), true)
		return nil
	}
	if _, err := signal.Parse(data); err != nil {
		c.sendError(s, protocol.CodeInvalidMessage, fmt.Sprintf("signal %q rejected: %v; send a corrected signal", clip(m.Filename), err), true)
		return nil
	}
	a, ended, same := s.setSignal(data)
	switch a {
	case arrivedReplay:
		if !same {
			s.log.Warn("the signal sent again after the resume differs from the one processed; the result is the first one's", "bytes", len(data))
		}
		c.send(protocol.SignalAck{SessionID: s.id, Status: protocol.AckReceived})
		c.replayed(s)
		return nil
	case arrivedTwice:
		c.sendError(s, protocol.CodeInvalidMessage, "signal already received; ignored", true)
		return nil
	}
	c.send(protocol.SignalAck{SessionID: s.id, Status: protocol.AckReceived})
	if ended {
		c.srv.startProcessing(s, c)
	} else {
		s.log.Info("signal received, waiting for session_end", "bytes", len(data))
	}
	return nil
}

// replayed goes on once c, which resumed s after its end, has sent both
// session_end and the signal again: as after the first time, process_start
// comes next, then the progress and the result; a result already stored is
// sent at once.
func (c *conn) replayed(s *session) {
	if s.replayOwed(c) {
		return
	}
	state, mine := s.readyFor(c)
	if state == stateProcessed && mine {
		c.srv.sendStoredResult(s, c)
	}
}

func (c *conn) onAbort(m protocol.SessionAbort) {
	s := c.requireSession(m.SessionID, "session_abort")
	if s == nil {
		return
	}
	reason := m.Reason
	if reason == "" {
		reason = "no reason given"
	}
	s.markAborted()
	c.srv.finish(s, failure("aborted", "aborted by the client: %s", trimTo(reason, maxReason)), stateStreaming, stateProcessing, stateProcessed)
	c.setSession(nil)
}
