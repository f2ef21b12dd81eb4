package server

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// The tests of this file are hostile clients written against the wire with
// gorilla/websocket (wsClient), never with the project's client: each one
// tries what issue 12 found, and checks the exact refusal, that a victim's
// session beside it completes with every frame, and that the server's
// goroutines, file descriptors, heap and log stay within stated bounds.

// usage is what the bounds of a hostile test are measured on.
type usage struct {
	goroutines int
	fds        int
	heap       uint64 // bytes of live heap after a GC
	logBytes   int
}

// measure returns the process's usage now; the server runs in the test's
// process, so the figures include the test's own, which stay small.
func (ts *testServer) measure() usage {
	ts.t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		ts.t.Fatalf("count the open files: %v", err)
	}
	return usage{goroutines: runtime.NumGoroutine(), fds: len(fds), heap: ms.HeapAlloc, logBytes: len(ts.logs.String())}
}

// bounds are the most a hostile test lets usage grow from its start.
type bounds struct {
	goroutines int
	fds        int
	heapMB     int
	logBytes   int
}

// within fails the test when usage grew past b since before.
func (ts *testServer) within(before usage, b bounds) {
	ts.t.Helper()
	after := ts.measure()
	if d := after.goroutines - before.goroutines; d > b.goroutines {
		ts.t.Errorf("goroutines grew by %d (%d to %d), the bound is %d", d, before.goroutines, after.goroutines, b.goroutines)
	}
	if d := after.fds - before.fds; d > b.fds {
		ts.t.Errorf("open files grew by %d (%d to %d), the bound is %d", d, before.fds, after.fds, b.fds)
	}
	if after.heap > before.heap && after.heap-before.heap > uint64(b.heapMB)<<20 {
		ts.t.Errorf("live heap grew by %.1f MB, the bound is %d MB", float64(after.heap-before.heap)/(1<<20), b.heapMB)
	}
	if d := after.logBytes - before.logBytes; d > b.logBytes {
		ts.t.Errorf("the log grew by %d bytes, the bound is %d", d, b.logBytes)
	}
}

// victim is a well-behaved v1 client streaming beside a hostile one.
type victim struct {
	c     *wsClient
	id    string
	token string
	f     *frames
	sent  int
}

// startVictim opens a v1 session id and sends n frames, each acked
// received.
func (ts *testServer) startVictim(id string, n int) *victim {
	ts.t.Helper()
	c := ts.dial()
	c.send(startMessage(id))
	started := expect[protocol.SessionStarted](c)
	if started.SessionID != id || started.ResumeToken == "" {
		ts.t.Fatalf("session_started %+v, want session %s with a resume token", started, id)
	}
	v := &victim{c: c, id: id, token: started.ResumeToken, f: newFrames(ts.t, testWidth, testHeight)}
	v.frames(n)
	return v
}

// frames sends n more frames, each acked received.
func (v *victim) frames(n int) {
	v.c.t.Helper()
	for range n {
		if ack := v.c.sendFrameV1(v.id, v.sent, protocol.EncodingJPEG, v.f.jpeg(v.sent)); ack.Status != protocol.AckReceived {
			v.c.t.Fatalf("victim's frame %d: ack %q", v.sent, ack.Status)
		}
		v.sent++
	}
}

// complete ends the victim's session and checks that its video holds every
// frame sent, in order.
func (v *victim) complete() map[string]any {
	v.c.t.Helper()
	v.c.send(protocol.SessionEnd{SessionID: v.id, TotalFrames: v.sent})
	if ended := expect[protocol.SessionEnded](v.c); ended.Validation.FrameCount != v.sent || !ended.Validation.Valid {
		v.c.t.Fatalf("victim's session_ended %+v, want %d frames, valid", ended, v.sent)
	}
	v.c.sendSignal(v.id, readPhrase(v.c.t, logSingleLeft))
	res := v.c.finish(v.id)
	checkResult(v.c.t, res, seq(v.sent))
	return res
}

// TestHostileResumeHijack (issue 12, 1): a stranger who read a session's
// id, frame rate and size from /streaming/stats asks to resume it, without
// the resume token and with a made-up one. Both are refused, and the live
// session goes on untouched on its own connection; the token is never in
// the stats. The owner, after a real loss of connection, resumes with its
// token.
func TestHostileResumeHijack(t *testing.T) {
	ts := startServer(t, nil)
	before := ts.measure()
	v := ts.startVictim("victim", 3)

	_, _, stats := ts.request("GET", PathStats, "")
	if !strings.Contains(string(stats), `"victim"`) || strings.Contains(string(stats), v.token) {
		t.Fatalf("/streaming/stats: %s; want the session, never its resume token", stats)
	}
	for _, tc := range []struct{ token, want string }{
		{"", "cannot resume session victim without the session's resume token: a resume must send the resume_token of the session_started that began the session; the session goes on untouched"},
		{strings.Repeat("A", len(v.token)), "cannot resume session victim with a wrong resume token: a resume must send the resume_token of the session_started that began the session; the session goes on untouched"},
	} {
		hijacker := ts.dial()
		start := startMessage("victim")
		start.Resume, start.ResumeToken = true, tc.token
		hijacker.send(start)
		if e := hijacker.expectError(protocol.CodeSessionStartFailed, tc.want, false); e.ErrorMessage != tc.want {
			t.Errorf("refusal %q, want %q", e.ErrorMessage, tc.want)
		}
		if ce := hijacker.expectClose(); ce.Code != websocket.CloseNormalClosure {
			t.Errorf("hijacker's connection closed with %d, want %d", ce.Code, websocket.CloseNormalClosure)
		}
		// Nor can the stranger abort it or send it frames: it has no session.
		abort := ts.dial()
		abort.send(protocol.SessionAbort{SessionID: "victim", Reason: "hijack"})
		abort.expectFatal(protocol.CodeNoActiveSession, "session_abort before session_start", websocket.ClosePolicyViolation)
	}

	// The victim's connection was never touched: it goes on, then loses
	// its link and resumes with its token.
	v.frames(2)
	v.c.ws.NetConn().Close()
	ts.logs.WaitFor(t, `msg="session disconnected"`, "session_id=victim")
	v.c = ts.dial()
	start := startMessage("victim")
	start.Resume, start.ResumeToken = true, v.token
	v.c.send(start)
	if started := expect[protocol.SessionStarted](v.c); !started.Resume || fmt.Sprint(started.Have) != "[[0 4]]" || started.ResumeToken != "" {
		t.Fatalf("owner's resume: %+v, want resume true, have [[0 4]], no token", started)
	}
	v.frames(2)
	v.complete()
	if lines := ts.logs.Lines(`msg="sent error"`, "code=SESSION_START_FAILED"); len(lines) != 2 {
		t.Errorf("%d SESSION_START_FAILED lines, want 2: %q", len(lines), lines)
	}
	if strings.Contains(ts.logs.String(), v.token) {
		t.Error("the resume token is in the server's log")
	}
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 20 << 10})
	ts.checkServing()
}
