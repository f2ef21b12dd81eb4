package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// TestFramesPerSessionLimit: the frame beyond the limit ends the session
// with LIMIT_EXCEEDED; a duplicate of a frame held is still acknowledged.
func TestFramesPerSessionLimit(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxFramesPerSession = 3 })
	c, f := ts.startedWithFrames("s1", 3)
	if ack := c.sendFrameV1("s1", 1, protocol.EncodingJPEG, f.jpeg(1)); ack.Status != protocol.AckDuplicate {
		t.Errorf("duplicate at the limit: ack %q, want duplicate", ack.Status)
	}
	c.send(protocol.Frame{SessionID: "s1", FrameNumber: 3, Encoding: protocol.EncodingJPEG, Size: len(f.jpeg(3))})
	c.sendBinary(f.jpeg(3))
	c.expectFatal(protocol.CodeLimitExceeded, "frame 3 refused: session s1 holds 3 frames, the limit (max frames per session)", websocket.CloseMessageTooBig)
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=s1", "LIMIT_EXCEEDED", "max frames per session")
	ts.checkServing()
	ts.waitIdle()
	checkNoPartialArtifacts(t, ts.cfg)
}

// TestSpoolDiskLimit: with the spools at their disk limit a session start
// is refused, a frame that would pass it ends its session, and the disk
// its spool held is counted free again.
func TestSpoolDiskLimit(t *testing.T) {
	f := newFrames(t, testWidth, testHeight)
	payload := f.jpeg(0)
	record := int64(spoolHeaderSize + len(payload))
	ts := startServer(t, func(c *Config) { c.MaxSpoolBytes = 2 * record })
	holder := ts.dial()
	holder.startV1("holder")
	for i := range 2 {
		if ack := holder.sendFrameV1("holder", i, protocol.EncodingJPEG, payload); ack.Status != protocol.AckReceived {
			t.Fatalf("frame %d: ack %q", i, ack.Status)
		}
	}
	c := ts.dial()
	c.send(startMessage("second"))
	c.expectFatal(protocol.CodeSessionStartFailed, "spool disk limit reached: the spools hold "+itoa(2*record)+" bytes (1 sessions), the limit is "+itoa(2*record)+" (max spool bytes)", websocket.CloseNormalClosure)

	holder.send(protocol.Frame{SessionID: "holder", FrameNumber: 2, Encoding: protocol.EncodingJPEG, Size: len(payload)})
	holder.sendBinary(payload)
	holder.expectFatal(protocol.CodeLimitExceeded, "spool disk limit reached: the spools hold "+itoa(2*record)+" bytes, the limit is "+itoa(2*record)+" (max spool bytes), and frame 2 needs "+itoa(record)+" more", websocket.CloseMessageTooBig)
	ts.logs.WaitFor(t, `msg="removed session"`, "session_id=holder", "LIMIT_EXCEEDED")
	ts.waitIdle()
	if used := ts.srv.reg.disk.used.Load(); used != 0 {
		t.Errorf("%d spool bytes counted after every session ended, want 0", used)
	}
	ts.health()
	checkResult(t, ts.streamV1("", 2), seq(2))
	checkNoPartialArtifacts(t, ts.cfg)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestConnsPerAddrLimit: connections over the per-address limit are
// answered 429 with a JSON error before the upgrade; closing one frees its
// place.
func TestConnsPerAddrLimit(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxConnsPerAddr = 2 })
	first, second := ts.dial(), ts.dial()
	ws, resp, err := websocket.DefaultDialer.Dial(ts.url, nil)
	if err == nil {
		ws.Close()
		t.Fatal("a third connection from 127.0.0.1 was accepted with a limit of 2")
	}
	if resp == nil {
		t.Fatalf("dial: %v, want an HTTP 429 answer", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e protocol.Error
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || json.Unmarshal(body, &e) != nil ||
		e.ErrorCode != protocol.CodeLimitExceeded || e.ErrorMessage != "too many connections from 127.0.0.1: 2 open, the limit is 2 (max connections per address); close one or try again later" {
		t.Errorf("answer %s %q %s, want 429 with a LIMIT_EXCEEDED error", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	ts.logs.WaitFor(t, `msg="refused a connection: too many from its address"`, "open=2", "limit=2")
	ts.health()
	first.ws.Close()
	second.ws.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.srv.mu.Lock()
		open := ts.srv.perAddr["127.0.0.1"]
		ts.srv.mu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted after both closed", open)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.checkServing()
}
