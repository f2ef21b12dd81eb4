package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// maxIncoming bounds one message from the server; results are a few KiB.
const maxIncoming = 16 << 20

// closeWait is how long close waits for the server to answer our close
// frame before dropping the TCP connection.
const closeWait = time.Second

// conn is one WebSocket connection run the way gorilla's chat example runs
// it: readPump is the only reader, writePump the only writer (gorilla's own
// replies to pings and close frames go through WriteControl, which it
// documents as safe beside it). Every read and write has a deadline; pings
// go out every keepAlive/3 and any message or pong from the server extends
// the read deadline by keepAlive, so a dead server is noticed within
// keepAlive.
type conn struct {
	ws        *websocket.Conn
	url       string
	timeout   time.Duration
	keepAlive time.Duration

	out chan outgoing
	in  chan incoming

	// dead is closed when the connection has failed or been closed; err
	// says why.
	dead     chan struct{}
	deadOnce sync.Once
	err      error

	stopWrite context.CancelFunc
	readDone  chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closing   chan struct{}
}

type outgoing struct {
	typ  int
	data []byte
	// written, when set, receives the result of the write.
	written chan error
}

// incoming is one text message from the server, decoded, or the error that
// decoding it gave.
type incoming struct {
	msg protocol.Message
	err error
}

// link says how to reach the server: where, with which token and TLS
// roots, and how patiently.
type link struct {
	url       string
	timeout   time.Duration
	keepAlive time.Duration
	// token, when set, goes in the Authorization header of the handshake.
	token string
	// tls holds the roots of a --ca bundle; nil means the system's.
	tls *tls.Config
}

// header is the handshake's header: the token, if any.
func (l link) header() http.Header {
	if l.token == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + l.token}}
}

// dial connects to the link's URL and starts the pumps. They run until
// close is called or the connection fails; ctx only bounds the handshake,
// so that the owner can still send session_abort after its own context is
// cancelled.
func dial(ctx context.Context, l link) (*conn, error) {
	url, timeout, keepAlive := l.url, l.timeout, l.keepAlive
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: timeout,
		ReadBufferSize:   16 << 10,
		WriteBufferSize:  64 << 10,
		TLSClientConfig:  l.tls,
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws, resp, err := d.DialContext(dctx, url, l.header())
	if err != nil {
		if resp != nil {
			return nil, refusal(url, resp)
		}
		return nil, dialError(dctx, url, timeout, err)
	}
	c := &conn{
		ws:        ws,
		url:       url,
		timeout:   timeout,
		keepAlive: keepAlive,
		out:       make(chan outgoing, 4),
		in:        make(chan incoming, 16),
		dead:      make(chan struct{}),
		readDone:  make(chan struct{}),
		closing:   make(chan struct{}),
	}
	wctx, stop := context.WithCancel(context.Background())
	c.stopWrite = stop
	c.wg.Add(2)
	go c.readPump()
	go c.writePump(wctx)
	return c, nil
}

// refusal is the error of a handshake the server answered with resp, an
// HTTP status instead of the upgrade. A referee server says why in a JSON
// error body, which the error quotes with what to do; other servers do
// not, and the error asks whether the URL is right. A refusal for the
// server's load (429, 503) is a connection error: a later attempt may get
// through.
func refusal(url string, resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized {
		return serverErrorf("the server refused the token (401): check --token / REFEREE_TOKEN")
	}
	var body protocol.Error
	// The dialer keeps at most the first KiB of the body, enough for an
	// error message.
	if data, err := io.ReadAll(resp.Body); err != nil || json.Unmarshal(data, &body) != nil || body.ErrorCode == "" {
		return connErrorf("Cannot open %s: the server answered %s (check that the URL points at a referee server)", url, resp.Status)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return connErrorf("Cannot open %s: the server refused the connection (%s): %s: %s (close other connections from this address, or try again %s)",
			url, resp.Status, body.ErrorCode, body.ErrorMessage, retryAfter(resp))
	case http.StatusServiceUnavailable:
		return connErrorf("Cannot open %s: the server cannot take the connection now (%s): %s: %s (try again %s)",
			url, resp.Status, body.ErrorCode, body.ErrorMessage, retryAfter(resp))
	}
	return serverErrorf("Cannot open %s: the server answered %s: %s: %s", url, resp.Status, body.ErrorCode, body.ErrorMessage)
}

// retryAfter says when resp's Retry-After asks to try again.
func retryAfter(resp *http.Response) string {
	if v := resp.Header.Get("Retry-After"); v != "" {
		return "in " + v + " s"
	}
	return "later"
}

// fail records the first reason the connection ended and wakes everyone
// waiting on dead.
func (c *conn) fail(err error) {
	c.deadOnce.Do(func() {
		c.err = err
		close(c.dead)
	})
}

// lost reports why the connection ended, or nil while it is up.
func (c *conn) lost() error {
	select {
	case <-c.dead:
		return c.err
	default:
		return nil
	}
}

func (c *conn) readPump() {
	defer c.wg.Done()
	defer close(c.readDone)
	c.ws.SetReadLimit(maxIncoming)
	c.ws.SetReadDeadline(time.Now().Add(c.keepAlive))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(c.keepAlive))
	})
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.fail(c.readError(err))
			return
		}
		c.ws.SetReadDeadline(time.Now().Add(c.keepAlive))
		if typ != websocket.TextMessage {
			c.deliver(incoming{err: fmt.Errorf("the server sent a %d-byte binary message where only text messages are expected", len(data))})
			continue
		}
		msg, err := protocol.Decode(data)
		if !c.deliver(incoming{msg: msg, err: err}) {
			return
		}
	}
}

// deliver hands m to the session, unless the connection is closing.
func (c *conn) deliver(m incoming) bool {
	select {
	case c.in <- m:
		return true
	case <-c.closing:
		return false
	}
}

// readError says why reading stopped, in words for the user.
func (c *conn) readError(err error) error {
	select {
	case <-c.closing:
		return errClosed
	default:
	}
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		// 1006 is never sent: gorilla reports a TCP connection that ended
		// without a close frame this way.
		return lostf(err, "Connection lost to %s: it ended without a close frame (check the network and that the server is still running)", c.url)
	case errors.As(err, &ce) && (ce.Code == websocket.CloseGoingAway || ce.Code == websocket.CloseServiceRestart || ce.Code == websocket.CloseTryAgainLater):
		// The server is shutting down or restarting: a later connection
		// may find it, and the session, again.
		return lostf(err, "Connection closed by the server (code %d: %s); it may come back", ce.Code, ce.Text)
	case errors.As(err, &ce):
		text := ce.Text
		if text == "" {
			text = "no reason given"
		}
		return &Error{Kind: KindConnection, Err: withCause(err, "Connection closed by the server (code %d: %s); check the server's log", ce.Code, text)}
	case errors.As(err, &ne) && ne.Timeout():
		return lostf(err, "Connection lost: nothing from %s for %s, not even a pong (check the network and that the server is still running)", c.url, c.keepAlive)
	}
	return lostf(err, "Connection lost to %s: %v (check the network and the server's log)", c.url, err)
}

// errClosed is the reason of a connection we closed ourselves.
var errClosed = errors.New("connection closed by the client")

func (c *conn) writePump(ctx context.Context) {
	defer c.wg.Done()
	ping := time.NewTicker(c.keepAlive / 3)
	defer ping.Stop()
	for {
		select {
		case m := <-c.out:
			c.ws.SetWriteDeadline(time.Now().Add(c.timeout))
			err := c.ws.WriteMessage(m.typ, m.data)
			if err != nil {
				err = c.writeError(err)
				c.fail(err)
			}
			if m.written != nil {
				m.written <- err
			}
			if err != nil {
				return
			}
		case <-ping.C:
			c.ws.SetWriteDeadline(time.Now().Add(c.timeout))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				c.fail(c.writeError(err))
				return
			}
		case <-ctx.Done():
			if c.lost() == nil {
				c.ws.SetWriteDeadline(time.Now().Add(closeWait))
				c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			}
			return
		}
	}
}

func (c *conn) writeError(err error) error {
	if e := c.lost(); e != nil {
		return e
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return lostf(err, "Connection timeout: a message to %s could not be sent within %s (check the network, or raise --timeout)", c.url, c.timeout)
	}
	return lostf(err, "Connection lost to %s while sending: %v (check the network and the server's log)", c.url, err)
}

// send queues one message for the write pump. It returns once the pump has
// taken it, or the connection's error, or ctx's.
func (c *conn) send(ctx context.Context, typ int, data []byte) error {
	select {
	case c.out <- outgoing{typ: typ, data: data}:
		return nil
	case <-c.dead:
		return c.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// sendMessage encodes m and queues it as a text message.
func (c *conn) sendMessage(ctx context.Context, m protocol.Message) error {
	data, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	return c.send(ctx, websocket.TextMessage, data)
}

// sendNow writes m and waits until it is on the wire, for at most the write
// timeout: it is for last words (session_abort), sent when the caller's
// context may already be cancelled.
func (c *conn) sendNow(m protocol.Message) error {
	data, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	written := make(chan error, 1)
	select {
	case c.out <- outgoing{typ: websocket.TextMessage, data: data, written: written}:
	case <-c.dead:
		return c.err
	case <-timer.C:
		return fmt.Errorf("send %s: the write queue did not drain within %s", m.MessageType(), c.timeout)
	}
	select {
	case err := <-written:
		return err
	case <-c.dead:
		return c.err
	case <-timer.C:
		return fmt.Errorf("send %s: not written within %s", m.MessageType(), c.timeout)
	}
}

// close ends the connection politely: a close frame, a short wait for the
// server's answer, then the socket. It stops both pumps and waits for them.
// Calling it again does nothing.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.stopWrite()
		select {
		case <-c.readDone:
		case <-time.After(closeWait):
		}
		c.ws.Close()
		c.wg.Wait()
		c.fail(errClosed)
	})
}
