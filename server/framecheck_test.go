package server

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

// fuzzSize is the picture size of the frame-check fuzz targets.
const fuzzSize = 48

// checkedFrameServer is a server that is never started: enough for
// decodePNG's places and memory budget.
func checkedFrameServer(t testing.TB) *Server {
	t.Helper()
	srv, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// accepted reports whether the server acknowledges payload as a frame of a
// fuzzSize x fuzzSize session: checkFrame, then decodePNG for PNG.
func accepted(srv *Server, s *session, encoding string, payload []byte) bool {
	if s.checkFrame(0, encoding, payload, DefaultMaxFramePixels) != "" {
		return false
	}
	return encoding != protocol.EncodingPNG || srv.decodePNG(context.Background(), payload, fuzzSize, fuzzSize) == nil
}

// FuzzFrameCheck holds the frame check to its purpose: a JPEG or PNG frame
// the server acknowledges, the processing reads. OpenCV (what reconstruction
// and the analyzers decode with) must decode it at the session's size, and
// a JPEG must also pass what the rebuilt MJPEG video asks of a frame it
// stores as received (a header image/jpeg reads, the end-of-image marker
// last). The seeds are whole frames, frames cut short, garbage closed by
// FF D9 and a PNG with a cut data chunk.
func FuzzFrameCheck(f *testing.F) {
	frames := newFrames(f, fuzzSize, fuzzSize)
	for i, enc := range []string{protocol.EncodingJPEG, protocol.EncodingPNG} {
		whole := frames.encode(i, enc)
		f.Add(enc == protocol.EncodingPNG, whole)
		f.Add(enc == protocol.EncodingPNG, whole[:len(whole)*2/3])
		f.Add(enc == protocol.EncodingPNG, append(bytes.Clone(whole[:len(whole)/2]), 0xFF, 0xD9))
	}
	f.Add(false, []byte("\xff\xd8garbage garbage garbage\xff\xd9"))
	srv := checkedFrameServer(f)
	s := &session{start: protocol.SessionStart{Width: fuzzSize, Height: fuzzSize}, state: stateStreaming}
	f.Fuzz(func(t *testing.T, isPNG bool, payload []byte) {
		encoding := protocol.EncodingJPEG
		if isPNG {
			encoding = protocol.EncodingPNG
		}
		if !accepted(srv, s, encoding, payload) {
			return
		}
		var img bgr.Image
		if err := videoio.Decode(payload, &img); err != nil || img.Width != fuzzSize || img.Height != fuzzSize {
			t.Fatalf("%s frame of %d bytes acknowledged, but OpenCV reads %dx%d, %v", encoding, len(payload), img.Width, img.Height, err)
		}
		if isPNG {
			return
		}
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(payload)); err != nil || cfg.Width != fuzzSize || cfg.Height != fuzzSize {
			t.Fatalf("JPEG frame acknowledged, but its header reads %dx%d, %v", cfg.Width, cfg.Height, err)
		}
		if !bytes.HasSuffix(bytes.TrimRight(payload, "\x00"), []byte{0xFF, 0xD9}) {
			t.Fatal("JPEG frame acknowledged without the end-of-image marker last")
		}
	})
}

// TestFrameCheck: what a capture client sends is acknowledged, at every
// JPEG quality; the broken frames of issue 12 are refused with the reason.
func TestFrameCheck(t *testing.T) {
	srv := checkedFrameServer(t)
	s := &session{start: protocol.SessionStart{Width: testWidth, Height: testHeight}, state: stateStreaming}
	fr := newFrames(t, testWidth, testHeight)
	synthImg := bgr.New(testWidth, testHeight)
	for _, q := range []int{1, 50, 85, 100} {
		data, err := videoio.EncodeJPEG(synthImg, q)
		if err != nil {
			t.Fatal(err)
		}
		if reason := s.checkFrame(0, protocol.EncodingJPEG, data, DefaultMaxFramePixels); reason != "" {
			t.Errorf("JPEG of quality %d refused: %s", q, reason)
		}
	}
	jpg, png := fr.jpeg(3), fr.encode(3, protocol.EncodingPNG)
	if !accepted(srv, &session{start: protocol.SessionStart{Width: testWidth, Height: testHeight}, state: stateStreaming}, protocol.EncodingPNG, png) {
		t.Error("a whole PNG frame is refused")
	}
	for _, tc := range []struct {
		name, encoding string
		payload        []byte
		want           string
	}{
		{"truncated JPEG", protocol.EncodingJPEG, jpg[:len(jpg)-100], "not a readable jpeg picture: cut off in a scan: no end-of-image marker (FF D9)"},
		{"garbage body ending in FF D9", protocol.EncodingJPEG, append(bytes.Clone(jpg[:200]), append(bytes.Repeat([]byte{0xFF, 0x13}, 50), 0xFF, 0xD9)...), "not a readable jpeg picture: "},
		{"JPEG header, then garbage, then FF D9", protocol.EncodingJPEG, []byte("\xff\xd8\xff\xe0\x00\x04ab garbage\xff\xd9"), "not a readable jpeg picture: no marker at byte 8"},
		{"JPEG of 9000x9000 pixels", protocol.EncodingJPEG, resized(jpg, 9000, 9000), "the picture is 9000x9000, over the limit of 8294400 pixels and 8192 a side (max frame pixels)"},
		{"PNG with a cut data chunk", protocol.EncodingPNG, cutIDAT(t, png), "not a readable png picture: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason := s.checkFrame(0, tc.encoding, tc.payload, DefaultMaxFramePixels)
			if reason == "" && tc.encoding == protocol.EncodingPNG {
				if err := srv.decodePNG(context.Background(), tc.payload, testWidth, testHeight); err != nil {
					reason = err.Error()
				}
			}
			if reason == "" || !bytes.HasPrefix([]byte(reason), []byte(tc.want)) {
				t.Errorf("reason %q, want %q...", reason, tc.want)
			}
		})
	}
}

// resized returns a copy of the JPEG data whose frame header says w x h.
func resized(data []byte, w, h int) []byte {
	out := bytes.Clone(data)
	i := bytes.Index(out, []byte{0xFF, 0xC0})
	out[i+5], out[i+6], out[i+7], out[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
	return out
}

// cutIDAT returns the PNG with its first data chunk cut in half, the rest
// of the file (the chunk's CRC, IEND) following as it was.
func cutIDAT(t *testing.T, png []byte) []byte {
	t.Helper()
	i := bytes.Index(png, []byte("IDAT"))
	if i < 4 {
		t.Fatal("no IDAT chunk")
	}
	n := int(png[i-4])<<24 | int(png[i-3])<<16 | int(png[i-2])<<8 | int(png[i-1])
	return append(bytes.Clone(png[:i+4+n/2]), png[i+4+n:]...)
}

// BenchmarkFrameCheck is what acknowledging a frame costs: the structural
// JPEG check beside a full decode with image/jpeg (which it replaces), and
// the full PNG decode, at three sizes of counter frames.
func BenchmarkFrameCheck(b *testing.B) {
	for _, size := range [][2]int{{640, 480}, {1280, 720}, {1920, 1080}} {
		f := newFrames(b, size[0], size[1])
		jpg, png := f.jpeg(5), f.encode(5, protocol.EncodingPNG)
		name := fmt.Sprintf("%dx%d", size[0], size[1])
		b.Run(name+"/jpeg-check", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := checkJPEG(jpg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/jpeg-decode", func(b *testing.B) {
			for b.Loop() {
				if _, err := jpeg.Decode(bytes.NewReader(jpg)); err != nil {
					b.Fatal(err)
				}
			}
		})
		srv := checkedFrameServer(b)
		b.Run(name+"/png-decode", func(b *testing.B) {
			for b.Loop() {
				if err := srv.decodePNG(context.Background(), png, size[0], size[1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
