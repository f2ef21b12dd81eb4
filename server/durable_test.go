package server

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/referee-project/referee/protocol"
)

// TestSessionEndedSpoolOnDisk: by the time session_ended reaches the
// client, every frame is in the spool file, not in the server's write
// buffer (and the file is fsynced): what the server acknowledged survives a
// power cut.
func TestSessionEndedSpoolOnDisk(t *testing.T) {
	ts := startServer(t, nil)
	const id = "durable"
	c, f := ts.startedWithFrames(id, 3)
	path := filepath.Join(ts.cfg.DataDir, "spool", id, spoolFileName)
	var want int64
	for i := range 3 {
		want += int64(spoolHeaderSize + len(f.jpeg(i)))
	}
	c.send(protocol.SessionEnd{SessionID: id, TotalFrames: 3})
	expect[protocol.SessionEnded](c)
	if info, err := os.Stat(path); err != nil || info.Size() != want {
		t.Fatalf("spool file at session_ended: %v, %d bytes; want all %d bytes of the 3 frames on disk", err, info.Size(), want)
	}
	c.sendSignal(id, readPhrase(t, logSingleLeft))
	checkResult(t, c.finish(id), seq(3))
}

// TestRecoverDamagedRecords corrupts, in a spool left by a crash, one
// frame's payload and another's record magic in the middle of the file,
// and restarts: both are dropped with a log line each, every other frame
// survives (the file is not truncated at the first bad record), and the
// client sends only the two lost frames again. A recovery that stopped
// checking checksums would keep frame 3 and fail here.
func TestRecoverDamagedRecords(t *testing.T) {
	const id = "damaged"
	first := startServer(t, nil)
	c, f := first.startedWithFrames(id, 8)
	c.ws.NetConn().Close()
	first.logs.WaitFor(t, `msg="session disconnected"`, "session_id="+id)

	dataDir := t.TempDir()
	spoolDir := filepath.Join(dataDir, "spool", id)
	copyDir(t, filepath.Join(first.cfg.DataDir, "spool", id), spoolDir)
	path := filepath.Join(spoolDir, spoolFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	offset := func(n int) int {
		off := 0
		for i := range n {
			off += spoolHeaderSize + len(f.jpeg(i))
		}
		return off
	}
	data[offset(3)+spoolHeaderSize+100] ^= 0xff // a payload byte of frame 3
	copy(data[offset(5):], "XXXX")              // the magic of frame 5
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, func(c *Config) { c.DataDir = dataDir })
	second.logs.WaitFor(t, `msg="dropped a damaged record from a recovered spool"`, "session_id="+id, "frame=3",
		"offset="+strconv.Itoa(offset(3)), "bytes="+strconv.Itoa(offset(4)-offset(3)), `why="checksum mismatch"`)
	second.logs.WaitFor(t, `msg="dropped a damaged record from a recovered spool"`, "session_id="+id, "frame=-1",
		"offset="+strconv.Itoa(offset(5)), "bytes="+strconv.Itoa(offset(6)-offset(5)), `why="no record magic"`)
	second.logs.WaitFor(t, `msg="recovered session"`, "session_id="+id, "frames=6")
	if lines := second.logs.Lines("truncated a spool"); len(lines) > 0 {
		t.Error("a spool damaged in the middle was truncated")
	}
	if info, err := os.Stat(path); err != nil || info.Size() != int64(len(data)) {
		t.Errorf("spool after recovery: %v, %d bytes; want all %d kept", err, info.Size(), len(data))
	}

	r := second.dial()
	start := startMessage(id)
	start.Resume, start.ResumeToken = true, second.resumeToken(id)
	r.send(start)
	started := expect[protocol.SessionStarted](r)
	if want := [][2]int{{0, 2}, {4, 4}, {6, 7}}; !reflect.DeepEqual(started.Have, want) {
		t.Fatalf("session_started have %v, want %v", started.Have, want)
	}
	for _, n := range []int{3, 5} {
		if ack := r.sendFrameV1(id, n, protocol.EncodingJPEG, f.jpeg(n)); ack.Status != protocol.AckReceived {
			t.Errorf("frame %d: ack %q", n, ack.Status)
		}
	}
	r.complete(id, 8)
	second.waitIdle()
	checkNoPartialArtifacts(t, second.cfg)
}

// TestRecoverKeepsSpoolWithEmptyMeta: a spool with frames whose
// session.json is empty (a power cut before it reached the disk, with an
// older server) cannot be resumed, but its frames are not deleted: the
// directory is moved to DataDir/unrecovered whole; the id is free.
func TestRecoverKeepsSpoolWithEmptyMeta(t *testing.T) {
	const id = "emptymeta"
	first := startServer(t, nil)
	c, _ := first.startedWithFrames(id, 3)
	c.ws.NetConn().Close()
	first.logs.WaitFor(t, `msg="session disconnected"`, "session_id="+id)

	dataDir := t.TempDir()
	copyDir(t, filepath.Join(first.cfg.DataDir, "spool", id), filepath.Join(dataDir, "spool", id))
	frames, err := os.ReadFile(filepath.Join(dataDir, "spool", id, spoolFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "spool", id, metaFileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, func(c *Config) { c.DataDir = dataDir })
	moved := filepath.Join(dataDir, "unrecovered", id)
	second.logs.WaitFor(t, `msg="cannot recover a session: moved its spool aside, the frames are kept"`, "session_id="+id,
		"moved_to="+moved, "spool_bytes="+strconv.Itoa(len(frames)), "unexpected end of JSON input")
	if kept, err := os.ReadFile(filepath.Join(moved, spoolFileName)); err != nil || !bytes.Equal(kept, frames) {
		t.Errorf("the frames moved aside: %v, %d bytes; want the %d bytes of the spool", err, len(kept), len(frames))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "spool", id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the unrecoverable spool is still in the spool directory: %v", err)
	}
	second.streamV1(id, 2)
	checkNoPartialArtifacts(t, second.cfg)
}
