package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// badInput is a client misbehaving in one way. run drives the connection
// and asserts the server's answer; log are the fragments of the log line
// that must name the cause.
type badInput struct {
	name string
	cfg  func(*Config)
	run  func(t *testing.T, ts *testServer)
	log  []string
}

// expectFatal receives the error that ends the connection and the close
// frame that follows it.
func (c *wsClient) expectFatal(code protocol.ErrorCode, fragment string, closeCode int) {
	c.t.Helper()
	c.expectError(code, fragment, false)
	if ce := c.expectClose(); ce.Code != closeCode || ce.Text != string(code) {
		c.t.Errorf("close %d %q, want %d %q", ce.Code, ce.Text, closeCode, code)
	}
}

// complete ends a v1 session of which frames 0..n-1 were sent, and checks
// its result.
func (c *wsClient) complete(id string, n int) {
	c.t.Helper()
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: n})
	expect[protocol.SessionEnded](c)
	c.sendSignal(id, readPhrase(c.t, logSingleLeft))
	checkResult(c.t, c.finish(id), seq(n))
}

// startedWithFrames opens a v1 session with id and sends n frames.
func (ts *testServer) startedWithFrames(id string, n int) (*wsClient, *frames) {
	ts.t.Helper()
	c := ts.dial()
	c.startV1(id)
	f := newFrames(ts.t, testWidth, testHeight)
	for i := range n {
		if ack := c.sendFrameV1(id, i, protocol.EncodingJPEG, f.jpeg(i)); ack.Status != protocol.AckReceived {
			ts.t.Fatalf("frame %d: ack %q", i, ack.Status)
		}
	}
	return c, f
}

func startMessage(id string) protocol.SessionStart {
	return protocol.SessionStart{SessionID: id, FPS: 15, Width: testWidth, Height: testHeight}
}

// shortGrace keeps disconnected sessions for 200ms, looked at every 20ms.
func shortGrace(c *Config) {
	c.ResumeGrace, c.ReaperInterval = 200*time.Millisecond, 20*time.Millisecond
}

var badInputs = []badInput{
	{
		name: "disconnect right after session_start",
		cfg:  shortGrace,
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.startV1("s1")
			c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			c.ws.Close()
		},
		log: []string{`msg="session disconnected"`, "session_id=s1", `reason="client disconnected after 0 frames (close 1000); keeping the session for 200ms to resume"`},
	},
	{
		name: "connection dropped without a close frame",
		cfg:  shortGrace,
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 2)
			c.ws.NetConn().Close()
		},
		log: []string{`msg="session disconnected"`, "session_id=s1", `reason="client disconnected after 2 frames without a close frame; keeping the session for 200ms to resume"`},
	},
	{
		name: "client aborts with a reason",
		run: func(t *testing.T, ts *testServer) {
			c, f := ts.startedWithFrames("s1", 2)
			c.send(protocol.SessionAbort{SessionID: "s1", Reason: "frame 2: cannot encode: camera unplugged"})
			// The id is free again at once, on the same connection.
			c.startV1("s1")
			c.sendFrameV1("s1", 0, protocol.EncodingJPEG, f.jpeg(0))
			c.complete("s1", 1)
		},
		log: []string{`msg="removed session"`, "session_id=s1", `reason="aborted by the client: frame 2: cannot encode: camera unplugged"`},
	},
	{
		name: "binary where text is expected",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 1)
			c.sendBinary([]byte("hello"))
			c.expectFatal(protocol.CodeProtocolError, "expected a text message (in protocol v1 a frame or signal message announces every binary message), got a binary message (5 bytes)", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="removed session"`, "session_id=s1", `reason="error PROTOCOL_ERROR: expected a text message`},
	},
	{
		name: "binary before session_start",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.sendBinary([]byte{1, 2, 3})
			c.expectFatal(protocol.CodeProtocolError, "expected a text message (session_start first), got a binary message (3 bytes)", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=PROTOCOL_ERROR", "session_start first"},
	},
	{
		name: "text where a frame's payload is expected",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.startV1("s1")
			c.send(protocol.Frame{SessionID: "s1", FrameNumber: 12, Encoding: protocol.EncodingJPEG, Size: 34567})
			c.send(protocol.Frame{SessionID: "s1", FrameNumber: 13, Encoding: protocol.EncodingJPEG, Size: 34567})
			c.expectFatal(protocol.CodeProtocolError, `expected the binary payload of frame 12 (34567 bytes), got a text message (type "frame")`, websocket.ClosePolicyViolation)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "expected the binary payload of frame 12 (34567 bytes), got a text message"},
	},
	{
		name: "text where the signal's payload is expected",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 1)
			c.send(protocol.Signal{SessionID: "s1", Filename: "phrase.txt", Size: 10})
			c.sendText("not JSON")
			c.expectFatal(protocol.CodeProtocolError, "expected the binary payload of the signal (10 bytes), got a text message", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "expected the binary payload of the signal"},
	},
	{
		name: "malformed JSON",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 1)
			c.sendText(`{"type": "frame", "frame_number": 1,`)
			c.expectFatal(protocol.CodeInvalidMessage, "malformed message: unexpected end of JSON input", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "INVALID_MESSAGE: malformed message"},
	},
	{
		name: "JSON without a type",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.sendText(`{"session_id": "s1"}`)
			c.expectFatal(protocol.CodeInvalidMessage, `no string "type" field`, websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=INVALID_MESSAGE", "type"},
	},
	{
		name: "field of the wrong type",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.sendText(`{"type": "session_start", "session_id": "s1", "fps": "fast", "width": 320, "height": 240}`)
			c.expectFatal(protocol.CodeInvalidMessage, "malformed session_start message", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=INVALID_MESSAGE", "malformed session_start message"},
	},
	{
		name: "unknown message type",
		run: func(t *testing.T, ts *testServer) {
			c, f := ts.startedWithFrames("s1", 1)
			c.sendText(`{"type": "hello", "session_id": "s1"}`)
			c.expectError(protocol.CodeUnknownMessageType, `unknown message type "hello", ignored`, true)
			c.sendFrameV1("s1", 1, protocol.EncodingJPEG, f.jpeg(1))
			c.complete("s1", 2)
		},
		log: []string{`msg="sent error"`, "session_id=s1", "code=UNKNOWN_MESSAGE_TYPE", "recoverable=true"},
	},
	{
		name: "a server's message type from the client",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.Pong{})
			c.expectError(protocol.CodeUnknownMessageType, "pong is a message the server sends", true)
			c.send(protocol.Ping{})
			expect[protocol.Pong](c)
		},
		log: []string{`msg="sent error"`, "code=UNKNOWN_MESSAGE_TYPE", "pong is a message the server sends"},
	},
	{
		name: "frame before session_start",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.Frame{SessionID: "s1", FrameNumber: 0, Encoding: protocol.EncodingJPEG, Size: 100})
			c.expectFatal(protocol.CodeNoActiveSession, "frame 0 before session_start: start a session first", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=NO_ACTIVE_SESSION", "frame 0 before session_start"},
	},
	{
		name: "session_end before session_start",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.SessionEnd{SessionID: "s1", TotalFrames: 3})
			c.expectFatal(protocol.CodeNoActiveSession, "session_end before session_start", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=NO_ACTIVE_SESSION", "session_end before session_start"},
	},
	{
		name: "signal before session_start",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.Signal{SessionID: "s1", Filename: "x.txt", Size: 10})
			c.expectFatal(protocol.CodeNoActiveSession, "signal before session_start", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=NO_ACTIVE_SESSION", "signal before session_start"},
	},
	{
		name: "frame for another session",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.startV1("s1")
			c.send(protocol.Frame{SessionID: "s2", FrameNumber: 0, Encoding: protocol.EncodingJPEG, Size: 100})
			c.expectFatal(protocol.CodeNoActiveSession, `frame 0 names session "s2", but this connection streams session s1`, websocket.ClosePolicyViolation)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "NO_ACTIVE_SESSION"},
	},
	{
		name: "session limit reached",
		cfg:  func(c *Config) { c.MaxSessions = 1 },
		run: func(t *testing.T, ts *testServer) {
			holder, _ := ts.startedWithFrames("holder", 1)
			c := ts.dial()
			c.send(startMessage("second"))
			c.expectFatal(protocol.CodeSessionStartFailed, "session limit reached: 1 of 1 streaming sessions active", websocket.CloseNormalClosure)
			holder.complete("holder", 1)
		},
		log: []string{`msg="sent error"`, "code=SESSION_START_FAILED", "session limit reached"},
	},
	{
		name: "memory limit reached",
		cfg:  func(c *Config) { c.MaxMemoryMB = 2 },
		run: func(t *testing.T, ts *testServer) {
			// The holder's connection and spool buffer take 1.2 MB; the
			// second connection's buffers 0.1 MB; its spool buffer would
			// pass 2 MB.
			holder, _ := ts.startedWithFrames("holder", 1)
			c := ts.dial()
			c.send(startMessage("second"))
			c.expectFatal(protocol.CodeSessionStartFailed, "memory limit reached: the server holds 1.3 MB for 1 sessions and their connections, and a new session needs 1.0 MB, over the 2 MB limit (max streaming memory MB)", websocket.CloseNormalClosure)
			holder.complete("holder", 1)
		},
		log: []string{`msg="sent error"`, "code=SESSION_START_FAILED", "over the 2 MB limit"},
	},
	{
		name: "session id that is a path",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(startMessage("../../etc/passwd"))
			c.expectFatal(protocol.CodeInvalidMessage, `session_id "../../etc/passwd" is not valid: use 1 to 128 letters, digits, '_' or '-'`, websocket.ClosePolicyViolation)
			if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "spool", "../../etc/passwd")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the id reached the file system: %v", err)
			}
		},
		log: []string{`msg="sent error"`, "code=INVALID_MESSAGE", "is not valid"},
	},
	{
		name: "duplicate session id",
		run: func(t *testing.T, ts *testServer) {
			holder, f := ts.startedWithFrames("dup", 1)
			c := ts.dial()
			c.send(startMessage("dup"))
			c.expectFatal(protocol.CodeSessionStartFailed, "session dup already exists", websocket.CloseNormalClosure)
			holder.sendFrameV1("dup", 1, protocol.EncodingJPEG, f.jpeg(1))
			holder.complete("dup", 2)
		},
		log: []string{`msg="sent error"`, "code=SESSION_START_FAILED", "session dup already exists"},
	},
	{
		name: "second session_start on a connection",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 1)
			c.send(startMessage("s2"))
			c.expectError(protocol.CodeSessionStartFailed, "session s1 is still active on this connection", true)
			c.complete("s1", 1)
		},
		log: []string{`msg="sent error"`, "session_id=s1", "code=SESSION_START_FAILED", "recoverable=true"},
	},
	{
		name: "fps 0",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.SessionStart{SessionID: "s1", FPS: 0, Width: testWidth, Height: testHeight})
			c.expectFatal(protocol.CodeInvalidMessage, "fps 0: want 1 to 240 frames per second (0 is what OpenCV reports for a video it cannot read)", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=INVALID_MESSAGE", "fps 0"},
	},
	{
		name: "frame size 0x0",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.SessionStart{SessionID: "s1", FPS: 30})
			c.expectFatal(protocol.CodeInvalidMessage, "width 0: want 1 to 8192 pixels (0 is what OpenCV reports for a video it cannot read)", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="sent error"`, "code=INVALID_MESSAGE", "width 0"},
	},
	{
		name: "signal with the wrong size",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 2)
			c.send(protocol.SessionEnd{SessionID: "s1", TotalFrames: 2})
			expect[protocol.SessionEnded](c)
			sig := readPhrase(t, logSingleLeft)
			c.send(protocol.Signal{SessionID: "s1", Filename: "phrase.txt", Size: len(sig) + 10})
			c.sendBinary(sig)
			c.expectError(protocol.CodeInvalidMessage, "announced "+strconv.Itoa(len(sig)+10)+" bytes, the binary message has "+strconv.Itoa(len(sig))+"; send the signal again", true)
			c.sendSignal("s1", sig)
			checkResult(t, c.finish("s1"), seq(2))
		},
		log: []string{`msg="sent error"`, "session_id=s1", "code=INVALID_MESSAGE", "send the signal again"},
	},
	{
		name: "signal that is not a phrase log",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 2)
			c.send(protocol.SessionEnd{SessionID: "s1", TotalFrames: 2})
			expect[protocol.SessionEnded](c)
			c.sendSignal("s1", []byte("ffmpeg version 5.1.6\nInput #0, avi\n"))
			c.expectError(protocol.CodeInvalidMessage, "is not a scoring-box phrase log", true)
			c.sendSignal("s1", readPhrase(t, logSingleLeft))
			checkResult(t, c.finish("s1"), seq(2))
		},
		log: []string{`msg="sent error"`, "session_id=s1", "code=INVALID_MESSAGE", "send a corrected signal"},
	},
	{
		name: "signal over the size limit",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 1)
			c.send(protocol.Signal{SessionID: "s1", Filename: "video.avi", Size: 5 << 20})
			c.expectFatal(protocol.CodeLimitExceeded, "signal of 5242880 bytes is over the 1048576-byte limit", websocket.CloseMessageTooBig)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "LIMIT_EXCEEDED"},
	},
	{
		name: "signal before session_end",
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 2)
			c.sendSignal("s1", readPhrase(t, logSingleLeft))
			expect[protocol.SignalAck](c)
			c.send(protocol.SessionEnd{SessionID: "s1", TotalFrames: 2})
			if ended := expect[protocol.SessionEnded](c); !ended.Validation.HasSignal {
				t.Errorf("validation %+v, want has_signal", ended.Validation)
			}
			checkResult(t, c.awaitResult("s1"), seq(2))
		},
		log: []string{`msg="signal received, waiting for session_end"`, "session_id=s1"},
	},
	{
		name: "announced frame size differs from the payload",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.startV1("s1")
			f := newFrames(t, testWidth, testHeight)
			payload := f.jpeg(0)
			c.send(protocol.Frame{SessionID: "s1", FrameNumber: 0, Encoding: protocol.EncodingJPEG, Size: len(payload) + 7})
			c.sendBinary(payload)
			c.expectError(protocol.CodeFrameProcessingFailed, "frame 0 rejected: announced "+strconv.Itoa(len(payload)+7)+" bytes, the binary message has "+strconv.Itoa(len(payload)), true)
			if ack := expect[protocol.FrameAck](c); ack.Status != protocol.AckError {
				t.Errorf("ack %+v, want status error", ack)
			}
			c.sendFrameV1("s1", 0, protocol.EncodingJPEG, payload)
			c.complete("s1", 1)
		},
		log: []string{`msg="sent error"`, "session_id=s1", "code=FRAME_PROCESSING_FAILED", "announced"},
	},
	{
		name: "frame over the size limit",
		cfg:  func(c *Config) { c.MaxFrameBytes = 100000 },
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.startV1("s1")
			c.send(protocol.Frame{SessionID: "s1", FrameNumber: 0, Encoding: protocol.EncodingJPEG, Size: 100001})
			c.expectFatal(protocol.CodeLimitExceeded, "frame 0 announces 100001 bytes, over the 100000-byte frame limit", websocket.CloseMessageTooBig)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "over the 100000-byte frame limit"},
	},
	{
		name: "frames that cannot be stored",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.startV1("s1")
			small := newFrames(t, 160, 120)
			for _, bad := range []struct {
				encoding string
				payload  []byte
				want     string
			}{
				{protocol.EncodingJPEG, small.jpeg(0), "frame 0 rejected: the picture is 160x120, the session is 320x240"},
				{protocol.EncodingJPEG, []byte("hello"), "frame 0 rejected: not a readable jpeg picture"},
				{protocol.EncodingRaw, []byte("hello"), "frame 0 rejected: bad raw frame"},
				{"gif", []byte("GIF89a"), `frame 0 rejected: unknown encoding "gif"`},
			} {
				c.send(protocol.Frame{SessionID: "s1", FrameNumber: 0, Encoding: bad.encoding, Size: len(bad.payload)})
				c.sendBinary(bad.payload)
				c.expectError(protocol.CodeFrameProcessingFailed, bad.want, true)
				if ack := expect[protocol.FrameAck](c); ack.Status != protocol.AckError {
					t.Errorf("ack %+v, want status error", ack)
				}
			}
			f := newFrames(t, testWidth, testHeight)
			c.sendFrameV1("s1", 0, protocol.EncodingJPEG, f.jpeg(0))
			c.complete("s1", 1)
		},
		log: []string{`msg="sent error"`, "session_id=s1", "code=FRAME_PROCESSING_FAILED", "the picture is 160x120"},
	},
	{
		name: "frame after session_end",
		run: func(t *testing.T, ts *testServer) {
			c, f := ts.startedWithFrames("s1", 1)
			c.send(protocol.SessionEnd{SessionID: "s1", TotalFrames: 1})
			expect[protocol.SessionEnded](c)
			c.send(protocol.Frame{SessionID: "s1", FrameNumber: 1, Encoding: protocol.EncodingJPEG, Size: len(f.jpeg(1))})
			c.sendBinary(f.jpeg(1))
			c.expectError(protocol.CodeFrameProcessingFailed, "frame 1 rejected: the session has ended", true)
			expect[protocol.FrameAck](c)
			c.sendSignal("s1", readPhrase(t, logSingleLeft))
			checkResult(t, c.finish("s1"), seq(1))
		},
		log: []string{`msg="sent error"`, "session_id=s1", "the session has ended"},
	},
	{
		name: "text message over the size limit",
		cfg:  func(c *Config) { c.MaxMessageBytes = 1024 },
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.sendText(`{"type": "session_start", "session_id": "` + strings.Repeat("x", 2000) + `"}`)
			c.expectFatal(protocol.CodeLimitExceeded, "text message over the 1024-byte limit", websocket.CloseMessageTooBig)
		},
		log: []string{`msg="sent error"`, "code=LIMIT_EXCEEDED"},
	},
	{
		name: "v2 frame with a bad header",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.SessionStart{SessionID: "s1", FPS: 15, Width: testWidth, Height: testHeight, Protocol: protocol.V2})
			expect[protocol.SessionStarted](c)
			c.sendBinary([]byte("XXXXXXXXXXXXXXXXXXXX"))
			c.expectFatal(protocol.CodeProtocolError, `expected a v2 frame message: bad v2 frame header: no "RF" magic`, websocket.ClosePolicyViolation)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "PROTOCOL_ERROR"},
	},
	{
		name: "v1 frame message in a v2 session",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.send(protocol.SessionStart{SessionID: "s1", FPS: 15, Width: testWidth, Height: testHeight, Protocol: protocol.V2})
			expect[protocol.SessionStarted](c)
			c.send(protocol.Frame{SessionID: "s1", FrameNumber: 0, Encoding: protocol.EncodingJPEG, Size: 10})
			c.expectFatal(protocol.CodeProtocolError, "session s1 speaks protocol v2", websocket.ClosePolicyViolation)
		},
		log: []string{`msg="removed session"`, "session_id=s1", "speaks protocol v2"},
	},
	{
		name: "no frames before the signal",
		run: func(t *testing.T, ts *testServer) {
			c := ts.dial()
			c.startV1("s1")
			c.send(protocol.SessionEnd{SessionID: "s1", TotalFrames: 0})
			if v := expect[protocol.SessionEnded](c).Validation; v.Valid || len(v.Issues) != 1 || v.Issues[0] != "no frames received" {
				t.Errorf("validation %+v, want the issue \"no frames received\"", v)
			}
			c.sendSignal("s1", readPhrase(t, logSingleLeft))
			expect[protocol.SignalAck](c)
			expect[protocol.ProcessStart](c)
			c.expectFatal(protocol.CodeProcessingFailed, "no frames were received", websocket.CloseInternalServerErr)
		},
		log: []string{`msg="removed session"`, "session_id=s1", `reason="processing failed: no frames were received`},
	},
	{
		name: "processing fails",
		cfg: func(c *Config) {
			c.Analyzer = "fail-once"
			c.Analyzers = map[string]pipeline.Analyzer{"fail-once": failOnce{new(atomic.Int32)}}
		},
		run: func(t *testing.T, ts *testServer) {
			c, _ := ts.startedWithFrames("s1", 2)
			token := ts.resumeToken("s1")
			c.send(protocol.SessionEnd{SessionID: "s1", TotalFrames: 2})
			expect[protocol.SessionEnded](c)
			c.sendSignal("s1", readPhrase(t, logSingleLeft))
			expect[protocol.SignalAck](c)
			expect[protocol.ProcessStart](c)
			for {
				m := c.recv()
				if e, ok := m.(protocol.Error); ok {
					want := "analysis: fail-once analyzer: the analyzer found no fencers; the server keeps the session's 2 frames for 1m0s: resume the session (with its resume token) and send session_end and the signal again to retry"
					if e.ErrorCode != protocol.CodeProcessingFailed || e.ErrorMessage != want || e.Recoverable {
						t.Fatalf("error %+v, want %s", e, want)
					}
					break
				}
				if _, ok := m.(protocol.ProcessProgress); !ok {
					t.Fatalf("received %T %+v, want progress or the error", m, m)
				}
			}
			if ce := c.expectClose(); ce.Code != websocket.CloseInternalServerErr {
				t.Errorf("close %d %q", ce.Code, ce.Text)
			}
			// The failed phrase keeps its directory, with why.
			var failed Failure
			if data, err := os.ReadFile(filepath.Join(ts.cfg.OutputDir, "s1", FailureFileName)); err != nil {
				t.Errorf("the failed run left no %s: %v", FailureFileName, err)
			} else if err := json.Unmarshal(data, &failed); err != nil || failed.Stage != "analysis" || failed.Reason != "fail-once analyzer: the analyzer found no fencers" {
				t.Errorf("%s: %s (%v), want stage analysis and the analyzer's reason", FailureFileName, data, err)
			}
			// The session and its frames are kept: a resume retries.
			retry := ts.dial()
			start := startMessage("s1")
			start.Resume, start.ResumeToken = true, token
			retry.send(start)
			if started := expect[protocol.SessionStarted](retry); !started.Resume || fmt.Sprint(started.Have) != "[[0 1]]" {
				t.Fatalf("resume after the failure: %+v, want resume true, have [[0 1]]", started)
			}
			retry.complete("s1", 2)
			// The retry is the same phrase: same directory, now a result.
			if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, "s1", FailureFileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the retry left the %s of the failed run: %v", FailureFileName, err)
			}
			if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, "s1-2")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the retry took a new key: %v", err)
			}
		},
		log: []string{`msg="processing failed; keeping the session and its frames to resume and retry"`, "session_id=s1", `err="analysis: fail-once analyzer: the analyzer found no fencers"`, "frames=2"},
	},
}

// TestBadInput sends each bad input to its own server: the documented
// error (or a clean close), a log line naming the cause, no partial
// artifacts, and a server that still answers /health and serves a
// complete session.
func TestBadInput(t *testing.T) {
	for _, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.cfg)
			tc.run(t, ts)
			ts.logs.WaitFor(t, tc.log...)
			if lines := ts.logs.Lines("write failed"); len(lines) > 0 {
				t.Errorf("the server wrote to a connection that had gone: %s", lines[0])
			}
			ts.checkServing()
			ts.waitIdle()
			checkNoPartialArtifacts(t, ts.cfg)
		})
	}
}

// checkNoPartialArtifacts checks that every artifact directory holds a
// result.json or, for a failed phrase, a failure.json, and that no spool
// is left once the sessions are over.
func checkNoPartialArtifacts(t *testing.T, cfg Config) {
	t.Helper()
	dirs, err := os.ReadDir(cfg.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(cfg.OutputDir, d.Name(), pipeline.ResultFileName)); err != nil {
			if _, ferr := os.Stat(filepath.Join(cfg.OutputDir, d.Name(), FailureFileName)); ferr != nil {
				t.Errorf("artifact directory %s without a result or a failure: %v", d.Name(), err)
			}
		}
	}
	spools, err := os.ReadDir(filepath.Join(cfg.DataDir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range spools {
		t.Errorf("spool %s left after its session ended", d.Name())
	}
}
