package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// phraseGate is an analyzer that holds each analysis until the test sends
// on release: nil lets the signal analyzer give the verdict, an error
// fails the analysis with it.
type phraseGate struct {
	started chan struct{}
	release chan error
}

func newPhraseGate() phraseGate {
	return phraseGate{make(chan struct{}, 4), make(chan error)}
}

func (g phraseGate) use(c *Config) {
	c.Analyzer = "phrase-gate"
	c.Analyzers = map[string]pipeline.Analyzer{"phrase-gate": g}
}

func (g phraseGate) Analyze(ctx context.Context, in pipeline.AnalysisInput, progress func(float64, string)) (pipeline.Verdict, error) {
	g.started <- struct{}{}
	select {
	case err := <-g.release:
		if err != nil {
			return pipeline.Verdict{}, err
		}
	case <-ctx.Done():
		return pipeline.Verdict{}, ctx.Err()
	}
	return pipeline.SignalAnalyzer{}.Analyze(ctx, in, progress)
}

// awaitAnalysis waits until the gate holds an analysis.
func (g phraseGate) awaitAnalysis(t *testing.T) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(20 * time.Second):
		t.Fatal("no analysis started within 20s")
	}
}

// holdSpool takes the lock of the spool of session id, as a disk write
// that does not return would hold it, and returns the session and the
// function that lets the lock go (also called when the test ends).
func (ts *testServer) holdSpool(id string) (*session, func()) {
	ts.t.Helper()
	ts.srv.reg.mu.Lock()
	s := ts.srv.reg.sessions[id]
	ts.srv.reg.mu.Unlock()
	if s == nil {
		ts.t.Fatalf("the server holds no session %s", id)
	}
	s.spool.mu.Lock()
	var once sync.Once
	release := func() { once.Do(s.spool.mu.Unlock) }
	ts.t.Cleanup(release)
	return s, release
}

// awaitStateUnlocked waits until s is in state want with s.mu free. It
// fails when s.mu stays held for 5s: a change of state that waits on the
// spool, and so on the disk, under s.mu.
func awaitStateUnlocked(t *testing.T, s *session, want sessionState) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s.mu.TryLock() {
			state := s.state
			s.mu.Unlock()
			if state == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not in state %d with its lock free 5s after its change began, while its spool is busy: the change waits on the disk under s.mu", s.id, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// startsPromptly starts session id on a new connection and fails t unless
// session_started comes within 5s: the registry's lock, which takes every
// session's lock to count the live ones, does not wait on a spool.
func (ts *testServer) startsPromptly(id string) {
	ts.t.Helper()
	began := time.Now()
	ts.dial().startV1(id)
	if d := time.Since(began); d > 5*time.Second {
		ts.t.Errorf("session %s started after %s while another session's spool was busy, want within 5s", id, d)
	}
}

// endPhrase sends session_end and the signal of session id, whose n frames
// were sent, and reads session_ended and signal_ack.
func endPhrase(t *testing.T, c *wsClient, id string, n int) {
	t.Helper()
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: n})
	if ended := expect[protocol.SessionEnded](c); ended.Validation.FrameCount != n {
		t.Fatalf("session_ended %+v, want %d frames", ended, n)
	}
	c.sendSignal(id, readPhrase(t, logSingleLeft))
	if ack := expect[protocol.SignalAck](c); ack.Status != protocol.AckReceived {
		t.Fatalf("signal_ack %+v", ack)
	}
}

// TestStateChangesNeverWaitOnSpool (issue 13, review): while a session's
// spool is busy (its lock held, as by a disk write that does not return),
// each change of state that then touches the spool (a result delivered,
// whose spool is dropped; a client gone, whose spool is parked; a failed
// processing, whose spool is parked) still happens and leaves the
// session's lock free, and other sessions start at once. A delivered
// session is replaced by a new one with its id only once its spool is gone.
func TestStateChangesNeverWaitOnSpool(t *testing.T) {
	gate := newPhraseGate()
	ts := startServer(t, gate.use)
	f := newFrames(t, testWidth, testHeight)

	t.Run("delivered", func(t *testing.T) {
		a := ts.dial()
		a.startV1("done")
		a.sendFrameV1("done", 0, protocol.EncodingJPEG, f.jpeg(0))
		a.sendFrameV1("done", 1, protocol.EncodingJPEG, f.jpeg(1))
		endPhrase(t, a, "done", 2)
		gate.awaitAnalysis(t)
		s, release := ts.holdSpool("done")
		gate.release <- nil
		awaitStateUnlocked(t, s, stateProcessed)
		ts.startsPromptly("other-1")
		b := ts.dial()
		b.send(startMessage("done"))
		b.expectError(protocol.CodeSessionStartFailed, "session done already exists", false)
		release()
		if res := a.awaitResult("done"); res["session_id"] != "done" {
			t.Errorf("result for %v, want done", res["session_id"])
		}
		ts.dial().startV1("done")
		ts.logs.WaitFor(t, `msg="dropped the delivered result kept for a resume: a new session starts with its id"`, "session_id=done")
	})

	t.Run("disconnected", func(t *testing.T) {
		e := ts.dial()
		e.startV1("left")
		e.sendFrameV1("left", 0, protocol.EncodingJPEG, f.jpeg(0))
		s, release := ts.holdSpool("left")
		e.ws.NetConn().Close()
		awaitStateUnlocked(t, s, stateDisconnected)
		ts.startsPromptly("other-2")
		release()
		ts.logs.WaitFor(t, `msg="session disconnected"`, "session_id=left")
	})

	t.Run("failed", func(t *testing.T) {
		g := ts.dial()
		g.startV1("failing")
		g.sendFrameV1("failing", 0, protocol.EncodingJPEG, f.jpeg(0))
		endPhrase(t, g, "failing", 1)
		gate.awaitAnalysis(t)
		s, release := ts.holdSpool("failing")
		gate.release <- errors.New("the analysis broke")
		awaitStateUnlocked(t, s, stateDisconnected)
		ts.startsPromptly("other-3")
		release()
		for {
			m := g.recv()
			if e, ok := m.(protocol.Error); ok {
				if e.ErrorCode != protocol.CodeProcessingFailed || !strings.Contains(e.ErrorMessage, "the analysis broke") {
					t.Errorf("error %s %q, want %s about the analysis", e.ErrorCode, e.ErrorMessage, protocol.CodeProcessingFailed)
				}
				break
			}
		}
		ts.logs.WaitFor(t, `msg="processing failed; keeping the session and its frames to resume and retry"`, "session_id=failing")
	})
}
