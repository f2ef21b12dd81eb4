package server

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// dialFrom opens a WebSocket connection from the loopback address ip
// (127.0.0.2: another client as far as the server can tell).
func (ts *testServer) dialFrom(ip string) *wsClient {
	ts.t.Helper()
	d := *ts.dialer
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nd.DialContext(ctx, network, addr)
	}
	ws, resp, err := d.Dial(ts.url, ts.header)
	if err != nil {
		ts.t.Fatalf("dial %s from %s: %v", ts.url, ip, err)
	}
	resp.Body.Close()
	ts.t.Cleanup(func() { ws.Close() })
	return &wsClient{t: ts.t, ws: ws}
}

// dropAfterFrames starts session id with n frames and drops its
// connection without a close frame, as a client that crashed does.
func (ts *testServer) dropAfterFrames(id string, n int) {
	ts.t.Helper()
	c, _ := ts.startedWithFrames(id, n)
	c.ws.NetConn().Close()
	ts.logs.WaitFor(ts.t, `msg="session disconnected"`, "session_id="+id)
}

// TestRerunSameID: a client written for the Python service uses one
// session id for every phrase and knows nothing of resume. When it leaves
// mid-stream and runs again, its session_start (no resume) from the same
// address replaces the session held for it: logged, its spool dropped, a
// new session with a new token that completes. A client elsewhere gets
// the refusal, with or without "resume", and the held session is
// untouched. A resume without a token from the same address is treated
// the same way as the rerun, frames or not.
func TestRerunSameID(t *testing.T) {
	ts := startServer(t, nil)
	const id = "my_session"
	ts.dropAfterFrames(id, 2)
	oldToken := ts.resumeToken(id)

	stranger := ts.dialFrom("127.0.0.2")
	stranger.send(startMessage(id))
	stranger.expectFatal(protocol.CodeSessionStartFailed, "session my_session already exists", websocket.CloseNormalClosure)
	stranger = ts.dialFrom("127.0.0.2")
	start := startMessage(id)
	start.Resume = true
	stranger.send(start)
	stranger.expectFatal(protocol.CodeSessionStartFailed, "cannot resume session my_session without the session's resume token", websocket.CloseNormalClosure)
	ts.srv.reg.mu.Lock()
	held := ts.srv.reg.sessions[id]
	ts.srv.reg.mu.Unlock()
	if held == nil || held.spool.Count() != 2 || ts.resumeToken(id) != oldToken {
		t.Fatal("a client from another address touched the held session")
	}

	rerun := ts.dial()
	rerun.send(startMessage(id))
	started := expect[protocol.SessionStarted](rerun)
	if started.Resume || started.Have != nil || started.ResumeToken == "" || started.ResumeToken == oldToken {
		t.Fatalf("session_started %+v, want a new session with a new token", started)
	}
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id="+id,
		`reason="replaced by a new session_start without resume from the address of the client that left it (127.0.0.1): starting afresh, its 2 frames dropped"`)
	f := newFrames(t, testWidth, testHeight)
	for n := range 3 {
		if ack := rerun.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n)); ack.Status != protocol.AckReceived {
			t.Fatalf("frame %d: ack %q", n, ack.Status)
		}
	}
	rerun.complete(id, 3)

	// The rule issue 12 made for a client that never read its token, now
	// the same as a rerun's: a resume without a token from the address.
	ts.dropAfterFrames("again", 2)
	again := ts.dial()
	start = startMessage("again")
	start.Resume = true
	again.send(start)
	if started := expect[protocol.SessionStarted](again); started.Resume || started.Have != nil {
		t.Fatalf("session_started %+v, want a new session", started)
	}
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=again",
		`reason="replaced by a resume without a token from the address of the client that left it (127.0.0.1): starting afresh, its 2 frames dropped"`)
	f2 := newFrames(t, testWidth, testHeight)
	again.sendFrameV1("again", 0, protocol.EncodingJPEG, f2.jpeg(0))
	again.complete("again", 1)
	ts.waitIdle()
	checkNoPartialArtifacts(t, ts.cfg)
}

// TestRerunNeverReplacesProcessing: a held session whose phrase is being
// processed, or holds its result, is refused to a rerun from the very
// address of its client; the result goes to the client that resumes it
// with its token, and its artifacts stay where they are.
func TestRerunNeverReplacesProcessing(t *testing.T) {
	analyzer := gatedAnalyzer{make(chan struct{}), make(chan struct{})}
	ts := startServer(t, func(c *Config) {
		c.Analyzer = "gated"
		c.Analyzers = map[string]pipeline.Analyzer{"gated": analyzer}
	})
	const id = "busy"
	c, _ := ts.startedWithFrames(id, 2)
	token := ts.resumeToken(id)
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: 2})
	expect[protocol.SessionEnded](c)
	c.sendSignal(id, readPhrase(t, logSingleLeft))
	expect[protocol.SignalAck](c)
	<-analyzer.started
	c.ws.NetConn().Close()
	ts.logs.WaitFor(t, `msg="connection lost during processing"`, "session_id="+id)

	refused := func(when string) {
		t.Helper()
		r := ts.dial()
		r.send(startMessage(id))
		r.expectFatal(protocol.CodeSessionStartFailed, "session busy already exists", websocket.CloseNormalClosure)
		r = ts.dial()
		start := startMessage(id)
		start.Resume = true
		r.send(start)
		r.expectFatal(protocol.CodeSessionStartFailed, "cannot resume session busy without the session's resume token", websocket.CloseNormalClosure)
		if lines := ts.logs.Lines("replaced by"); len(lines) > 0 {
			t.Errorf("%s: a rerun replaced the session: %s", when, lines[0])
		}
	}
	refused("during processing")
	close(analyzer.release)
	ts.logs.WaitFor(t, `msg="processing complete while no client waits for the result; keeping the session to resume"`, "session_id="+id)
	refused("holding its result")

	r := ts.dial()
	start := startMessage(id)
	start.Resume, start.ResumeToken = true, token
	r.send(start)
	if started := expect[protocol.SessionStarted](r); !started.Resume {
		t.Fatalf("resume with the token: %+v", started)
	}
	r.send(protocol.SessionEnd{SessionID: id, TotalFrames: 2})
	expect[protocol.SessionEnded](r)
	r.sendSignal(id, readPhrase(t, logSingleLeft))
	expect[protocol.SignalAck](r)
	expect[protocol.ProcessStart](r)
	var res map[string]any
	if err := json.Unmarshal(expect[protocol.ProcessComplete](r).Result, &res); err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, seq(2))
	if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, id, pipeline.ResultFileName)); err != nil {
		t.Errorf("the result is not where it was written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, id+".1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the artifacts moved: %v", err)
	}
}
