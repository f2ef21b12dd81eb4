package server

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// sendFramesV2 sends frames as v2 binary messages, without waiting for
// acknowledgements (fewer than a window of them).
func (c *wsClient) sendFramesV2(f *frames, numbers ...int) {
	c.t.Helper()
	for _, n := range numbers {
		msg, err := protocol.AppendFrame(nil, protocol.FrameHeader{FrameNumber: n, TimestampMicros: time.Now().UnixMicro(), Encoding: protocol.EncodingJPEG}, f.jpeg(n))
		if err != nil {
			c.t.Fatal(err)
		}
		c.sendBinary(msg)
	}
}

// endV2 ends a v2 session and returns the last frames_ack's through.
func (c *wsClient) endV2(id string, total int) (through int, v protocol.Validation) {
	c.t.Helper()
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: total})
	for {
		switch m := c.recv().(type) {
		case protocol.FramesAck:
			through = m.Through
		case protocol.SessionEnded:
			return through, m.Validation
		default:
			c.t.Fatalf("received %T %+v, want frames_ack or session_ended", m, m)
		}
	}
}

func numbers(from, to int, skip ...int) []int {
	var out []int
	for n := from; n <= to; n++ {
		if !slicesContains(skip, n) {
			out = append(out, n)
		}
	}
	return out
}

func slicesContains(s []int, n int) bool {
	for _, x := range s {
		if x == n {
			return true
		}
	}
	return false
}

// TestResume streams half a session with a gap, drops the connection
// without a close frame, resumes on a new connection, sends what the
// server lacks and completes: the video has every frame exactly once. In
// both protocols.
func TestResume(t *testing.T) {
	for _, proto := range []string{protocol.V1, protocol.V2} {
		t.Run(proto, func(t *testing.T) {
			ts := startServer(t, func(c *Config) { c.Window = 64 })
			id := "resume-" + proto
			start := protocol.SessionStart{SessionID: id, FPS: 15, Width: testWidth, Height: testHeight, Protocol: proto}
			f := newFrames(t, testWidth, testHeight)
			first := ts.dial()
			first.send(start)
			expect[protocol.SessionStarted](first)
			sent := numbers(0, 9, 5)
			if proto == protocol.V2 {
				first.sendFramesV2(f, sent...)
				first.send(protocol.Ping{}) // the pong comes after every frame is stored
				expect[protocol.Pong](first)
			} else {
				for _, n := range sent {
					first.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n))
				}
			}
			first.ws.NetConn().Close()
			ts.logs.WaitFor(t, `msg="session disconnected"`, "session_id="+id, "client disconnected after 9 frames", "keeping the session for 1m0s to resume")
			if h := ts.health(); h.ActiveSessions != 1 {
				t.Errorf("%d active sessions while one waits to be resumed, want 1", h.ActiveSessions)
			}

			second := ts.dial()
			start.Resume, start.ResumeToken = true, ts.resumeToken(id)
			second.send(start)
			started := expect[protocol.SessionStarted](second)
			want := protocol.SessionStarted{SessionID: id, Resume: true, Have: [][2]int{{0, 4}, {6, 9}}}
			if proto == protocol.V2 {
				want.Protocol, want.Window = protocol.V2, 64
			}
			if !reflect.DeepEqual(started, want) {
				t.Fatalf("session_started %+v, want %+v", started, want)
			}
			var rest []int
			for n := range 20 {
				if !protocol.RangesContain(started.Have, n) {
					rest = append(rest, n)
				}
			}
			if proto == protocol.V2 {
				second.sendFramesV2(f, rest...)
				through, v := second.endV2(id, 20)
				if through != len(rest) || !v.Valid || v.FrameCount != 20 {
					t.Errorf("after the resume: through %d (want %d, the frames of this connection), validation %+v", through, len(rest), v)
				}
			} else {
				for _, n := range rest {
					if ack := second.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n)); ack.Status != protocol.AckReceived {
						t.Errorf("frame %d: ack %q", n, ack.Status)
					}
				}
				second.send(protocol.SessionEnd{SessionID: id, TotalFrames: 20})
				if v := expect[protocol.SessionEnded](second).Validation; !v.Valid || v.FrameCount != 20 {
					t.Errorf("validation %+v", v)
				}
			}
			second.sendSignal(id, readPhrase(t, logSingleLeft))
			checkResult(t, second.finish(id), seq(20))
			ts.logs.WaitFor(t, `msg="resumed session"`, "session_id="+id, "frames=9", "ranges=2")
			ts.logs.WaitFor(t, `msg="removed session"`, "session_id="+id, "reason=completed", "frames=20")
			if m := ts.scrape(); m["referee_sessions_resumed_total"] != 1 || m["referee_sessions_started_total"] != 1 {
				t.Errorf("resumed %v, started %v; want 1 and 1", m["referee_sessions_resumed_total"], m["referee_sessions_started_total"])
			}
		})
	}
}

// TestResumeCases: a resume of a session the server does not hold starts
// it anew; a resume with another frame size is refused; a resume while the
// old connection still looks alive takes the session over; a session not
// resumed within the grace period is removed.
func TestResumeCases(t *testing.T) {
	ts := startServer(t, shortGrace)
	f := newFrames(t, testWidth, testHeight)

	c := ts.dial()
	start := startMessage("unknown")
	start.Resume = true
	c.send(start)
	if started := expect[protocol.SessionStarted](c); !reflect.DeepEqual(started, protocol.SessionStarted{SessionID: "unknown", ResumeToken: started.ResumeToken}) {
		t.Errorf("resume of an unknown session: %+v, want a new session (resume false)", started)
	}
	c.sendFrameV1("unknown", 0, protocol.EncodingJPEG, f.jpeg(0))
	c.complete("unknown", 1)
	ts.logs.WaitFor(t, `msg="client asked to resume a session the server does not hold"`, "session_id=unknown")

	old, _ := ts.startedWithFrames("taken", 2)
	closed := old.closedLater()
	bad := ts.dial()
	wrong := protocol.SessionStart{SessionID: "taken", FPS: 15, Width: 640, Height: 480, Resume: true, ResumeToken: ts.resumeToken("taken")}
	bad.send(wrong)
	bad.expectFatal(protocol.CodeSessionStartFailed, "cannot resume session taken: it was started at 15fps 320x240, the resume asks for 15fps 640x480", websocket.CloseNormalClosure)
	taker := ts.dial()
	start = startMessage("taken")
	start.Resume, start.ResumeToken = true, ts.resumeToken("taken")
	taker.send(start)
	if started := expect[protocol.SessionStarted](taker); !started.Resume || !reflect.DeepEqual(started.Have, [][2]int{{0, 1}}) {
		t.Errorf("takeover: %+v", started)
	}
	if ce := <-closed; ce == nil || ce.Code != websocket.ClosePolicyViolation || ce.Text != "session taken resumed on another connection" {
		t.Errorf("the old connection closed with %+v", ce)
	}
	taker.sendFrameV1("taken", 2, protocol.EncodingJPEG, f.jpeg(2))
	taker.complete("taken", 3)

	gone, _ := ts.startedWithFrames("expires", 1)
	gone.ws.NetConn().Close()
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=expires", `reason="disconnected and not resumed within 200ms"`)
	late := ts.dial()
	start = startMessage("expires")
	start.Resume = true
	late.send(start)
	if started := expect[protocol.SessionStarted](late); started.Resume {
		t.Errorf("resume after the grace period: %+v, want a new session", started)
	}
	late.sendFrameV1("expires", 0, protocol.EncodingJPEG, f.jpeg(0))
	late.complete("expires", 1)
	ts.waitIdle()
	checkNoPartialArtifacts(t, ts.cfg)
}

// copyDir copies the files of the directory from into to.
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecoverAfterRestart: the spool and session.json of a session whose
// server died, its last record cut off mid-write, are found by a new
// server on the data directory: the spool is truncated to its last whole
// frame, the session waits to be resumed, and the client completes it.
// Spool directories that cannot be recovered are removed.
func TestRecoverAfterRestart(t *testing.T) {
	const id = "crashed"
	first := startServer(t, nil)
	c, f := first.startedWithFrames(id, 5)
	c.ws.NetConn().Close()
	first.logs.WaitFor(t, `msg="session disconnected"`, "session_id="+id)

	// What a crash leaves: the files as they are, the last record cut.
	dataDir := t.TempDir()
	spoolDir := filepath.Join(dataDir, "spool", id)
	copyDir(t, filepath.Join(first.cfg.DataDir, "spool", id), spoolDir)
	lastRecord := int64(spoolHeaderSize + len(f.jpeg(4)))
	path := filepath.Join(spoolDir, spoolFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	whole := info.Size() - lastRecord
	const kept = 30 // bytes of the last record that reached the disk
	if err := os.Truncate(path, whole+kept); err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]map[string]string{
		"no-meta":  {spoolFileName: ""},
		"bad-meta": {metaFileName: `{"session_id": "bad-meta", "fps": 0}`, spoolFileName: ""},
	} {
		if err := os.MkdirAll(filepath.Join(dataDir, "spool", name), 0o700); err != nil {
			t.Fatal(err)
		}
		for file, content := range files {
			if err := os.WriteFile(filepath.Join(dataDir, "spool", name, file), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	second := startServer(t, func(c *Config) { c.DataDir = dataDir })
	second.logs.WaitFor(t, `msg="truncated a spool cut off mid-write to its last whole frame"`, "session_id="+id, "cut_bytes="+strconv.Itoa(kept), "frames=4")
	second.logs.WaitFor(t, `msg="recovered session"`, "session_id="+id, "frames=4", "keep_for=1m0s")
	for _, name := range []string{"no-meta", "bad-meta"} {
		second.logs.WaitFor(t, `msg="cannot recover a session: removed its spool"`, "session_id="+name)
		if _, err := os.Stat(filepath.Join(dataDir, "spool", name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the unrecoverable spool %s is still there: %v", name, err)
		}
	}
	if info, err := os.Stat(path); err != nil || info.Size() != whole {
		t.Errorf("spool after recovery: %v, %v bytes; want %d", err, info.Size(), whole)
	}
	if used := second.srv.reg.disk.used.Load(); used != whole {
		t.Errorf("spool bytes counted %d, want %d", used, whole)
	}

	r := second.dial()
	start := startMessage(id)
	start.Resume, start.ResumeToken = true, second.resumeToken(id)
	r.send(start)
	started := expect[protocol.SessionStarted](r)
	if !started.Resume || !reflect.DeepEqual(started.Have, [][2]int{{0, 3}}) {
		t.Fatalf("session_started %+v, want resume with frames 0-3", started)
	}
	for n := 4; n < 8; n++ {
		if ack := r.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n)); ack.Status != protocol.AckReceived {
			t.Errorf("frame %d: ack %q", n, ack.Status)
		}
	}
	r.complete(id, 8)
	second.waitIdle()
	checkNoPartialArtifacts(t, second.cfg)
}

// firstGated holds the first analysis until release is closed, closing
// started when it begins; later ones run at once, so that checkServing
// works on the same server.
type firstGated struct {
	started, release chan struct{}
	calls            *atomic.Int32
	once             *sync.Once
}

func newFirstGated() firstGated {
	return firstGated{make(chan struct{}), make(chan struct{}), new(atomic.Int32), new(sync.Once)}
}

// open lets the first analysis go on; more calls do nothing.
func (a firstGated) open() { a.once.Do(func() { close(a.release) }) }

// use makes it the server's analyzer.
func (a firstGated) use(c *Config) {
	c.Analyzer = "first-gated"
	c.Analyzers = map[string]pipeline.Analyzer{"first-gated": a}
}

func (a firstGated) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	if a.calls.Add(1) == 1 {
		close(a.started)
		select {
		case <-a.release:
		case <-ctx.Done():
			return pipeline.Verdict{}, ctx.Err()
		}
	}
	return pipeline.SignalAnalyzer{}.Analyze(ctx, in, progress)
}

// processingSession streams a session of n frames in proto on a new
// connection, then session_end and the signal, up to process_start: the
// session is being processed when it returns, with the validation of
// session_ended.
func (ts *testServer) processingSession(id, proto string, n int) (*wsClient, protocol.Validation) {
	ts.t.Helper()
	c := ts.dial()
	c.send(protocol.SessionStart{SessionID: id, FPS: 15, Width: testWidth, Height: testHeight, Protocol: proto})
	expect[protocol.SessionStarted](c)
	f := newFrames(ts.t, testWidth, testHeight)
	v := c.streamAndEnd(id, proto, f, seq(n), n)
	c.sendSignal(id, readPhrase(ts.t, logSingleLeft))
	expect[protocol.SignalAck](c)
	expect[protocol.ProcessStart](c)
	return c, v
}

// streamAndEnd sends the frames in proto, then session_end with total, and
// returns the validation of session_ended.
func (c *wsClient) streamAndEnd(id, proto string, f *frames, sent []int, total int) protocol.Validation {
	c.t.Helper()
	if proto == protocol.V2 {
		c.sendFramesV2(f, sent...)
		_, v := c.endV2(id, total)
		return v
	}
	for _, n := range sent {
		if ack := c.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n)); ack.Status != protocol.AckReceived {
			c.t.Fatalf("frame %d: ack %q", n, ack.Status)
		}
	}
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: total})
	return expect[protocol.SessionEnded](c).Validation
}

// resumeEnded resumes the session id, whose frames 0..n-1 the server holds
// and which it has ended, in proto on c, and checks session_started.
func (ts *testServer) resumeEnded(c *wsClient, id, proto string, n int) {
	ts.t.Helper()
	c.send(protocol.SessionStart{SessionID: id, FPS: 15, Width: testWidth, Height: testHeight, Protocol: proto, Resume: true, ResumeToken: ts.resumeToken(id)})
	started := expect[protocol.SessionStarted](c)
	want := protocol.SessionStarted{SessionID: id, Resume: true, Have: [][2]int{{0, n - 1}}}
	if proto == protocol.V2 {
		want.Protocol, want.Window = protocol.V2, ts.cfg.Window
	}
	if !reflect.DeepEqual(started, want) {
		ts.t.Fatalf("session_started %+v, want %+v", started, want)
	}
}

// resumedResult reads what follows process_start on a connection that
// resumed a session during or after its processing: progress, then
// process_complete. It returns the result and the stages of the progress.
func (c *wsClient) resumedResult(id string) (map[string]any, []string) {
	c.t.Helper()
	var stages []string
	for {
		switch m := c.recv().(type) {
		case protocol.ProcessProgress:
			if m.SessionID != id {
				c.t.Fatalf("process_progress %+v", m)
			}
			if len(stages) == 0 || stages[len(stages)-1] != m.Stage {
				stages = append(stages, m.Stage)
			}
		case protocol.ProcessComplete:
			var res map[string]any
			if err := json.Unmarshal(m.Result, &res); err != nil {
				c.t.Fatalf("result: %v in %s", err, m.Result)
			}
			if m.SessionID != id || res["session_id"] != id || res["status"] != pipeline.StatusSuccess {
				c.t.Fatalf("process_complete for %s with result %s", m.SessionID, m.Result)
			}
			return res, stages
		default:
			c.t.Fatalf("received %T %+v while waiting for the result", m, m)
		}
	}
}

// replayEnd sends session_end and the signal again on c, which resumed
// the ended session id, and checks the answers: the validation of the
// first session_ended (with the signal now in), signal_ack, process_start.
func (c *wsClient) replayEnd(id, proto string, n int, first protocol.Validation) {
	c.t.Helper()
	v := c.streamAndEnd(id, proto, nil, nil, n)
	first.HasSignal = true
	if !reflect.DeepEqual(v, first) {
		c.t.Errorf("session_ended after the resume: %+v, want %+v", v, first)
	}
	c.sendSignal(id, readPhrase(c.t, logSingleLeft))
	if ack := expect[protocol.SignalAck](c); ack.SessionID != id || ack.Status != protocol.AckReceived {
		c.t.Fatalf("signal_ack %+v", ack)
	}
	if ps := expect[protocol.ProcessStart](c); ps.SessionID != id {
		c.t.Fatalf("process_start %+v", ps)
	}
}

// checkProcessedOnce checks that session id was processed once, completed,
// and left one artifact directory.
func (ts *testServer) checkProcessedOnce(id string) {
	ts.t.Helper()
	ts.logs.WaitFor(ts.t, `msg="removed session"`, "session_id="+id, "reason=completed", "frames=3")
	if runs := ts.logs.Lines(`msg="signal received, starting processing"`, "session_id="+id); len(runs) != 1 {
		ts.t.Errorf("session %s processed %d times, want once", id, len(runs))
	}
	if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, id+"-2")); !errors.Is(err, fs.ErrNotExist) {
		ts.t.Errorf("a second artifact directory for %s: %v", id, err)
	}
	if m := ts.scrape(); m["referee_sessions_resumed_total"] != 1 || m["referee_sessions_completed_total"] != 1 || m["referee_sessions_started_total"] != 1 {
		ts.t.Errorf("started %v, resumed %v, completed %v; want 1 each", m["referee_sessions_started_total"], m["referee_sessions_resumed_total"], m["referee_sessions_completed_total"])
	}
	ts.waitIdle()
	checkNoPartialArtifacts(ts.t, ts.cfg)
}

// TestResumeDuringProcessing: the connection is lost (or looks alive but
// another connection resumes) while the session is processed; the resume
// answers with every frame, takes session_end and the signal again without
// a second run, and the new connection gets the rest of the progress and
// the result. v1 and v2.
func TestResumeDuringProcessing(t *testing.T) {
	for _, tc := range []struct {
		name, proto string
		takeover    bool
	}{
		{"v1", protocol.V1, false},
		{"v2", protocol.V2, false},
		{"v1_takeover", protocol.V1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := newFirstGated()
			ts := startServer(t, gate.use)
			t.Cleanup(gate.open) // before Close, when the test stops early
			id := "processing-" + strings.ReplaceAll(tc.name, "_", "-")
			old, first := ts.processingSession(id, tc.proto, 3)
			<-gate.started
			var oldClosed <-chan *websocket.CloseError
			if tc.takeover {
				oldClosed = old.closedLater()
			} else {
				old.ws.NetConn().Close()
				ts.logs.WaitFor(t, `msg="connection lost during processing"`, "session_id="+id, "keeping the session until processing ends, then for 1m0s to resume")
			}
			if h := ts.health(); h.ActiveSessions != 1 {
				t.Errorf("%d active sessions while one is processed for a lost client, want 1", h.ActiveSessions)
			}

			c := ts.dial()
			ts.resumeEnded(c, id, tc.proto, 3)
			ts.logs.WaitFor(t, `msg="resumed during processing"`, "session_id="+id, "frames=3", "ranges=1")
			if tc.takeover {
				if ce := <-oldClosed; ce == nil || ce.Code != websocket.ClosePolicyViolation || ce.Text != "session "+id+" resumed on another connection" {
					t.Errorf("the old connection closed with %+v", ce)
				}
			}
			c.replayEnd(id, tc.proto, 3, first)
			gate.open()
			res, stages := c.resumedResult(id)
			if want := []string{protocol.StageAnalysis}; !slices.Equal(stages, want) {
				t.Errorf("progress stages after the resume %q, want %q", stages, want)
			}
			checkResult(t, res, seq(3))
			ts.checkProcessedOnce(id)
			ts.checkServing()
		})
	}
}

// TestResumeAfterProcessing: the connection is lost once processing has
// begun, and processing ends before the client resumes: the session is kept
// with its result (its spool dropped), the resume answers with every frame,
// and after session_end and the signal again the result comes from
// result.json, with no second run. v1 and v2.
func TestResumeAfterProcessing(t *testing.T) {
	for _, proto := range []string{protocol.V1, protocol.V2} {
		t.Run(proto, func(t *testing.T) {
			gate := newFirstGated()
			ts := startServer(t, gate.use)
			t.Cleanup(gate.open) // before Close, when the test stops early
			id := "processed-" + proto
			old, first := ts.processingSession(id, proto, 3)
			<-gate.started
			old.ws.NetConn().Close()
			ts.logs.WaitFor(t, `msg="connection lost during processing"`, "session_id="+id)
			gate.open()
			ts.logs.WaitFor(t, `msg="processing complete while no client waits for the result; keeping the session to resume"`, "session_id="+id, "keep_for=1m0s")
			if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "spool", id)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the spool of a processed session is still there: %v", err)
			}
			if used := ts.srv.reg.disk.used.Load(); used != 0 {
				t.Errorf("spool bytes counted %d after processing, want 0", used)
			}
			if h := ts.health(); h.ActiveSessions != 1 {
				t.Errorf("%d active sessions while a result waits for its client, want 1", h.ActiveSessions)
			}

			c := ts.dial()
			ts.resumeEnded(c, id, proto, 3)
			ts.logs.WaitFor(t, `msg="resumed after processing; sending the stored result"`, "session_id="+id, "frames=3")
			c.replayEnd(id, proto, 3, first)
			res, stages := c.resumedResult(id)
			if len(stages) != 0 {
				t.Errorf("progress %q with a stored result, want none", stages)
			}
			checkResult(t, res, seq(3))
			ts.checkProcessedOnce(id)
			ts.checkServing()
		})
	}
}

// checkNothingActive checks that /health, /streaming/stats and the
// sessions_active metric count no session, as when every result has been
// delivered.
func (ts *testServer) checkNothingActive() {
	ts.t.Helper()
	if h := ts.health(); h.ActiveSessions != 0 {
		ts.t.Errorf("/health: %d active sessions once the results are delivered, want 0", h.ActiveSessions)
	}
	var st protocol.Stats
	ts.getJSON(PathStats, &st)
	if st.ActiveSessions != 0 || len(st.Sessions) != 0 {
		ts.t.Errorf("/streaming/stats: %d active sessions %v once the results are delivered, want none", st.ActiveSessions, st.Sessions)
	}
	if m := ts.scrape(); m["referee_sessions_active"] != 0 {
		ts.t.Errorf("referee_sessions_active %v once the results are delivered, want 0", m["referee_sessions_active"])
	}
}

// held reports whether the registry still holds a session with id.
func (ts *testServer) held(id string) bool {
	ts.srv.reg.mu.Lock()
	defer ts.srv.reg.mu.Unlock()
	return ts.srv.reg.sessions[id] != nil
}

// TestResumeAfterDelivery: the result is sent on the live connection, but
// the client resumes as if the connection had been lost before it read it:
// the session is kept, delivered, with every frame in its index; the resume
// answers with them, and after session_end and the signal again the result
// comes from result.json, with no second run. Meanwhile the delivered
// session counts as active nowhere. v1 and v2.
func TestResumeAfterDelivery(t *testing.T) {
	for _, proto := range []string{protocol.V1, protocol.V2} {
		t.Run(proto, func(t *testing.T) {
			ts := startServer(t, nil)
			id := "delivered-" + proto
			c, first := ts.processingSession(id, proto, 3)
			res, _ := c.resumedResult(id)
			checkResult(t, res, seq(3))
			ts.logs.WaitFor(t, `msg="removed session"`, "session_id="+id, "reason=completed", "frames=3", "active=0")
			if !ts.held(id) {
				t.Fatalf("session %s not kept after its result was sent", id)
			}
			if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "spool", id)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the spool of a delivered session is still there: %v", err)
			}
			if used := ts.srv.reg.disk.used.Load(); used != 0 {
				t.Errorf("spool bytes counted %d after delivery, want 0", used)
			}
			ts.checkNothingActive()

			r := ts.dial()
			ts.resumeEnded(r, id, proto, 3)
			ts.logs.WaitFor(t, `msg="resumed after processing; sending the stored result"`, "session_id="+id, "frames=3")
			r.replayEnd(id, proto, 3, first)
			again, stages := r.resumedResult(id)
			if len(stages) != 0 {
				t.Errorf("progress %q with a stored result, want none", stages)
			}
			if !reflect.DeepEqual(again, res) {
				t.Errorf("result after the resume %v, want the one first sent %v", again, res)
			}
			ts.checkProcessedOnce(id)
			if m := ts.scrape(); m["referee_processing_duration_seconds_count"] != 1 {
				t.Errorf("%v processing runs, want 1", m["referee_processing_duration_seconds_count"])
			}
			if removed := ts.logs.Lines(`msg="removed session"`, "session_id="+id); len(removed) != 1 {
				t.Errorf("%d \"removed session\" lines for %s, want 1: %q", len(removed), id, removed)
			}
			if ts.held(id) {
				t.Errorf("session %s still held after its result was sent again", id)
			}
		})
	}
}

// TestNewSessionAfterDelivery: a session_start without resume for the id of
// a delivered session, on the same connection as the v1 guide's client
// does, drops it and starts afresh; the first run's artifacts stay where
// they are, under the key <id>, and the new phrase takes <id>-2. Delivered sessions do not count toward the session limit.
func TestNewSessionAfterDelivery(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSessions = 1 })
	const id = "reused"
	c, f := ts.startedWithFrames(id, 2)
	c.complete(id, 2)
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id="+id, "reason=completed", "frames=2")
	checkResult(t, ts.streamV1("other", 2), seq(2))
	ts.checkNothingActive()

	c.startV1(id)
	for n := range 3 {
		if ack := c.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n)); ack.Status != protocol.AckReceived {
			t.Fatalf("frame %d: ack %q", n, ack.Status)
		}
	}
	c.complete(id, 3)
	ts.logs.WaitFor(t, `msg="dropped the delivered result kept for a resume: a new session starts with its id"`, "session_id="+id)
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id="+id, "reason=completed", "frames=3")
	for key, frames := range map[string]float64{id: 2, id + "-2": 3} {
		var res map[string]any
		if data, err := os.ReadFile(filepath.Join(ts.cfg.OutputDir, key, pipeline.ResultFileName)); err != nil {
			t.Errorf("no result under the key %s: %v", key, err)
		} else if err := json.Unmarshal(data, &res); err != nil {
			t.Error(err)
		} else if got := res["video"].(map[string]any)["frames"]; got != frames {
			t.Errorf("the phrase under the key %s has %v frames, want %v", key, got, frames)
		}
	}
	if m := ts.scrape(); m["referee_processing_duration_seconds_count"] != 3 || m["referee_sessions_completed_total"] != 3 || m["referee_sessions_started_total"] != 3 {
		t.Errorf("processing runs %v, completed %v, started %v; want 3 each", m["referee_processing_duration_seconds_count"], m["referee_sessions_completed_total"], m["referee_sessions_started_total"])
	}
	ts.waitIdle()
	checkNoPartialArtifacts(t, ts.cfg)
}

// TestDeliveredResultExpires: a delivered session not resumed within the
// grace period is dropped with a debug line, not a second "removed
// session"; a resume after that starts the session anew.
func TestDeliveredResultExpires(t *testing.T) {
	ts := startServer(t, shortGrace)
	const id = "expiring"
	checkResult(t, ts.streamV1(id, 2), seq(2))
	ts.logs.WaitFor(t, `msg="dropped the delivered result kept for a resume"`, "session_id="+id, `reason="result delivered; not resumed within 200ms"`)
	if removed := ts.logs.Lines(`msg="removed session"`, "session_id="+id); len(removed) != 1 {
		t.Errorf("%d \"removed session\" lines, want 1: %q", len(removed), removed)
	}
	if ts.held(id) {
		t.Errorf("session %s still held after the grace period", id)
	}
	c := ts.dial()
	start := startMessage(id)
	start.Resume = true
	c.send(start)
	if started := expect[protocol.SessionStarted](c); started.Resume {
		t.Errorf("resume after the grace period: %+v, want a new session", started)
	}
}
