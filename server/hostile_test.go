package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
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
	ts.t.Logf("grew by: goroutines %+d, open files %+d, live heap %+.1f MB, log %+d bytes",
		after.goroutines-before.goroutines, after.fds-before.fds, (float64(after.heap)-float64(before.heap))/(1<<20), after.logBytes-before.logBytes)
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

// TestHostileBadFrames (issue 12, 2): a truncated JPEG, a garbage body
// closed by FF D9 and a PNG with a cut data chunk are each refused on
// receipt (ack "error", the reason), so the phrase never fails for them;
// sent again whole, they are taken and the video holds every frame. A
// frame damaged on the server's disk after its ack is left out at
// processing, reported in the result's validation, and the rest of the
// phrase is processed.
func TestHostileBadFrames(t *testing.T) {
	ts := startServer(t, nil)
	before := ts.measure()
	v := ts.startVictim("badframes", 2)
	jpg := v.f.jpeg(2)
	png := v.f.encode(2, protocol.EncodingPNG)
	for _, tc := range []struct {
		name, encoding string
		payload        []byte
		want           string
	}{
		{"truncated JPEG", protocol.EncodingJPEG, jpg[:len(jpg)-100], "frame 2 rejected: not a readable jpeg picture: cut off in a scan: no end-of-image marker (FF D9)"},
		{"garbage closed by FF D9", protocol.EncodingJPEG, garbageScan(jpg), fmt.Sprintf("frame 2 rejected: not a readable jpeg picture: unsupported marker FF 13 at byte %d (only baseline and extended sequential 8-bit JPEG are accepted)", len(garbageScan(jpg))-61)},
		{"PNG with a cut data chunk", protocol.EncodingPNG, cutIDAT(t, png), "frame 2 rejected: not a readable png picture: "},
	} {
		v.c.send(protocol.Frame{SessionID: v.id, FrameNumber: 2, Encoding: tc.encoding, Size: len(tc.payload)})
		v.c.sendBinary(tc.payload)
		e := v.c.expectError(protocol.CodeFrameProcessingFailed, tc.want, true)
		if tc.encoding == protocol.EncodingJPEG && e.ErrorMessage != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, e.ErrorMessage, tc.want)
		}
		if ack := expect[protocol.FrameAck](v.c); ack.Status != protocol.AckError {
			t.Errorf("%s: ack %q, want error", tc.name, ack.Status)
		}
	}
	v.frames(3)
	res := v.complete()
	if val, _ := res["validation"].(map[string]any); val["unreadable_frames"] != 0.0 || val["frame_count"] != 5.0 {
		t.Errorf("result validation %v, want 5 frames, 0 unreadable", res["validation"])
	}

	// A frame damaged on disk after it was acknowledged.
	d := ts.startVictim("damaged", 4)
	d.c.ws.NetConn().Close()
	ts.logs.WaitFor(t, `msg="session disconnected"`, "session_id=damaged")
	ts.srv.reg.mu.Lock()
	sp := ts.srv.reg.sessions["damaged"].spool
	ts.srv.reg.mu.Unlock()
	sp.mu.Lock()
	offset := sp.index[1].offset + spoolHeaderSize + 10
	sp.mu.Unlock()
	file, err := os.OpenFile(sp.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt([]byte{0x55, 0xAA}, offset); err != nil {
		t.Fatal(err)
	}
	file.Close()
	d.c = ts.dial()
	start := startMessage("damaged")
	start.Resume, start.ResumeToken = true, d.token
	d.c.send(start)
	expect[protocol.SessionStarted](d.c)
	d.c.send(protocol.SessionEnd{SessionID: "damaged", TotalFrames: 4})
	expect[protocol.SessionEnded](d.c)
	d.c.sendSignal("damaged", readPhrase(t, logSingleLeft))
	res = d.c.finish("damaged")
	checkResult(t, res, []int{0, 2, 3})
	val, _ := res["validation"].(map[string]any)
	if val["unreadable_frames"] != 1.0 || val["frame_count"] != 3.0 || val["valid"] != false || !strings.Contains(fmt.Sprint(val["issues"]), "unreadable frames left out of the video: 1 (frames 1)") {
		t.Errorf("result validation %v, want frame 1 unreadable, 3 frames", val)
	}
	ts.logs.WaitFor(t, `msg="left frames that cannot be read out of the video"`, "session_id=damaged", "unreadable=1", "frames=[1]")
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 30 << 10})
	ts.checkServing()
}

// garbageScan is the JPEG's headers up to its scan's, then garbage closed
// by FF D9 in place of the scan's data.
func garbageScan(jpg []byte) []byte {
	sos := bytes.Index(jpg, []byte{0xFF, 0xDA})
	end := sos + 2 + (int(jpg[sos+2])<<8 | int(jpg[sos+3]))
	return append(append(bytes.Clone(jpg[:end]), bytes.Repeat([]byte{0x10, 0xFF, 0x13}, 20)...), 0xFF, 0xD9)
}

// sendV2 sends one v2 frame message: the header, then payload.
func (c *wsClient) sendV2(n int, encoding string, payload []byte) {
	c.t.Helper()
	msg, err := protocol.AppendFrame(nil, protocol.FrameHeader{FrameNumber: n, Encoding: encoding}, payload)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendBinary(msg)
}

// startV2 opens a v2 session id.
func (c *wsClient) startV2(id string) {
	c.t.Helper()
	c.send(protocol.SessionStart{SessionID: id, FPS: 15, Width: testWidth, Height: testHeight, Protocol: protocol.V2})
	expect[protocol.SessionStarted](c)
}

// TestHostileMemory (issue 12, 5): a frame of the size limit that is no
// picture grows the connection's buffer to the limit at most and is given
// back after it (the stats' memory returns to what the sessions hold); a
// picture over the pixel limit is refused before it is decoded; and with
// the memory limit low, the frame that would pass it ends the hostile
// session with LIMIT_EXCEEDED while the victim completes.
func TestHostileMemory(t *testing.T) {
	const frameLimit = 4 << 20
	stats := func(ts *testServer) protocol.Stats {
		var st protocol.Stats
		ts.getJSON(PathStats, &st)
		return st
	}
	t.Run("buffer given back", func(t *testing.T) {
		ts := startServer(t, func(c *Config) { c.MaxFrameBytes = frameLimit })
		before := ts.measure()
		v := ts.startVictim("victim", 2)
		h := ts.dial()
		h.startV2("hostile")
		idle := stats(ts).TotalMemoryMB
		h.sendV2(0, protocol.EncodingJPEG, bytes.Repeat([]byte{0xFF}, frameLimit))
		h.expectError(protocol.CodeFrameProcessingFailed, "frame 0 rejected: not a readable jpeg picture: ", true)
		h.sendV2(1, protocol.EncodingJPEG, resized(v.f.jpeg(1), 9000, 9000))
		h.expectError(protocol.CodeFrameProcessingFailed, "frame 1 rejected: the picture is 9000x9000, over the limit of 8294400 pixels and 8192 a side (max frame pixels)", true)
		h.send(protocol.Ping{})
		expect[protocol.Pong](h)
		st := stats(ts)
		t.Logf("total_memory_mb %v before and after the outsized frame, hostile session %v", idle, st.Sessions["hostile"].MemoryMB)
		// Two sessions: two spool buffers (1 MiB), two connections (80 KiB
		// and a message buffer of 64 KiB, or 1 MiB kept for frames).
		if st.TotalMemoryMB != idle || st.TotalMemoryMB > 4.5 {
			t.Errorf("total_memory_mb %v after the outsized frame, %v before; want the same, at most 4.5", st.TotalMemoryMB, idle)
		}
		if ss := st.Sessions["hostile"]; ss.MemoryMB <= 1 || ss.MemoryMB > 2.2 {
			t.Errorf("hostile session's memory_mb %v, want its spool and connection buffers, 1 to 2.2", ss.MemoryMB)
		}
		v.frames(2)
		v.complete()
		ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 12, logBytes: 20 << 10})
	})
	t.Run("memory limit", func(t *testing.T) {
		ts := startServer(t, func(c *Config) { c.MaxFrameBytes = frameLimit; c.MaxMemoryMB = 4 })
		v := ts.startVictim("victim", 2)
		h := ts.dial()
		h.startV2("hostile")
		h.sendV2(0, protocol.EncodingJPEG, bytes.Repeat([]byte{0xFF}, frameLimit))
		e := h.expectError(protocol.CodeLimitExceeded, "memory limit reached: a message of more than ", false)
		if !strings.Contains(e.ErrorMessage, "of its 4 MB (max streaming memory MB); try again when sessions have ended") {
			t.Errorf("refusal %q does not name the limit", e.ErrorMessage)
		}
		if ce := h.expectClose(); ce.Code != websocket.CloseMessageTooBig {
			t.Errorf("close %d, want %d", ce.Code, websocket.CloseMessageTooBig)
		}
		v.frames(2)
		v.complete()
		if st := stats(ts); st.TotalMemoryMB > 1.5 {
			t.Errorf("total_memory_mb %v once the hostile connection is gone, want the victim's connection at most", st.TotalMemoryMB)
		}
	})
}

// TestHostileStartValidation (issue 12, 8): session_starts that used to be
// accepted and fail only after the whole stream are refused at once with
// INVALID_MESSAGE naming the field; a victim beside them completes.
func TestHostileStartValidation(t *testing.T) {
	ts := startServer(t, nil)
	before := ts.measure()
	v := ts.startVictim("victim", 2)
	for _, tc := range []struct {
		fps           float64
		width, height int
		want          string
	}{
		{0.005, 320, 240, "fps 0.005: want 1 to 240 frames per second (0 is what OpenCV reports for a video it cannot read)"},
		{241, 320, 240, "fps 241: want 1 to 240 frames per second (0 is what OpenCV reports for a video it cannot read)"},
		{30, 16384, 16384, "width 16384: want 1 to 8192 pixels (0 is what OpenCV reports for a video it cannot read)"},
		{30, 640, 9000, "height 9000: want 1 to 8192 pixels (0 is what OpenCV reports for a video it cannot read)"},
		{30, 8192, 8192, "width and height 8192x8192: 67108864 pixels, over the 8294400-pixel limit (max frame pixels)"},
	} {
		c := ts.dial()
		c.send(protocol.SessionStart{SessionID: "bad", FPS: tc.fps, Width: tc.width, Height: tc.height})
		if e := c.expectError(protocol.CodeInvalidMessage, tc.want, false); e.ErrorMessage != tc.want {
			t.Errorf("refusal %q, want %q", e.ErrorMessage, tc.want)
		}
		if ce := c.expectClose(); ce.Code != websocket.ClosePolicyViolation {
			t.Errorf("close %d, want %d", ce.Code, websocket.ClosePolicyViolation)
		}
		// The bound below is for the server's files: the test's own end
		// of a refused connection is not one of them.
		c.ws.Close()
	}
	c := ts.dial()
	c.send(protocol.SessionStart{SessionID: "uhd", FPS: 240, Width: 3840, Height: 2160})
	expect[protocol.SessionStarted](c)
	v.frames(2)
	v.complete()
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 10, logBytes: 20 << 10})
}

// upload posts the video of n counter frames and a phrase log to POST
// /analyze in a goroutine; the channel delivers the status and body.
func (ts *testServer) upload(n int) <-chan uploadAnswer {
	ts.t.Helper()
	videoPath := filepath.Join(ts.t.TempDir(), "phrase.avi")
	videotest.WriteCounterVideo(ts.t, videoPath, "", 15, n, testWidth, testHeight)
	video, err := os.ReadFile(videoPath)
	if err != nil {
		ts.t.Fatal(err)
	}
	contentType, body := multipartBody(ts.t, []part{{"video", "phrase.avi", string(video)}, {"signal", "phrase.txt", string(readPhrase(ts.t, logSingleLeft))}})
	out := make(chan uploadAnswer, 1)
	go func() {
		resp, err := ts.http.Post(ts.base+PathAnalyze, contentType, body)
		if err != nil {
			out <- uploadAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		out <- uploadAnswer{status: resp.StatusCode, body: data, err: err}
	}()
	return out
}

// uploadAnswer is the answer to a POST /analyze.
type uploadAnswer struct {
	status int
	body   []byte
	err    error
}

// TestHostileIDCollision (issue 12, 3): while an upload is analysed, a
// stream that starts with the upload's id (generated in the same style,
// so guessable) is refused, and one with a generated id gets another; the
// upload completes in its own directory, which nothing moved.
func TestHostileIDCollision(t *testing.T) {
	gate := newFirstGated()
	ts := startServer(t, gate.use)
	t.Cleanup(gate.open)
	before := ts.measure()
	answer := ts.upload(5)
	<-gate.started
	ts.srv.reg.mu.Lock()
	var id string
	for id = range ts.srv.reg.uploads {
	}
	ts.srv.reg.mu.Unlock()

	h := ts.dial()
	h.send(startMessage(id))
	want := "session " + id + " is taken by an upload being analysed (POST /analyze); use another session_id"
	if e := h.expectError(protocol.CodeSessionStartFailed, want, false); e.ErrorMessage != want {
		t.Errorf("refusal %q, want %q", e.ErrorMessage, want)
	}
	generated := ts.dial()
	if got := generated.startV1(""); got == id {
		t.Errorf("a generated stream id is the upload's %s", id)
	}
	generated.ws.Close()
	gate.open()
	a := <-answer
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("upload: %d %s %v", a.status, a.body, a.err)
	}
	var res map[string]any
	if err := json.Unmarshal(a.body, &res); err != nil {
		t.Fatal(err)
	}
	if res["session_id"] != id || res["artifact_dir"] != filepath.Join(ts.cfg.OutputDir, id) {
		t.Errorf("upload result for %v in %v, want %s in its own directory", res["session_id"], res["artifact_dir"], id)
	}
	checkResult(t, res, seq(5))
	if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, id+"-2")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the upload's directory was moved aside: %v", err)
	}
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 20 << 10})
	ts.checkServing()
}

// TestHostileSlots (issue 12, 4): ten connections that start a session,
// send a frame and drop hold no session slot (limit 2): only the two
// newest are kept for a resume, the rest are dropped and logged; a victim
// starts and completes.
func TestHostileSlots(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSessions, c.MaxHeldPerAddr = 2, 2 })
	before := ts.measure()
	for i := range 10 {
		id := fmt.Sprintf("held%d", i)
		h := ts.dial()
		h.startV1(id)
		h.sendFrameV1(id, 0, protocol.EncodingJPEG, newFrames(t, testWidth, testHeight).jpeg(0))
		h.ws.NetConn().Close()
		ts.logs.WaitFor(t, `msg="session disconnected"`, "session_id="+id)
	}
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=held7")
	dropped := ts.logs.Lines(`msg="removed session"`, `reason="dropped to make room: 127.0.0.1 holds more than 2 sessions waiting to be resumed (max held sessions per address)"`)
	if len(dropped) != 8 || ts.srv.reg.count() != 2 || !ts.held("held8") || !ts.held("held9") {
		t.Errorf("%d held sessions dropped (want 8), %d held (want 2: held8 and held9)", len(dropped), ts.srv.reg.count())
	}
	v := ts.startVictim("victim", 3)
	v.complete()
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 40 << 10})
	ts.checkServing()
}

// TestHostileIdleConnections (issue 12, 8): sixteen connections that never
// start a session fill an address's connection places; the 429 says why,
// and after the idle connection timeout they are closed, saying why, so
// the victim behind the same address gets in and completes; its own
// connection is closed the same way once its session is over.
func TestHostileIdleConnections(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.IdleConnTimeout = idleTimeout })
	before := ts.measure()
	var idlers []*wsClient
	for range ts.cfg.MaxConnsPerAddr {
		idlers = append(idlers, ts.dial())
	}
	_, resp, err := ts.dialer.Dial(ts.url, ts.header)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the 17th connection: %v, want 429", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if want := `"error_message":"too many connections from 127.0.0.1: 16 open, the limit is 16 (max connections per address); close one or try again later"`; !strings.Contains(string(body), want) {
		t.Errorf("429 body %s, want %s", body, want)
	}
	want := "no session for " + idleTimeout.String() + " (idle connection timeout)"
	for _, c := range idlers {
		if ce := c.expectClose(); ce.Code != websocket.ClosePolicyViolation || ce.Text != want {
			t.Errorf("idle connection closed with %d %q, want %d %q", ce.Code, ce.Text, websocket.ClosePolicyViolation, want)
		}
		c.ws.Close()
	}
	// The server uncounts a connection once it has seen it go.
	var v *victim
	for deadline := time.Now().Add(5 * time.Second); ; {
		ws, resp, err := ts.dialer.Dial(ts.url, ts.header)
		if err == nil {
			ws.Close()
			v = ts.startVictim("victim", 3)
			break
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after the idle connections were closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.complete()
	if ce := v.c.expectClose(); ce.Code != websocket.ClosePolicyViolation || ce.Text != want {
		t.Errorf("the victim's connection, its session over, closed with %d %q, want %d %q", ce.Code, ce.Text, websocket.ClosePolicyViolation, want)
	}
	if n := len(ts.logs.Lines(`msg="closed an idle connection"`)); n != ts.cfg.MaxConnsPerAddr+1 {
		t.Errorf("%d idle connections closed, want %d", n, ts.cfg.MaxConnsPerAddr+1)
	}
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 40 << 10})
	ts.checkServing()
}

// TestHostileLogFlood (issue 12, 6): one connection sends 3000 messages of
// an unknown type and 1000 frames that are no pictures as fast as it can.
// Each is answered and counted in the metrics, but the log keeps the first
// few of each kind and a count of the rest; a victim completes.
func TestHostileLogFlood(t *testing.T) {
	const unknown, bad = 3000, 1000
	ts := startServer(t, nil)
	before := ts.measure()
	v := ts.startVictim("victim", 2)
	h := ts.dial()
	h.startV1("flood")
	replies := make(chan int, 1)
	go func() {
		n := 0
		for n < unknown+2*bad {
			if _, err := h.read(); err != nil {
				var de *protocol.DecodeError
				if !errors.As(err, &de) {
					break
				}
			}
			n++
		}
		replies <- n
	}()
	for i := range unknown {
		h.sendText(fmt.Sprintf(`{"type":"hello%d"}`, i))
	}
	garbage := bytes.Repeat([]byte{0xFF, 0xD8, 0x00}, 100)
	for i := range bad {
		h.send(protocol.Frame{SessionID: "flood", FrameNumber: i, Encoding: protocol.EncodingJPEG, Size: len(garbage)})
		h.sendBinary(garbage)
	}
	if n := <-replies; n != unknown+2*bad {
		t.Fatalf("%d replies, want %d (an error per message, an ack per frame)", n, unknown+2*bad)
	}
	m := ts.scrape()
	if m[`referee_errors_sent_total{code="UNKNOWN_MESSAGE_TYPE"}`] != unknown || m[`referee_errors_sent_total{code="FRAME_PROCESSING_FAILED"}`] != bad {
		t.Errorf("metrics count %v unknown types and %v refused frames, want %d and %d", m[`referee_errors_sent_total{code="UNKNOWN_MESSAGE_TYPE"}`], m[`referee_errors_sent_total{code="FRAME_PROCESSING_FAILED"}`], unknown, bad)
	}
	h.ws.Close()
	ts.logs.WaitFor(t, `msg="log lines left out"`, "session_id=flood", `kind="error UNKNOWN_MESSAGE_TYPE"`, fmt.Sprintf("count=%d", unknown-logBurst))
	ts.logs.WaitFor(t, `msg="log lines left out"`, "session_id=flood", `kind="error FRAME_PROCESSING_FAILED"`, fmt.Sprintf("count=%d", bad-logBurst))
	if lines := ts.logs.Lines(`msg="sent error"`, "session_id=flood"); len(lines) != 2*logBurst {
		t.Errorf("%d \"sent error\" lines for the flood, want %d", len(lines), 2*logBurst)
	}
	v.frames(2)
	v.complete()
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 24 << 10})
}

// uploadGate is an analyzer that holds the analysis of uploads (their
// videos have uploadFrames frames) until release is closed, and lets
// streamed phrases through.
type uploadGate struct {
	started chan struct{}
	release chan struct{}
}

const uploadFrames = 5

func newUploadGate() uploadGate {
	return uploadGate{make(chan struct{}, 16), make(chan struct{})}
}

func (g uploadGate) use(c *Config) {
	c.Analyzer = "upload-gate"
	c.Analyzers = map[string]pipeline.Analyzer{"upload-gate": g}
}

func (g uploadGate) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	if in.Frames == uploadFrames {
		g.started <- struct{}{}
		select {
		case <-g.release:
		case <-ctx.Done():
			return pipeline.Verdict{}, ctx.Err()
		}
	}
	return pipeline.SignalAnalyzer{}.Analyze(ctx, in, progress)
}

// refused checks that an upload was answered status with the JSON error
// message want.
func refused(t *testing.T, a uploadAnswer, status int, want string) {
	t.Helper()
	var e protocol.Error
	if a.err != nil || a.status != status || json.Unmarshal(a.body, &e) != nil || e.ErrorMessage != want || e.ErrorCode != protocol.CodeLimitExceeded {
		t.Errorf("upload answered %d %s (%v), want %d %q", a.status, a.body, a.err, status, want)
	}
}

// TestHostileUploads (issue 12, 7): uploads are bounded per address, in
// total and in the queue for a worker, each refusal saying which; a slow
// body is cut at the upload timeout; and a streamed phrase is processed at
// once while uploads hold and wait for the workers.
func TestHostileUploads(t *testing.T) {
	waitQueued := func(ts *testServer, n int) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ts.srv.workers.mu.Lock()
			q := len(ts.srv.workers.queued)
			ts.srv.workers.mu.Unlock()
			if q == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d uploads queued, want %d", q, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Run("per address, and streams first", func(t *testing.T) {
		gate := newUploadGate()
		ts := startServer(t, func(c *Config) { gate.use(c); c.ProcessingWorkers, c.MaxUploadsPerAddr, c.MaxQueuedUploads = 2, 2, 1 })
		before := ts.measure()
		first := ts.upload(uploadFrames)
		<-gate.started
		second := ts.upload(uploadFrames)
		waitQueued(ts, 1)
		refused(t, <-ts.upload(uploadFrames), http.StatusTooManyRequests, "too many uploads from 127.0.0.1: 2 in progress, the limit is 2 (max uploads per address); wait for one to finish")
		// The streamed phrase takes the worker uploads may not.
		ts.startVictim("victim", 3).complete()
		select {
		case a := <-first:
			t.Fatalf("the first upload was answered (%d) before its analysis was let go", a.status)
		default:
		}
		close(gate.release)
		for _, a := range []uploadAnswer{<-first, <-second} {
			if a.status != http.StatusOK {
				t.Errorf("upload: %d %s %v", a.status, a.body, a.err)
			}
		}
		ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 30 << 10})
	})
	t.Run("queue full", func(t *testing.T) {
		gate := newUploadGate()
		ts := startServer(t, func(c *Config) { gate.use(c); c.ProcessingWorkers, c.MaxUploadsPerAddr, c.MaxQueuedUploads = 2, 3, 1 })
		first := ts.upload(uploadFrames)
		<-gate.started
		second := ts.upload(uploadFrames)
		waitQueued(ts, 1)
		refused(t, <-ts.upload(uploadFrames), http.StatusServiceUnavailable, "analysis queue full: 1 uploads wait for a worker, the limit is 1 (max queued uploads); try again later")
		close(gate.release)
		<-first
		<-second
		checkNoPartialArtifacts(t, ts.cfg)
	})
	t.Run("total", func(t *testing.T) {
		gate := newUploadGate()
		ts := startServer(t, func(c *Config) { gate.use(c); c.MaxUploads = 1 })
		first := ts.upload(uploadFrames)
		<-gate.started
		refused(t, <-ts.upload(uploadFrames), http.StatusServiceUnavailable, "too many uploads at once: 1 in progress, the limit is 1 (max uploads); try again later")
		close(gate.release)
		<-first
	})
	t.Run("slowloris", func(t *testing.T) {
		ts := startServer(t, func(c *Config) { c.UploadTimeout = 300 * time.Millisecond })
		before := ts.measure()
		conn, err := net.Dial("tcp", ts.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: referee\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.avi\"\r\n\r\n", PathAnalyze)
		began := time.Now()
		answered := make(chan string, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				answered <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			answered <- fmt.Sprintf("%d %s", resp.StatusCode, body)
		}()
		var got string
	trickle:
		for {
			select {
			case got = <-answered:
				break trickle
			case <-time.After(50 * time.Millisecond):
				conn.Write([]byte("x")) // one byte at a time, never the whole body
			}
		}
		want := `"error_code":"LIMIT_EXCEEDED","error_message":"the upload was not received within 300ms (upload timeout): send it over a faster link, or ask for a longer --upload-timeout","recoverable":false}`
		if !strings.HasPrefix(got, "408 ") || !strings.Contains(got, want) {
			t.Errorf("slow upload answered %q, want %q", got, want)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("the slow upload was answered after %s, the upload timeout is 300ms", took)
		}
		conn.Close()
		ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 10, logBytes: 10 << 10})
		checkNoPartialArtifacts(t, ts.cfg)
		ts.checkServing()
	})
}

// TestHostileSilentClose (issue 13, review): a client that never answers
// the server's close frame, nor reads anything, does not hold its
// connection: whether the server closes it for idling without a session
// or for a protocol violation, the server sends its close frame, waits
// closeGrace for the answer and drops the TCP connection. The server
// keeps serving.
func TestHostileSilentClose(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.IdleConnTimeout = idleTimeout })
	before := ts.measure()
	for _, tc := range []struct {
		name   string
		send   func(c *wsClient)
		reason string // the close frame's text
	}{
		{"idle", func(*wsClient) {}, "no session for " + idleTimeout.String() + " (idle connection timeout)"},
		{"violation", func(c *wsClient) { c.send(protocol.SessionEnd{SessionID: "x"}) }, string(protocol.CodeNoActiveSession)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial()
			tc.send(c)
			// Read the raw bytes, never the WebSocket: gorilla would
			// answer the close frame.
			raw := c.ws.NetConn()
			raw.SetReadDeadline(time.Now().Add(closeGrace + 20*time.Second))
			var got []byte
			var first time.Time
			buf := make([]byte, 4096)
			var err error
			for {
				var n int
				n, err = raw.Read(buf)
				if n > 0 && first.IsZero() {
					first = time.Now()
				}
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			waited := time.Since(first)
			if first.IsZero() || !bytes.Contains(got, []byte(tc.reason)) {
				t.Fatalf("the connection ended with %v after %q, want a close frame with %q", err, got, tc.reason)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the connection ended with %v, want the server to drop it (EOF or reset)", err)
			}
			if waited < closeGrace/2 || waited > closeGrace+5*time.Second {
				t.Errorf("the server dropped the connection %s after its close frame, want about closeGrace (%s)", waited, closeGrace)
			}
		})
	}
	ts.within(before, bounds{goroutines: 10, fds: 10, heapMB: 20, logBytes: 20 << 10})
	ts.checkServing()
}
