package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

const (
	// writeWait bounds every write to a connection.
	writeWait = 10 * time.Second
	// closeGrace is how long the server waits for the peer's close frame
	// after sending its own, before it drops the connection.
	closeGrace = 2 * time.Second
	// outQueue is the number of outbound messages a connection buffers.
	outQueue = 64
	// maxCloseReason is the longest reason a WebSocket close frame holds.
	maxCloseReason = 123
)

// WebSocket close codes the server closes with.
const (
	closeNormal    = websocket.CloseNormalClosure
	closeGoingAway = websocket.CloseGoingAway
	closePolicy    = websocket.ClosePolicyViolation
	closeTooBig    = websocket.CloseMessageTooBig
	closeInternal  = websocket.CloseInternalServerErr
)

// closeCause is the cause a connection's context is cancelled with when the
// server closes it: the write pump sends what is queued, then a close frame
// with code and text.
type closeCause struct {
	code int
	text string
}

func (e *closeCause) Error() string { return e.text }

// errShutdown cancels every connection when the server shuts down.
var errShutdown = &closeCause{code: closeGoingAway, text: "server shutting down"}

// errPeerGone cancels a connection whose peer has gone: nothing is written
// to it any more, not even a close frame.
var errPeerGone = errors.New("the client has gone")

// conn is one WebSocket connection. Its read pump runs in the HTTP
// handler's goroutine and owns the protocol state; its write pump is the
// only goroutine that writes messages, taking them from out. Both stop
// through ctx, whose cause says whether anything may still be written.
type conn struct {
	srv        *Server
	ws         *websocket.Conn
	remote     string
	log        *slog.Logger
	ctx        context.Context
	cancel     context.CancelCauseFunc
	out        chan []byte
	closing    atomic.Bool // no more messages are handled; waiting for the peer's close
	writerDone chan struct{}
	readerDone chan struct{}

	// Owned by the read pump.
	sess    *session
	pending *announcement
	buf     []byte // the message being read, reused; its capacity is counted in the memory budget

	// bufBytes is cap(buf), for the stats; attached is sess, for the
	// write pump's idle check.
	bufBytes atomic.Int64
	attached atomic.Pointer[session]

	// logs rate-limits the lines a client's messages make the server log.
	logs logLimiter
}

// setSession makes s (nil: none) the connection's session. Read pump only.
func (c *conn) setSession(s *session) {
	c.sess = s
	c.attached.Store(s)
}

func newConn(srv *Server, ws *websocket.Conn, remote string) *conn {
	ctx, cancel := context.WithCancelCause(srv.ctx)
	c := &conn{
		srv:        srv,
		ws:         ws,
		remote:     remote,
		log:        srv.log.With("remote", remote),
		ctx:        ctx,
		cancel:     cancel,
		out:        make(chan []byte, outQueue),
		writerDone: make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	ws.SetReadLimit(srv.readLimit)
	ws.SetPongHandler(func(string) error {
		c.extendReadDeadline()
		return nil
	})
	return c
}

// run serves the connection until it ends and every goroutine it started
// has returned.
func (c *conn) run() {
	c.log.Debug("connection opened")
	go c.writePump()
	err := c.readPump()
	close(c.readerDone)
	c.cancel(errPeerGone)
	<-c.writerDone
	c.ws.Close()
	c.srv.memory.release(connBufferBytes + int64(cap(c.buf)))
	reason := c.lostReason(err)
	if s := c.sess; s != nil {
		c.srv.detach(s, c, reason)
	}
	c.logs.flush()
	c.log.Debug("connection closed", "reason", reason)
}

// extendReadDeadline gives the peer another keepalive period, unless the
// connection is closing: then the write pump ends the wait for the peer's
// close (awaitPeerClose). Read pump only, the pong handler included:
// gorilla/websocket takes read deadlines from one goroutine, the reader.
func (c *conn) extendReadDeadline() {
	if c.closing.Load() {
		return
	}
	c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.KeepaliveTimeout))
}

// readPump reads and handles messages until the connection fails or, once
// the server has decided to close, until the peer answers the close frame
// or the grace period ends. It returns the read error that ended it.
func (c *conn) readPump() error {
	for {
		c.extendReadDeadline()
		kind, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		if c.closing.Load() {
			continue // NextReader discards the rest of the message
		}
		if err := c.handle(kind, r); err != nil {
			return err
		}
	}
}

// writePump writes the queued messages and the keepalive pings until ctx
// is done. It never writes to a peer that has gone: a disconnect is never
// answered with a send. It also closes the connection once it has had no
// session for IdleConnTimeout.
func (c *conn) writePump() {
	defer close(c.writerDone)
	ping := time.NewTicker(c.srv.cfg.KeepaliveTimeout * 9 / 10)
	defer ping.Stop()
	idle := c.srv.cfg.IdleConnTimeout
	// Looked at four times a timeout: closed within 1.25 timeouts.
	check := time.NewTicker(max(idle/4, time.Millisecond))
	defer check.Stop()
	sessionless := time.Now()
	for {
		select {
		case now := <-check.C:
			if c.ctx.Err() != nil {
				continue // closing already
			}
			if s := c.attached.Load(); s != nil && s.attachedTo(c) {
				sessionless = time.Time{}
				continue
			}
			if sessionless.IsZero() {
				sessionless = now
			} else if now.Sub(sessionless) >= idle {
				c.log.Info("closed an idle connection", "reason", fmt.Sprintf("no session for %s (idle connection timeout)", formatDuration(now.Sub(sessionless))))
				c.closeWith(closePolicy, fmt.Sprintf("no session for %s (idle connection timeout)", idle))
			}
		case <-c.ctx.Done():
			c.closeOut(nil)
			return
		case msg := <-c.out:
			if c.ctx.Err() != nil {
				c.closeOut(msg)
				return
			}
			if !c.write(websocket.TextMessage, msg) {
				return
			}
		case <-ping.C:
			if !c.write(websocket.PingMessage, nil) {
				return
			}
		}
	}
}

// write writes one message with a deadline, unless the connection is over
// for another reason than the server closing it. On failure it stops the
// connection: the write pump returns and the read pump is unblocked.
func (c *conn) write(kind int, data []byte) bool {
	var cc *closeCause
	if c.ctx.Err() != nil && !errors.As(context.Cause(c.ctx), &cc) {
		return false
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(kind, data); err != nil {
		c.log.Debug("write failed", "err", err)
		c.cancel(fmt.Errorf("write failed: %w", err))
		c.ws.Close()
		return false
	}
	return true
}

// closeOut ends the write pump. When the server closes the connection (the
// cause is a closeCause) it writes first, then the messages still queued,
// then a close frame with the cause, and waits for the peer's close
// (awaitPeerClose); otherwise it writes nothing.
func (c *conn) closeOut(first []byte) {
	var cc *closeCause
	if !errors.As(context.Cause(c.ctx), &cc) {
		return
	}
	began := time.Now()
	if first != nil && !c.write(websocket.TextMessage, first) {
		return
	}
	for {
		select {
		case msg := <-c.out:
			if !c.write(websocket.TextMessage, msg) {
				return
			}
		default:
			c.closing.Store(true)
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(cc.code, trimTo(cc.text, maxCloseReason)), time.Now().Add(writeWait))
			c.awaitPeerClose(began)
			return
		}
	}
}

// awaitPeerClose waits for the read pump to end on the peer's close, at
// most closeGrace after the close frame (not at all if writing what was
// queued took closeGrace already); then it closes the network connection,
// which ends the read pump. Closing, not a read deadline: only the read
// pump sets those, and Close is safe from any goroutine.
func (c *conn) awaitPeerClose(began time.Time) {
	wait := closeGrace
	if time.Since(began) >= closeGrace {
		wait = 0
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-c.readerDone:
	case <-timer.C:
		c.ws.Close()
	}
}

// closeWith closes the connection from the server's side: messages queued
// so far are sent, then a close frame with code and text. The read pump
// handles no further message. Safe to call from any goroutine, and more
// than once: the first call wins.
func (c *conn) closeWith(code int, text string) {
	c.closing.Store(true)
	c.cancel(&closeCause{code: code, text: text})
}

// send queues m for the write pump. It returns false, dropping m, once the
// connection is over.
func (c *conn) send(m protocol.Message) bool {
	data, ok := c.encode(m)
	if !ok {
		return false
	}
	select {
	case c.out <- data:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// encode encodes m for the write pump; a message that cannot be encoded
// is logged and reported false.
func (c *conn) encode(m protocol.Message) ([]byte, bool) {
	data, err := protocol.Encode(m)
	if err != nil {
		c.log.Error("cannot encode a message", "type", m.MessageType(), "err", err)
		return nil, false
	}
	return data, true
}

// offer queues m on c if the queue has room, without waiting, and reports
// whether it did; an unencodable m is logged as by send.
func (c *conn) offer(m protocol.Message) bool {
	data, ok := c.encode(m)
	if !ok {
		return false
	}
	select {
	case c.out <- data:
		return true
	default:
		return false
	}
}

// sendError sends an error message and logs it. A recoverable error leaves
// the session and the connection as they were.
// s is the session the error is about, or nil.
func (c *conn) sendError(s *session, code protocol.ErrorCode, msg string, recoverable bool) {
	var id *string
	log := c.log
	if s != nil {
		id, log = &s.id, s.log
	}
	c.logs.log(log, slog.LevelWarn, "error "+string(code), "sent error", "code", code, "message", msg, "recoverable", recoverable)
	c.srv.metrics.errors.WithLabelValues(string(code)).Inc()
	c.send(protocol.Error{SessionID: id, ErrorCode: code, ErrorMessage: msg, Recoverable: recoverable})
}

// fail sends a fatal error, ends the session with it as the reason and
// closes the connection.
func (c *conn) fail(code protocol.ErrorCode, msg string) {
	c.sendError(c.sess, code, msg, false)
	if s := c.sess; s != nil {
		c.srv.finish(s, failure(strings.ToLower(string(code)), "error %s: %s", code, msg), stateStreaming)
	}
	c.closeWith(closeCodeFor(code), string(code))
}

// closeCodeFor returns the WebSocket close code that goes with a fatal
// error code.
func closeCodeFor(code protocol.ErrorCode) int {
	switch code {
	case protocol.CodeLimitExceeded:
		return closeTooBig
	case protocol.CodeInternalError, protocol.CodeProcessingFailed:
		return closeInternal
	case protocol.CodeSessionStartFailed:
		return closeNormal
	}
	return closePolicy
}

// lostReason says in words why the read pump stopped with err.
func (c *conn) lostReason(err error) string {
	var cc *closeCause
	if errors.As(context.Cause(c.ctx), &cc) {
		return cc.text
	}
	if cause := context.Cause(c.ctx); cause != nil && !errors.Is(cause, errPeerGone) {
		return "connection lost: " + cause.Error()
	}
	frames := 0
	if c.sess != nil {
		frames = c.sess.spool.Count()
	}
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		return fmt.Sprintf("client disconnected after %d frames without a close frame", frames)
	case errors.As(err, &ce):
		if ce.Text != "" {
			return fmt.Sprintf("client disconnected after %d frames (close %d: %s)", frames, ce.Code, ce.Text)
		}
		return fmt.Sprintf("client disconnected after %d frames (close %d)", frames, ce.Code)
	case errors.Is(err, websocket.ErrReadLimit):
		return fmt.Sprintf("client sent a message over the %d-byte limit after %d frames", c.srv.readLimit, frames)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("client silent for %s (no message, no pong) after %d frames", c.srv.cfg.KeepaliveTimeout, frames)
	}
	return fmt.Sprintf("client disconnected after %d frames without a close frame (%v)", frames, err)
}
