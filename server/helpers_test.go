package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/referee-project/referee/server/servertest"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
	"github.com/referee-project/referee/protocol"
)

// Test frames are small, so that whole sessions stay fast.
const testWidth, testHeight = 320, 240

// Real phrase logs of shared/testdata/phrases.
const (
	logSingleLeft = "20260127_210842_phrase02.txt" // only the left light: "left"
	logDouble     = "20251020_210329_phrase09.txt" // both lights: "undecided"
)

// readPhrase returns a real phrase log: from the repository's
// testdata/signal, or else from shared/testdata/phrases found by walking up
// from the package directory.
func readPhrase(t testing.TB, name string) []byte {
	t.Helper()
	if data, err := os.ReadFile(filepath.Join("..", "testdata", "signal", name)); err == nil {
		return data
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "shared", "testdata", "phrases", name))
		if err == nil {
			return data
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("phrase log %s not found in ../testdata/signal nor in a shared/testdata/phrases above the package", name)
		}
		dir = parent
	}
}

// idleTimeout is the idle timeout, of sessions or of connections, in the
// tests that wait for it: their connections send each next message well
// within it even on a loaded machine, where one can take a few hundred ms.
const idleTimeout = 2 * time.Second

// testServer is a real server on a loopback port.
type testServer struct {
	t    *testing.T
	srv  *Server
	logs *servertest.LogBuffer
	cfg  Config
	base string // http://127.0.0.1:port (https with TLS)
	url  string // ws://127.0.0.1:port/stream (wss with TLS)
	http *http.Client
	// dialer and header open WebSocket connections: with the server's CA
	// under TLS and its token, if any.
	dialer *websocket.Dialer
	header http.Header
}

// startServer starts a server on 127.0.0.1:0 in a temporary data
// directory; mod may change its configuration. When the test ends, the
// server is closed and every goroutine it started must have returned.
func startServer(t *testing.T, mod func(*Config)) *testServer {
	t.Helper()
	baseline := runtime.NumGoroutine()
	logs := &servertest.LogBuffer{}
	cfg := Config{
		Host:    "127.0.0.1",
		DataDir: t.TempDir(),
		Logger:  logs.Logger(),
		Version: "test",
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{DisableKeepAlives: true}
	dialer := *websocket.DefaultDialer
	scheme := "http"
	if cfg.TLSCertFile != "" {
		transport.TLSClientConfig = &tls.Config{RootCAs: certPool(t, cfg.TLSCertFile)}
		dialer.TLSClientConfig = transport.TLSClientConfig
		scheme = "https"
	}
	header := http.Header{}
	if cfg.Token != "" {
		header.Set("Authorization", "Bearer "+cfg.Token)
	}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	ts := &testServer{t: t, srv: srv, logs: logs, cfg: srv.cfg, base: scheme + "://" + srv.Addr(),
		url: strings.Replace(scheme, "http", "ws", 1) + "://" + srv.Addr() + protocol.Path, http: client, dialer: &dialer, header: header}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkGoroutines(t, baseline)
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return ts
}

// checkGoroutines fails t if more goroutines run than before the test,
// once those that are ending have had time to.
func checkGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines still run, %d before the test:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getJSON GETs path and decodes the JSON answer into v.
func (ts *testServer) getJSON(path string, v any) {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.base+path, nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header = ts.header.Clone()
	resp, err := ts.http.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		ts.t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		ts.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// health checks that GET /health answers "ok" and returns it.
func (ts *testServer) health() protocol.Health {
	ts.t.Helper()
	var h protocol.Health
	ts.getJSON(PathHealth, &h)
	if h.Status != "ok" {
		ts.t.Fatalf("health status %q, want ok", h.Status)
	}
	return h
}

// waitIdle waits until the server holds no session.
func (ts *testServer) waitIdle() {
	ts.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.reg.count() != 0 {
		if time.Now().After(deadline) {
			ts.t.Fatalf("%d sessions still active", ts.srv.reg.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// resumeToken returns the resume token of the session id the server holds
// (what the client that started it was given), or "" when it holds none.
func (ts *testServer) resumeToken(id string) string {
	ts.srv.reg.mu.Lock()
	defer ts.srv.reg.mu.Unlock()
	if s := ts.srv.reg.sessions[id]; s != nil {
		return s.token
	}
	return ""
}

// wsClient is a test client speaking the protocol by hand.
type wsClient struct {
	t  testing.TB
	ws *websocket.Conn
}

func (ts *testServer) dial() *wsClient {
	ts.t.Helper()
	ws, resp, err := ts.dialer.Dial(ts.url, ts.header)
	if err != nil {
		ts.t.Fatalf("dial %s: %v", ts.url, err)
	}
	resp.Body.Close()
	c := &wsClient{t: ts.t, ws: ws}
	ts.t.Cleanup(func() { ws.Close() })
	return c
}

func (c *wsClient) send(m protocol.Message) {
	c.t.Helper()
	data, err := protocol.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendText(string(data))
}

func (c *wsClient) sendText(s string) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send text: %v", err)
	}
}

func (c *wsClient) sendBinary(b []byte) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("send binary: %v", err)
	}
}

// read returns the next message, or the read error.
func (c *wsClient) read() (protocol.Message, error) {
	c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	kind, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if kind != websocket.TextMessage {
		return nil, fmt.Errorf("the server sent a binary message of %d bytes", len(data))
	}
	return protocol.Decode(data)
}

func (c *wsClient) recv() protocol.Message {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	return m
}

// expect receives the next message, which must be of type M.
func expect[M protocol.Message](c *wsClient) M {
	c.t.Helper()
	m := c.recv()
	got, ok := m.(M)
	if !ok {
		var want M
		c.t.Fatalf("received %T %+v, want %s", m, m, want.MessageType())
	}
	return got
}

// expectError receives an error message with code whose message holds
// fragment.
func (c *wsClient) expectError(code protocol.ErrorCode, fragment string, recoverable bool) protocol.Error {
	c.t.Helper()
	e := expect[protocol.Error](c)
	if e.ErrorCode != code || !strings.Contains(e.ErrorMessage, fragment) || e.Recoverable != recoverable {
		c.t.Fatalf("error %s %q (recoverable %v), want %s holding %q (recoverable %v)", e.ErrorCode, e.ErrorMessage, e.Recoverable, code, fragment, recoverable)
	}
	return e
}

// expectClose reads until the server closes the connection, and returns the
// close frame's code and text; messages before it fail the test.
func (c *wsClient) expectClose() *websocket.CloseError {
	c.t.Helper()
	m, err := c.read()
	if err == nil {
		c.t.Fatalf("received %T %+v, want the connection closed", m, m)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		c.t.Fatalf("the connection ended with %v, want a close frame", err)
	}
	return ce
}

// closedLater reads, in a goroutine, every message until the connection
// ends, and delivers the close frame (nil if it ended without one).
func (c *wsClient) closedLater() <-chan *websocket.CloseError {
	ch := make(chan *websocket.CloseError, 1)
	go func() {
		for {
			_, err := c.read()
			var de *protocol.DecodeError
			if err == nil || errors.As(err, &de) {
				continue
			}
			var ce *websocket.CloseError
			errors.As(err, &ce)
			ch <- ce
			return
		}
	}()
	return ch
}

// frames makes encoded counter frames, the picture of frame i showing i.
type frames struct {
	t    testing.TB
	w, h int
}

func newFrames(t testing.TB, w, h int) *frames {
	return &frames{t: t, w: w, h: h}
}

// encode returns frame i in the encoding.
func (f *frames) encode(i int, encoding string) []byte {
	f.t.Helper()
	return videotest.EncodeCounter(f.t, i, f.w, f.h, encoding)
}

func (f *frames) jpeg(i int) []byte { return f.encode(i, protocol.EncodingJPEG) }

// startV1 opens a v1 session and returns its id.
func (c *wsClient) startV1(id string) string {
	c.t.Helper()
	c.send(protocol.SessionStart{SessionID: id, FPS: 15, Width: testWidth, Height: testHeight})
	started := expect[protocol.SessionStarted](c)
	if id != "" && started.SessionID != id {
		c.t.Fatalf("session_started for %q, want %q", started.SessionID, id)
	}
	if started.Protocol != "" || started.Window != 0 {
		c.t.Fatalf("v1 session_started %+v carries v2 fields", started)
	}
	return started.SessionID
}

// sendFrameV1 sends frame n as a v1 frame message and its payload and
// returns the ack.
func (c *wsClient) sendFrameV1(id string, n int, encoding string, payload []byte) protocol.FrameAck {
	c.t.Helper()
	c.send(protocol.Frame{SessionID: id, FrameNumber: n, Timestamp: float64(time.Now().UnixMicro()) / 1e6, Encoding: encoding, Size: len(payload)})
	c.sendBinary(payload)
	ack := expect[protocol.FrameAck](c)
	if ack.SessionID != id || ack.FrameNumber != n {
		c.t.Fatalf("frame_ack %+v, want session %s frame %d", ack, id, n)
	}
	return ack
}

// sendSignal sends the phrase log.
func (c *wsClient) sendSignal(id string, data []byte) {
	c.t.Helper()
	c.send(protocol.Signal{SessionID: id, Filename: "phrase.txt", Size: len(data)})
	c.sendBinary(data)
}

// finish reads the processing messages after signal_ack and returns the
// result; the progress must cover both stages in order, each from its
// first report to 1.
func (c *wsClient) finish(id string) map[string]any {
	c.t.Helper()
	if ack := expect[protocol.SignalAck](c); ack.SessionID != id || ack.Status != protocol.AckReceived {
		c.t.Fatalf("signal_ack %+v", ack)
	}
	return c.awaitResult(id)
}

// awaitResult reads process_start, the progress and process_complete.
func (c *wsClient) awaitResult(id string) map[string]any {
	c.t.Helper()
	if ps := expect[protocol.ProcessStart](c); ps.SessionID != id {
		c.t.Fatalf("process_start %+v", ps)
	}
	var stages []string
	last := map[string]float64{}
	for {
		switch m := c.recv().(type) {
		case protocol.ProcessProgress:
			if m.SessionID != id || m.Progress < last[m.Stage] || m.Progress > 1 {
				c.t.Fatalf("process_progress %+v after %v", m, last[m.Stage])
			}
			if len(stages) == 0 || stages[len(stages)-1] != m.Stage {
				stages = append(stages, m.Stage)
			}
			last[m.Stage] = m.Progress
		case protocol.ProcessComplete:
			if want := []string{protocol.StageVideoReconstruction, protocol.StageAnalysis}; !slices.Equal(stages, want) {
				c.t.Errorf("progress stages %q, want %q", stages, want)
			}
			for stage, p := range last {
				if p != 1 {
					c.t.Errorf("stage %s ended at progress %v, want 1", stage, p)
				}
			}
			var res map[string]any
			if err := json.Unmarshal(m.Result, &res); err != nil {
				c.t.Fatalf("result: %v in %s", err, m.Result)
			}
			if m.SessionID != id || res["session_id"] != id || res["status"] != pipeline.StatusSuccess {
				c.t.Fatalf("process_complete for %s with result %s", m.SessionID, m.Result)
			}
			return res
		default:
			c.t.Fatalf("received %T %+v while waiting for the result", m, m)
		}
	}
}

// streamV1 runs a whole v1 session of n JPEG frames on a new connection
// and returns the result.
func (ts *testServer) streamV1(id string, n int) map[string]any {
	ts.t.Helper()
	c := ts.dial()
	defer c.ws.Close()
	id = c.startV1(id)
	f := newFrames(ts.t, testWidth, testHeight)
	for i := range n {
		if ack := c.sendFrameV1(id, i, protocol.EncodingJPEG, f.jpeg(i)); ack.Status != protocol.AckReceived {
			ts.t.Fatalf("frame %d: ack %q", i, ack.Status)
		}
	}
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: n})
	if ended := expect[protocol.SessionEnded](c); ended.Validation.FrameCount != n {
		ts.t.Fatalf("session_ended %+v, want %d frames", ended, n)
	}
	c.sendSignal(id, readPhrase(ts.t, logSingleLeft))
	return c.finish(id)
}

// checkServing checks that the server still answers /health and serves a
// complete session.
func (ts *testServer) checkServing() {
	ts.t.Helper()
	ts.health()
	res := ts.streamV1("", 3)
	checkResult(ts.t, res, []int{0, 1, 2})
}

// checkResult checks a result's artifacts: result.json holds the same
// result, and the video reads back with the counter frames want in order.
func checkResult(t testing.TB, res map[string]any, want []int) {
	t.Helper()
	arts, _ := res["artifacts"].(map[string]any)
	resultPath, _ := arts["result_json"].(string)
	videoPath, _ := arts["video"].(string)
	data, err := os.ReadFile(resultPath)
	if err != nil {
		t.Fatalf("result.json: %v", err)
	}
	var saved map[string]any
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(saved)
	b, _ := json.Marshal(res)
	if !bytes.Equal(a, b) {
		t.Errorf("result.json differs from the result sent:\n%s\n%s", a, b)
	}
	if got, _ := videotest.ReadCounters(t, videoPath); !slices.Equal(got, want) {
		t.Errorf("video %s shows frames %v, want %v", videoPath, got, want)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
