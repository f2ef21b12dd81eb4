package server

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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
			ts.logs.waitFor(t, `msg="session disconnected"`, "session_id="+id, "client disconnected after 9 frames", "keeping the session for 1m0s to resume")
			if h := ts.health(); h.ActiveSessions != 1 {
				t.Errorf("%d active sessions while one waits to be resumed, want 1", h.ActiveSessions)
			}

			second := ts.dial()
			start.Resume = true
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
			ts.logs.waitFor(t, `msg="resumed session"`, "session_id="+id, "frames=9", "ranges=2")
			ts.logs.waitFor(t, `msg="removed session"`, "session_id="+id, "reason=completed", "frames=20")
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
	if started := expect[protocol.SessionStarted](c); !reflect.DeepEqual(started, protocol.SessionStarted{SessionID: "unknown"}) {
		t.Errorf("resume of an unknown session: %+v, want a new session (resume false)", started)
	}
	c.sendFrameV1("unknown", 0, protocol.EncodingJPEG, f.jpeg(0))
	c.complete("unknown", 1)
	ts.logs.waitFor(t, `msg="client asked to resume a session the server does not hold"`, "session_id=unknown")

	old, _ := ts.startedWithFrames("taken", 2)
	closed := old.closedLater()
	bad := ts.dial()
	wrong := protocol.SessionStart{SessionID: "taken", FPS: 15, Width: 640, Height: 480, Resume: true}
	bad.send(wrong)
	bad.expectFatal(protocol.CodeSessionStartFailed, "cannot resume session taken: it was started at 15fps 320x240, the resume asks for 15fps 640x480", websocket.CloseNormalClosure)
	taker := ts.dial()
	start = startMessage("taken")
	start.Resume = true
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
	ts.logs.waitFor(t, `msg="removed session"`, "session_id=expires", `reason="disconnected and not resumed within 200ms"`)
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
	first.logs.waitFor(t, `msg="session disconnected"`, "session_id="+id)

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
		"no-meta":  {spoolFileName: "RFSP"},
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
	second.logs.waitFor(t, `msg="truncated a spool cut off mid-write to its last whole frame"`, "session_id="+id, "cut_bytes="+strconv.Itoa(kept), "frames=4")
	second.logs.waitFor(t, `msg="recovered session"`, "session_id="+id, "frames=4", "keep_for=1m0s")
	for _, name := range []string{"no-meta", "bad-meta"} {
		second.logs.waitFor(t, `msg="cannot recover a session: removed its spool"`, "session_id="+name)
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
	start.Resume = true
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
