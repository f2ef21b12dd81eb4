package server

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// TestStreamV1 is the seed's "Expected Behavior" on protocol v1 exactly as
// documented: every message in order, the result, its artifacts and the
// server's log.
func TestStreamV1(t *testing.T) {
	ts := startServer(t, nil)
	const id, n = "20251106_170116_phrase04", 10
	c := ts.dial()
	c.startV1(id)
	f := newFrames(t, testWidth, testHeight)
	for i := range n {
		if ack := c.sendFrameV1(id, i, protocol.EncodingJPEG, f.jpeg(i)); ack.Status != protocol.AckReceived {
			t.Fatalf("frame %d: ack %q", i, ack.Status)
		}
	}
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: n})
	ended := expect[protocol.SessionEnded](c)
	want := protocol.Validation{Valid: true, Issues: []string{}, FrameCount: n}
	if ended.SessionID != id || !reflect.DeepEqual(ended.Validation, want) {
		t.Errorf("session_ended %+v, want validation %+v", ended, want)
	}
	c.sendSignal(id, readPhrase(t, logSingleLeft))
	res := c.finish(id)

	if res["winner"] != "left" {
		t.Errorf("winner %v, want left (only the left light came on)", res["winner"])
	}
	stats, _ := res["streaming_stats"].(map[string]any)
	if stats["frames_received"] != float64(n) || stats["protocol"] != protocol.V1 || stats["has_signal"] != true || stats["completed"] != true {
		t.Errorf("streaming_stats %v", stats)
	}
	outDir, _ := filepath.Abs(ts.cfg.OutputDir)
	if res["artifact_dir"] != filepath.Join(outDir, id) {
		t.Errorf("artifact_dir %v, want %s", res["artifact_dir"], filepath.Join(outDir, id))
	}
	checkResult(t, res, seq(n))

	for _, msg := range []string{"created session", "received frame", "session ended", "signal received, starting processing", "processing complete", "removed session"} {
		ts.logs.WaitFor(t, `msg="`+msg+`"`, "session_id="+id)
	}
	ts.logs.WaitFor(t, `msg="created session"`, "active=1")
	ts.logs.WaitFor(t, `msg="received frame"`, "frame=0", "total=1", "memory_mb=")
	ts.logs.WaitFor(t, `msg="session ended"`, "frames=10")
	ts.logs.WaitFor(t, `msg="removed session"`, "reason=completed", "frames=10", "active=0")
	for _, line := range ts.logs.Lines(id) {
		if !strings.Contains(line, "session_id="+id) {
			t.Errorf("a log line names the session but has no session_id attribute: %s", line)
		}
	}
	if n := len(ts.logs.Lines(`msg="removed session"`)); n != 1 {
		t.Errorf("%d lines say why the session ended, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "spool", id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the spool of a processed session is still there: %v", err)
	}

	// The connection outlives the session.
	c.send(protocol.Ping{})
	expect[protocol.Pong](c)
	if h := ts.health(); h.ActiveSessions != 0 {
		t.Errorf("%d active sessions after the result, want 0", h.ActiveSessions)
	}
}

// TestStreamV1Validation sends frames out of order, twice and with a gap:
// each is acknowledged as what it is, session_ended counts them, and the
// video holds each received frame once, in order.
func TestStreamV1Validation(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial()
	id := c.startV1("")
	if !protocol.ValidSessionID(id) || !strings.Contains(id, "_phrase") {
		t.Errorf("generated session id %q, want one like 20251106_170116_phrase04", id)
	}
	f := newFrames(t, testWidth, testHeight)
	for _, step := range []struct {
		n      int
		status string
	}{{0, protocol.AckReceived}, {2, protocol.AckReceived}, {1, protocol.AckReceived}, {1, protocol.AckDuplicate}, {4, protocol.AckReceived}} {
		if ack := c.sendFrameV1(id, step.n, protocol.EncodingJPEG, f.jpeg(step.n)); ack.Status != step.status {
			t.Errorf("frame %d: ack %q, want %q", step.n, ack.Status, step.status)
		}
	}
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: 5})
	ended := expect[protocol.SessionEnded](c)
	want := protocol.Validation{
		Valid:            false,
		Issues:           []string{"missing frames: 1", "duplicate frames: 1", "out-of-order frames: 1", "the client reported 5 frames, the server holds 4"},
		FrameCount:       4,
		MissingFrames:    1,
		DuplicateFrames:  1,
		OutOfOrderFrames: 1,
	}
	if !reflect.DeepEqual(ended.Validation, want) {
		t.Errorf("validation %+v, want %+v", ended.Validation, want)
	}
	c.sendSignal(id, readPhrase(t, logDouble))
	res := c.finish(id)
	if res["winner"] != "undecided" {
		t.Errorf("winner %v, want undecided for a double touch", res["winner"])
	}
	checkResult(t, res, []int{0, 1, 2, 4})
}

// TestStreamV2 streams binary v2 frames in all three encodings with a
// bounded window: the server acknowledges cumulatively and often enough
// that a client keeping the window full never stalls.
func TestStreamV2(t *testing.T) {
	const window, n = 8, 40
	ts := startServer(t, func(c *Config) { c.Window = window })
	c := ts.dial()
	const id = "v2-session"
	c.send(protocol.SessionStart{SessionID: id, FPS: 25, Width: testWidth, Height: testHeight, Protocol: protocol.V2})
	started := expect[protocol.SessionStarted](c)
	if !reflect.DeepEqual(started, protocol.SessionStarted{SessionID: id, Protocol: protocol.V2, Window: window, ResumeToken: started.ResumeToken}) || started.ResumeToken == "" {
		t.Fatalf("session_started %+v", started)
	}
	f := newFrames(t, testWidth, testHeight)
	encodingOf := func(i int) string {
		switch i % 5 {
		case 3:
			return protocol.EncodingPNG
		case 4:
			return protocol.EncodingRaw
		}
		return protocol.EncodingJPEG
	}
	sent, acked, acks := 0, 0, 0
	ack := func(m protocol.FramesAck) {
		t.Helper()
		if m.SessionID != id || m.Through <= acked || m.Through > sent {
			t.Fatalf("frames_ack %+v with %d acknowledged and %d sent", m, acked, sent)
		}
		acked = m.Through
		acks++
	}
	for sent < n {
		if sent-acked >= window {
			ack(expect[protocol.FramesAck](c))
			continue
		}
		msg, err := protocol.AppendFrame(nil, protocol.FrameHeader{FrameNumber: sent, TimestampMicros: time.Now().UnixMicro(), Encoding: encodingOf(sent)}, f.encode(sent, encodingOf(sent)))
		if err != nil {
			t.Fatal(err)
		}
		c.sendBinary(msg)
		sent++
	}
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: n})
	var ended protocol.SessionEnded
	for done := false; !done; {
		switch m := c.recv().(type) {
		case protocol.FramesAck:
			ack(m)
		case protocol.SessionEnded:
			ended, done = m, true
		default:
			t.Fatalf("received %T %+v, want frames_ack or session_ended", m, m)
		}
	}
	if acked != n {
		t.Errorf("acknowledged through %d before session_ended, want %d", acked, n)
	}
	if acks > n/(window/4)+1 {
		t.Errorf("%d frames_ack messages for %d frames, want one per %d frames", acks, n, window/4)
	}
	if !ended.Validation.Valid || ended.Validation.FrameCount != n {
		t.Errorf("validation %+v", ended.Validation)
	}
	c.sendSignal(id, readPhrase(t, logSingleLeft))
	res := c.finish(id)
	if stats, _ := res["streaming_stats"].(map[string]any); stats["protocol"] != protocol.V2 {
		t.Errorf("streaming_stats %v, want protocol v2", stats)
	}
	checkResult(t, res, seq(n))
}

// TestStreamUnknownProtocol: a protocol the server does not know is
// answered as v1, which a client then speaks.
func TestStreamUnknownProtocol(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial()
	c.send(protocol.SessionStart{SessionID: "v9", FPS: 15, Width: testWidth, Height: testHeight, Protocol: "v9"})
	if started := expect[protocol.SessionStarted](c); !reflect.DeepEqual(started, protocol.SessionStarted{SessionID: "v9", ResumeToken: started.ResumeToken}) || started.ResumeToken == "" {
		t.Fatalf("session_started %+v, want a v1 answer", started)
	}
	f := newFrames(t, testWidth, testHeight)
	if ack := c.sendFrameV1("v9", 0, protocol.EncodingJPEG, f.jpeg(0)); ack.Status != protocol.AckReceived {
		t.Fatalf("ack %q", ack.Status)
	}
}

// TestDisconnectDuringProcessing: once the signal is in, processing
// finishes even if the client goes; the session waits with its result for
// the resume grace period, then is removed as completed, the result in the
// artifact directory. A resume after that starts the session anew.
func TestDisconnectDuringProcessing(t *testing.T) {
	// The analysis waits until the server has seen the client go: were it
	// quicker, process_complete could be written into the dying
	// connection's socket before the server noticed, and count as sent.
	gate := newFirstGated()
	ts := startServer(t, func(c *Config) { shortGrace(c); gate.use(c) })
	t.Cleanup(gate.open)
	c := ts.dial()
	id := c.startV1("gone")
	f := newFrames(t, testWidth, testHeight)
	for i := range 3 {
		c.sendFrameV1(id, i, protocol.EncodingJPEG, f.jpeg(i))
	}
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: 3})
	expect[protocol.SessionEnded](c)
	c.sendSignal(id, readPhrase(t, logSingleLeft))
	<-gate.started
	c.ws.Close()
	ts.logs.WaitFor(t, `msg="connection lost during processing"`, "session_id=gone")
	gate.open()
	result := filepath.Join(ts.cfg.OutputDir, id, pipeline.ResultFileName)
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=gone", `reason="completed; the result was not sent (not resumed within 200ms): it is in `+result+`"`)
	if _, err := os.Stat(result); err != nil {
		t.Errorf("no result.json after the client left during processing: %v", err)
	}
	if m := ts.scrape(); m["referee_sessions_completed_total"] != 1 {
		t.Errorf("completed %v, want 1", m["referee_sessions_completed_total"])
	}
	late := ts.dial()
	start := startMessage(id)
	start.Resume = true
	late.send(start)
	if started := expect[protocol.SessionStarted](late); started.Resume {
		t.Errorf("resume after the grace period: %+v, want a new session", started)
	}
	for i := range 3 {
		late.sendFrameV1(id, i, protocol.EncodingJPEG, f.jpeg(i))
	}
	late.complete(id, 3)
	ts.checkServing()
}

// TestShutdownEndsSessions: Shutdown closes a streaming session's
// connection with a close frame that says why and logs it.
func TestShutdownEndsSessions(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial()
	id := c.startV1("streaming")
	f := newFrames(t, testWidth, testHeight)
	c.sendFrameV1(id, 0, protocol.EncodingJPEG, f.jpeg(0))
	closed := c.closedLater()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if ce := <-closed; ce == nil || ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
		t.Errorf("close %+v, want %d \"server shutting down\"", ce, websocket.CloseGoingAway)
	}
	ts.logs.WaitFor(t, `msg="kept session on disk for recovery at the next start"`, "session_id=streaming", `reason="server shutting down"`, "frames=1")
	if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "spool", id, spoolFileName)); err != nil {
		t.Errorf("the spool of a session streaming at shutdown is gone: %v", err)
	}
	if _, err := ts.http.Get(ts.base + PathHealth); err == nil {
		t.Error("the server still answers after Shutdown")
	}
}

// gatedAnalyzer waits until release is closed, then decides on the signal.
type gatedAnalyzer struct{ started, release chan struct{} }

func (a gatedAnalyzer) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	close(a.started)
	select {
	case <-a.release:
	case <-ctx.Done():
		return pipeline.Verdict{}, ctx.Err()
	}
	return pipeline.SignalAnalyzer{}.Analyze(ctx, in, progress)
}

// TestGracefulShutdown: Shutdown refuses new connections (503; /readyz
// says it drains, /health is 200), closes a
// streaming session's connection and an idle one at once with 1001
// "server shutting down" keeping the session's spool for the next start,
// lets the session being processed finish and deliver its result, then
// closes its connection the same way.
func TestGracefulShutdown(t *testing.T) {
	analyzer := gatedAnalyzer{make(chan struct{}), make(chan struct{})}
	ts := startServer(t, func(c *Config) {
		c.Analyzer = "gated"
		c.Analyzers = map[string]pipeline.Analyzer{"gated": analyzer}
	})
	busy, _ := ts.startedWithFrames("busy", 2)
	busy.send(protocol.SessionEnd{SessionID: "busy", TotalFrames: 2})
	expect[protocol.SessionEnded](busy)
	busy.sendSignal("busy", readPhrase(t, logSingleLeft))
	expect[protocol.SignalAck](busy)
	<-analyzer.started
	live, _ := ts.startedWithFrames("live", 3)
	idle := ts.dial()
	liveClosed, idleClosed := live.closedLater(), idle.closedLater()

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shutdown <- ts.srv.Shutdown(ctx)
	}()
	for name, ch := range map[string]<-chan *websocket.CloseError{"streaming": liveClosed, "idle": idleClosed} {
		if ce := <-ch; ce == nil || ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
			t.Errorf("%s connection closed with %+v, want 1001 \"server shutting down\"", name, ce)
		}
	}
	ts.logs.WaitFor(t, `msg="kept session on disk for recovery at the next start"`, "session_id=live", "frames=3")
	if _, resp, err := websocket.DefaultDialer.Dial(ts.url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new connection during the shutdown: %v, want 503", err)
	}
	ts.checkReady("draining", http.StatusServiceUnavailable, "draining: the server is shutting down, finishing the sessions being processed")
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a session was being processed", err)
	default:
	}

	close(analyzer.release)
	res := busy.awaitResult("busy")
	checkResult(t, res, seq(2))
	if ce := busy.expectClose(); ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
		t.Errorf("the processed session's connection closed with %d %q", ce.Code, ce.Text)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=busy", "reason=completed")
	if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "spool", "live", spoolFileName)); err != nil {
		t.Errorf("the streaming session's spool is gone: %v", err)
	}
}

// blockingAnalyzer blocks until processing is cancelled.
type blockingAnalyzer struct{ started chan struct{} }

func (a blockingAnalyzer) Analyze(ctx context.Context, _ pipeline.AnalysisInput, _ func(float64, string)) (pipeline.Verdict, error) {
	close(a.started)
	<-ctx.Done()
	return pipeline.Verdict{}, ctx.Err()
}

// TestShutdownCancelsProcessing: Shutdown cancels the processing still
// running when its deadline passes, says so, and leaves no artifacts that
// look complete.
func TestShutdownCancelsProcessing(t *testing.T) {
	started := make(chan struct{})
	ts := startServer(t, func(c *Config) {
		c.Analyzer = "blocking"
		c.Analyzers = map[string]pipeline.Analyzer{"blocking": blockingAnalyzer{started}}
	})
	c := ts.dial()
	id := c.startV1("processing")
	f := newFrames(t, testWidth, testHeight)
	c.sendFrameV1(id, 0, protocol.EncodingJPEG, f.jpeg(0))
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: 1})
	expect[protocol.SessionEnded](c)
	c.sendSignal(id, readPhrase(t, logSingleLeft))
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the analysis never started")
	}
	closed := c.closedLater()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "processing cancelled") {
		t.Fatalf("Shutdown returned %v, want the deadline error saying processing was cancelled", err)
	}
	if ce := <-closed; ce == nil || ce.Code != websocket.CloseGoingAway {
		t.Errorf("close %+v, want %d", ce, websocket.CloseGoingAway)
	}
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=processing", "reason=\"processing failed: analysis:", "server shutting down")
	if _, err := os.Stat(filepath.Join(ts.cfg.OutputDir, id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cancelled run left its artifact directory: %v", err)
	}
}

// failOnce fails the first phrase it analyses and decides the others on
// the signal, like the built-in analyzer.
type failOnce struct{ calls *atomic.Int32 }

func (a failOnce) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	if a.calls.Add(1) == 1 {
		return pipeline.Verdict{}, errors.New("the analyzer found no fencers")
	}
	return pipeline.SignalAnalyzer{}.Analyze(ctx, in, progress)
}
