package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// peer is a small streaming server written from protocol-v1.md and the v2
// description in package protocol, run in the test on loopback. It is a
// second implementation of the protocol to talk to, not a stand-in for
// package server: by default it behaves like the existing Python service
// (v1 only, "protocol" ignored, valid:false "No signal data received" at
// session_end), and its knobs produce the server behaviours the client must
// survive. It records what it received for the test to check.
type peer struct {
	t   testing.TB
	cfg peerConfig
	srv *httptest.Server

	mu          sync.Mutex
	conns       int
	starts      []protocol.SessionStart
	frames      []receivedFrame
	aborts      []protocol.SessionAbort
	ends        []protocol.SessionEnd
	signal      []byte
	signalMsg   protocol.Signal
	maxInFlight int
	violations  []string
	handlers    sync.WaitGroup
}

type peerConfig struct {
	// v2 makes the peer agree to v2 when asked, with window (default 4);
	// it acknowledges every ackEvery frames (default the window, so the
	// client must stop at a full window).
	v2       bool
	window   int
	ackEvery int
	// startError answers session_start with this error.
	startError *protocol.Error
	// silent never answers session_start.
	silent bool
	// closeAfter > 0 ends the connection after that many frames: with a
	// close frame (code 1011), or by dropping TCP when drop is set.
	closeAfter int
	drop       bool
	// processError answers the signal with this error instead of a result.
	processError *protocol.Error
	// result is the process_complete result object.
	result string
	// onFrame is called with each frame number received.
	onFrame func(n int)
	// closeAfterResult closes the connection right after
	// process_complete, as a server may.
	closeAfterResult bool
	// noAcks never acknowledges a frame.
	noAcks bool
	// stall, when set, makes the peer stop reading (so stop answering
	// pings) after process_start, until stall is closed.
	stall chan struct{}
}

type receivedFrame struct {
	number   int
	encoding string
	data     []byte
}

// pythonResult is a result object in the shape the Python service answers:
// the client must return it whole without knowing its fields.
const pythonResult = `{"status":"success","winner":"right","confidence":0.87,"details":{"blade_contacts":1,"notes":["right-of-way: attack"]},"extra":null}`

func newPeer(t testing.TB, cfg peerConfig) *peer {
	t.Helper()
	if cfg.window == 0 {
		cfg.window = 4
	}
	if cfg.ackEvery == 0 {
		cfg.ackEvery = cfg.window
	}
	if cfg.result == "" {
		cfg.result = pythonResult
	}
	p := &peer{t: t, cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"healthy","streaming_enabled":true}`)
	})
	mux.HandleFunc("GET "+protocol.Path, p.stream)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		p.srv.Close()
		p.handlers.Wait()
	})
	return p
}

func (p *peer) url() string { return p.srv.URL }

// wait returns once every connection handler has returned, so that the
// records are complete.
func (p *peer) wait() {
	done := make(chan struct{})
	go func() {
		p.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.t.Fatal("the peer's connection handler did not return within 10s")
	}
}

func (p *peer) stream(w http.ResponseWriter, r *http.Request) {
	p.handlers.Add(1)
	defer p.handlers.Done()
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		p.t.Errorf("peer: upgrade: %v", err)
		return
	}
	defer ws.Close()
	p.mu.Lock()
	p.conns++
	p.mu.Unlock()
	h := &peerConn{p: p, ws: ws}
	h.serve()
}

// peerConn is one connection of the peer. It runs in the handler's
// goroutine alone, so it reads and writes without locks.
type peerConn struct {
	p       *peer
	ws      *websocket.Conn
	id      string
	v2      bool
	through int
	closed  bool
}

func (h *peerConn) send(m protocol.Message) {
	data, err := protocol.Encode(m)
	if err != nil {
		h.p.t.Errorf("peer: %v", err)
		return
	}
	h.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	h.ws.WriteMessage(websocket.TextMessage, data)
}

func (h *peerConn) violation(format string, args ...any) {
	h.p.mu.Lock()
	h.p.violations = append(h.p.violations, fmt.Sprintf(format, args...))
	h.p.mu.Unlock()
}

func (h *peerConn) serve() {
	for {
		h.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		typ, data, err := h.ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.BinaryMessage {
			if !h.v2 {
				h.violation("binary message of %d bytes where text was expected", len(data))
				continue
			}
			hdr, payload, err := protocol.ParseFrame(data)
			if err != nil {
				h.violation("v2 frame: %v", err)
				continue
			}
			if h.frame(hdr.FrameNumber, hdr.Encoding, payload) {
				return
			}
			continue
		}
		msg, err := protocol.Decode(data)
		if err != nil {
			h.violation("decode: %v", err)
			continue
		}
		if h.message(msg) {
			return
		}
	}
}

// frame records one frame and acknowledges it; it reports whether the
// connection is to end.
func (h *peerConn) frame(n int, encoding string, payload []byte) bool {
	p := h.p
	if h.closed {
		// Frames in flight when the peer closed: not received.
		return false
	}
	p.mu.Lock()
	p.frames = append(p.frames, receivedFrame{number: n, encoding: encoding, data: append([]byte(nil), payload...)})
	count := len(p.frames)
	if h.v2 {
		if inflight := count - h.through; inflight > p.maxInFlight {
			p.maxInFlight = inflight
		}
		if n >= h.through+p.cfg.window {
			p.violations = append(p.violations, fmt.Sprintf("frame %d sent with only %d acknowledged and a window of %d", n, h.through, p.cfg.window))
		}
	}
	p.mu.Unlock()
	if p.cfg.onFrame != nil {
		p.cfg.onFrame(n)
	}
	if p.cfg.closeAfter > 0 && count == p.cfg.closeAfter {
		h.closed = true
		if p.cfg.drop {
			h.ws.NetConn().Close()
			return true
		}
		h.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "test peer closes mid-stream"), time.Now().Add(time.Second))
		// Keep reading until the client's answer: anything it sends after
		// our close is recorded.
		return false
	}
	if p.cfg.noAcks {
		return false
	}
	if h.v2 {
		if count-h.through >= p.cfg.ackEvery {
			h.through = count
			h.send(protocol.FramesAck{SessionID: h.id, Through: h.through})
		}
		return false
	}
	h.send(protocol.FrameAck{SessionID: h.id, FrameNumber: n, Status: protocol.AckReceived})
	return false
}

// message handles one text message; it reports whether the connection is
// to end.
func (h *peerConn) message(msg protocol.Message) bool {
	p := h.p
	if h.closed {
		if a, ok := msg.(protocol.SessionAbort); ok {
			p.mu.Lock()
			p.aborts = append(p.aborts, a)
			p.mu.Unlock()
		}
		return false
	}
	switch m := msg.(type) {
	case protocol.SessionStart:
		p.mu.Lock()
		p.starts = append(p.starts, m)
		p.mu.Unlock()
		h.id = m.SessionID
		switch {
		case p.cfg.startError != nil:
			e := *p.cfg.startError
			e.SessionID = &h.id
			h.send(e)
		case p.cfg.silent:
		case p.cfg.v2 && m.Protocol == protocol.V2:
			h.v2 = true
			h.send(protocol.SessionStarted{SessionID: h.id, Protocol: protocol.V2, Window: p.cfg.window})
		default:
			h.send(protocol.SessionStarted{SessionID: h.id})
		}
	case protocol.Frame:
		typ, data, err := h.ws.ReadMessage()
		switch {
		case err != nil:
			return true
		case typ != websocket.BinaryMessage:
			h.violation("frame %d: text where its binary payload was expected", m.FrameNumber)
			return false
		case len(data) != m.Size:
			h.violation("frame %d: %d bytes announced, %d came", m.FrameNumber, m.Size, len(data))
		case m.Encoding == protocol.EncodingJPEG && m.Quality == 0:
			h.violation("frame %d: jpeg without quality", m.FrameNumber)
		}
		return h.frame(m.FrameNumber, m.Encoding, data)
	case protocol.SessionEnd:
		p.mu.Lock()
		p.ends = append(p.ends, m)
		n := len(p.frames)
		p.mu.Unlock()
		// As the Python service does: validation runs before the signal
		// has been sent.
		h.send(protocol.SessionEnded{SessionID: h.id, Validation: protocol.Validation{
			Valid: false, Issues: []string{"No signal data received"}, FrameCount: n,
		}})
	case protocol.Signal:
		typ, data, err := h.ws.ReadMessage()
		if err != nil {
			return true
		}
		if typ != websocket.BinaryMessage || len(data) != m.Size {
			h.violation("signal: type %d, %d bytes announced, %d came", typ, m.Size, len(data))
		}
		p.mu.Lock()
		p.signal, p.signalMsg = data, m
		p.mu.Unlock()
		h.send(protocol.SignalAck{SessionID: h.id, Status: protocol.AckReceived})
		h.send(protocol.ProcessStart{SessionID: h.id})
		if p.cfg.stall != nil {
			<-p.cfg.stall
			return true
		}
		for _, st := range []struct {
			stage    string
			progress float64
		}{{protocol.StageVideoReconstruction, 0}, {protocol.StageVideoReconstruction, 0.5}, {protocol.StageVideoReconstruction, 1}, {protocol.StageAnalysis, 0}, {protocol.StageAnalysis, 1}} {
			h.send(protocol.ProcessProgress{SessionID: h.id, Stage: st.stage, Progress: st.progress, Message: "working"})
		}
		if p.cfg.processError != nil {
			e := *p.cfg.processError
			e.SessionID = &h.id
			h.send(e)
			return false
		}
		h.send(protocol.ProcessComplete{SessionID: h.id, Result: json.RawMessage(p.cfg.result)})
		if p.cfg.closeAfterResult {
			h.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(time.Second))
			return true
		}
	case protocol.SessionAbort:
		p.mu.Lock()
		p.aborts = append(p.aborts, m)
		p.mu.Unlock()
	case protocol.Ping:
		h.send(protocol.Pong{})
	default:
		h.violation("unexpected %s from the client", msg.MessageType())
	}
	return false
}

// snapshot returns copies of the records, taken after wait.
func (p *peer) snapshot() peerRecord {
	p.wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return peerRecord{
		conns:       p.conns,
		starts:      append([]protocol.SessionStart(nil), p.starts...),
		frames:      append([]receivedFrame(nil), p.frames...),
		aborts:      append([]protocol.SessionAbort(nil), p.aborts...),
		ends:        append([]protocol.SessionEnd(nil), p.ends...),
		signal:      p.signal,
		signalMsg:   p.signalMsg,
		maxInFlight: p.maxInFlight,
		violations:  append([]string(nil), p.violations...),
	}
}

type peerRecord struct {
	conns       int
	starts      []protocol.SessionStart
	frames      []receivedFrame
	aborts      []protocol.SessionAbort
	ends        []protocol.SessionEnd
	signal      []byte
	signalMsg   protocol.Signal
	maxInFlight int
	violations  []string
}

// errorOf returns err's *Error, failing the test when there is none.
func errorOf(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return e
}
