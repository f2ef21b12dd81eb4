package server

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/referee-project/referee/protocol"
)

// sessionState is where a session is in its life: streaming, then
// processing (once both session_end and the signal are in), then finished.
// A streaming session whose client goes is disconnected for the resume
// grace period, and streaming again if the client resumes it. A session
// whose processing ends while no client waits for the result is processed:
// it is kept for the grace period, so that a client resuming it gets the
// result. A session whose result was sent on a live connection is
// processed and delivered: kept for the grace period too, in case the
// connection was lost before the client read the result, but no longer
// counted as active.
//
// Every change of state is one of the session methods below, each under
// s.mu, so that each rule is in one place. Every way of finishing goes
// through finishFrom (or, for a delivered session a new one replaces,
// finishDelivered), so exactly one of them wins. All but two then go
// through Server.end, which removes the session and logs why: suspend,
// which keeps the spool on disk for the next start, and
// registry.dropDeliveredLocked.
//
// The methods decide under s.mu and touch the disk after releasing it
// (disconnect and failProcessing park the spool after): see session for
// the lock order.
type sessionState int

const (
	stateStreaming sessionState = iota
	stateProcessing
	stateFinished
	stateDisconnected
	stateProcessed
)

// detached is what a change of state took off a session: the connection
// attached to it, and the processing's cancel.
type detached struct {
	conn   *conn // nil if none
	ready  bool  // conn took the processing messages
	cancel context.CancelCauseFunc
	host   string // the remote host of the client that started or last resumed it
}

// receiver is the connection that took the processing messages, or nil.
func (d detached) receiver() *conn {
	if !d.ready {
		return nil
	}
	return d.conn
}

// finishFrom marks s finished if it is in one of the states from, and
// returns what was attached to it. It reports false, changing nothing,
// when s is in another state: another path finished it first.
func (s *session) finishFrom(from ...sessionState) (detached, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(from, s.state) {
		return detached{}, false
	}
	s.state = stateFinished
	return s.detachedLocked(), true
}

// finishDelivered marks s finished if it is a delivered session that no
// connection has resumed and whose spool is gone, and reports whether it
// did. Its spool is dropped after markProcessed, out of s.mu: until that
// is done a new session with the id of s, which would create its spool in
// the same directory, does not replace it.
func (s *session) finishDelivered() bool {
	if !s.delivered.Load() || !s.spoolDropped.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateProcessed || s.conn != nil {
		return false
	}
	s.state = stateFinished
	return true
}

func (s *session) detachedLocked() detached {
	return detached{conn: s.conn, ready: s.ready, cancel: s.cancel, host: s.host}
}

// beginProcessing moves s, streaming, to processing, stopped by cancel;
// its connection takes the processing messages. It reports false, changing
// nothing, when s is no longer streaming; signalBytes is the size of the
// signal to process.
func (s *session) beginProcessing(cancel context.CancelCauseFunc) (signalBytes int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateStreaming {
		return 0, false
	}
	s.state, s.cancel, s.ready = stateProcessing, cancel, true
	return len(s.signal), true
}

// markProcessed moves s from processing to processed, its result in the
// file result. When a connection takes the processing messages, s is
// delivered: the connection is detached and returned (the caller sends it
// the result). Either way the caller then drops the spool (Server.dropSpool):
// a delivered session is replaced by a new one with its id only once that
// is done (finishDelivered). It reports false, changing nothing, when s is
// no longer processing: aborted, or cancelled by a shutdown.
func (s *session) markProcessed(result string) (detached, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateProcessing {
		return detached{}, false
	}
	d := s.detachedLocked()
	s.state, s.cancel, s.result, s.disconnected = stateProcessed, nil, result, time.Now()
	if d.ready {
		s.conn, s.ready = nil, false
		s.delivered.Store(true)
	}
	return d, true
}

// failProcessing moves s from processing back to disconnected, held with
// its frames for a resume that retries; why is the failure. Its buffer is
// uncounted under s.mu, so that a resume counts it after, and its spool
// parked once s.mu is released (parkErr says if that failed). It reports
// false, changing nothing, when s is no longer processing.
func (s *session) failProcessing(why string, r *registry) (d detached, parkErr error, ok bool) {
	s.mu.Lock()
	if s.state != stateProcessing {
		s.mu.Unlock()
		return detached{}, nil, false
	}
	d = s.leaveProcessingLocked()
	s.failed = why
	r.uncountBuffer(s)
	s.mu.Unlock()
	return d, s.spool.Park(), true
}

// stopProcessing moves s from processing back to disconnected, without a
// failure: its job goes on elsewhere. It reports false, changing nothing,
// when s is no longer processing.
func (s *session) stopProcessing() (detached, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateProcessing {
		return detached{}, false
	}
	return s.leaveProcessingLocked(), true
}

func (s *session) leaveProcessingLocked() detached {
	d := s.detachedLocked()
	s.state, s.conn, s.ready, s.cancel, s.disconnected = stateDisconnected, nil, false, nil, time.Now()
	return d
}

// resumeBy attaches c, speaking proto, to s. A disconnected or streaming
// session streams again from where it was, its end and signal forgotten;
// a session being processed or processed waits until c has sent them
// again. It returns the connection c takes s from (nil if none) and the
// state s was in, and reports false, changing nothing, when s has
// finished.
func (s *session) resumeBy(c *conn, proto string, r *registry) (previous *conn, state sessionState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	previous, state = s.conn, s.state
	switch state {
	case stateDisconnected, stateStreaming:
		s.state = stateStreaming
		r.countBuffer(s)
		s.ended, s.totalFrames, s.signal, s.failed = false, 0, nil, ""
		s.gapsBelow = s.maxNumber
	case stateProcessing, stateProcessed:
		s.ready, s.replayEnd, s.replaySignal = false, true, true
	default:
		return nil, state, false
	}
	s.conn, s.protocol, s.host = c, proto, remoteHost(c.remote)
	s.ackBase, s.lastActivity = s.messages, time.Now()
	return previous, state, true
}

// disconnect detaches c, whose connection has ended, from s. A streaming
// session becomes disconnected, its buffer uncounted and then, once s.mu is
// released, its spool parked (parkErr says if that failed), unless
// closing: then it stays streaming, for the shutdown to suspend. A session
// being processed or processed just loses its connection. It returns the
// state s was in and what was attached, and reports false, changing
// nothing, when c no longer streams s.
func (s *session) disconnect(c *conn, closing bool, r *registry) (state sessionState, d detached, parkErr error, ok bool) {
	s.mu.Lock()
	if s.conn != c {
		s.mu.Unlock()
		return 0, detached{}, nil, false
	}
	state, d = s.state, s.detachedLocked()
	park := false
	switch {
	case state == stateStreaming && !closing:
		s.state, s.conn, s.disconnected = stateDisconnected, nil, time.Now()
		// Uncounted under s.mu, so that a resume counts the buffer after
		// this uncounts it.
		r.uncountBuffer(s)
		park = true
	case state == stateProcessing, state == stateProcessed:
		s.conn, s.ready, s.disconnected = nil, false, time.Now()
	}
	s.mu.Unlock()
	if park {
		// Parked, the session holds no write buffer while it waits. A
		// resume that comes first loses nothing: Park writes the buffer
		// out, and the next frame allocates a new one.
		parkErr = s.spool.Park()
	}
	return state, d, parkErr, true
}

// arrival is what a session_end or a signal was to its session.
type arrival int

const (
	// arrivedFirst: the first one, taken.
	arrivedFirst arrival = iota
	// arrivedReplay: the one a connection that resumed the session after
	// its end owed again.
	arrivedReplay
	// arrivedTwice: one more, refused.
	arrivedTwice
)

// markEnded records the session_end of s, whose client counted
// totalFrames. It returns the number of frame messages on the current
// connection and whether the signal is in.
func (s *session) markEnded(totalFrames int) (a arrival, messages int, hasSignal bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	messages = s.messages - s.ackBase
	switch {
	case s.replayEnd:
		s.replayEnd = false
		return arrivedReplay, messages, s.signal != nil
	case s.ended:
		return arrivedTwice, messages, s.signal != nil
	}
	s.ended, s.totalFrames = true, totalFrames
	return arrivedFirst, messages, s.signal != nil
}

// setSignal records the signal of s, data. It returns whether session_end
// is in, and for a replay whether data is the signal processed.
func (s *session) setSignal(data []byte) (a arrival, ended, same bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.replaySignal:
		s.replaySignal = false
		return arrivedReplay, s.ended, bytes.Equal(data, s.signal)
	case s.signal != nil:
		return arrivedTwice, s.ended, false
	}
	s.signal = bytes.Clone(data)
	return arrivedFirst, s.ended, false
}

// replayOwed reports whether c, which resumed s after its end, still owes
// session_end or the signal, or no longer streams s.
func (s *session) replayOwed(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replayEnd || s.replaySignal || s.conn != c
}

// readyFor sends process_start on c, which resumed s and has sent
// session_end and the signal again, and makes c take the processing
// messages of s while it is being processed. It returns the state of s and
// whether c still streams it. process_start is queued under s.mu when the
// queue has room, so that c is ready in the same step: the analysis runs
// meanwhile, and its progress, which goes to c once c is ready, can
// neither overtake process_start nor fall between the two and be lost. A
// full queue is waited for out of the lock, as any send.
func (s *session) readyFor(c *conn) (state sessionState, mine bool) {
	start := protocol.ProcessStart{SessionID: s.id}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.offer(start) {
		s.mu.Unlock()
		c.send(start)
		s.mu.Lock()
	}
	state, mine = s.state, s.conn == c
	if state == stateProcessing && mine {
		s.ready = true
	}
	return state, mine
}

// markAborted records that the client aborted s.
func (s *session) markAborted() {
	s.mu.Lock()
	s.aborted = true
	s.mu.Unlock()
}
