package server

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/protocol"
)

// FuzzV2FrameMessage feeds arbitrary binary messages to the server's v2
// frame path: the header is parsed, the payload checked against the
// session (picture readable, of the session's size) and, if accepted,
// stored. It must never panic, and what is stored must read back the same.
// It shares one spool between inputs, as a session does between frames.
func FuzzV2FrameMessage(f *testing.F) {
	frames := newFrames(f, 48, 48)
	for i, enc := range []string{protocol.EncodingJPEG, protocol.EncodingPNG, protocol.EncodingRaw} {
		msg, err := protocol.AppendFrame(nil, protocol.FrameHeader{FrameNumber: i, Encoding: enc}, frames.encode(i, enc))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	f.Add([]byte("RF\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xd8\xff"))
	f.Add([]byte("RF\x02\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x03\x00\x00\x00"))
	sp, err := createSpool(filepath.Join(f.TempDir(), spoolFileName), testBudget())
	if err != nil {
		f.Fatal(err)
	}
	defer sp.Close()
	s := &session{start: protocol.SessionStart{Width: 48, Height: 48}, spool: sp, state: stateStreaming, maxNumber: -1, gapsBelow: -1}
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, payload, err := protocol.ParseFrame(msg)
		if err != nil {
			return
		}
		if reason := s.checkFrame(h.FrameNumber, h.Encoding, payload, DefaultMaxFramePixels); reason != "" {
			return
		}
		res, err := s.addFrame(h.FrameNumber, h.Encoding, payload)
		if err != nil {
			t.Fatalf("frame %d accepted but not stored: %v", h.FrameNumber, err)
		}
		if res.duplicate {
			return
		}
		if err := sp.Flush(); err != nil {
			t.Fatal(err)
		}
		sp.mu.Lock()
		entry, ok := sp.index[h.FrameNumber]
		sp.mu.Unlock()
		if !ok {
			t.Fatalf("frame %d stored but not indexed", h.FrameNumber)
		}
		got, err := readRecord(sp.f, entry, h.FrameNumber)
		if err != nil || !bytes.Equal(got, payload) || entry.encoding != h.Encoding {
			t.Fatalf("frame %d read back as %s, %d bytes, %v; want %s, %d bytes", h.FrameNumber, entry.encoding, len(got), err, h.Encoding, len(payload))
		}
	})
}
