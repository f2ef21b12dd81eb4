package videoio_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
)

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.avi")
	videotest.WriteCounterVideo(t, good, "MJPG", 15, 10, 160, 120)

	missing := filepath.Join(dir, "missing.mp4")
	text := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(text, []byte("Phrase 9 initialized at 2025-10-20 21:03:29\nthis is a log, not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mp4")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder.mp4")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	// A video closed before its first frame: a valid AVI header, no frame.
	noFrames := filepath.Join(dir, "noframes.avi")
	videotest.WriteCounterVideo(t, noFrames, "MJPG", 15, 0, 160, 120)
	// Three frames whose data is cut off: the header still says 3.
	truncated := filepath.Join(dir, "truncated.avi")
	videotest.WriteCounterVideo(t, truncated, "MJPG", 15, 3, 160, 120)
	data, err := os.ReadFile(truncated)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := avi.MJPEGChunks(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Cut before the header of the first frame's chunk.
	if err := os.WriteFile(truncated, data[:chunks[0].Off-8], 0o644); err != nil {
		t.Fatal(err)
	}

	// Text that FFmpeg would play as text art: a phrase log (its tty
	// demuxer takes .txt files), an ANSI art file with escape codes, and an
	// XBIN text picture, whose demuxer FFmpeg 5.1 gives the bintext decoder.
	phraseLog := filepath.Join("..", "..", "testdata", "signal", "20251020_210329_phrase09.txt")
	ansi := filepath.Join(dir, "banner.ans")
	if err := os.WriteFile(ansi, bytes.Repeat([]byte("\x1b[31mEn garde\x1b[0m\r\n"), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	xbin := filepath.Join(dir, "picture.xb")
	// "XBIN", 0x1A, 10 columns, 5 rows, 16-pixel font, no flags; then a
	// character and an attribute byte per cell.
	header := []byte{'X', 'B', 'I', 'N', 0x1a, 10, 0, 5, 0, 16, 0}
	if err := os.WriteFile(xbin, append(header, bytes.Repeat([]byte{'A', 7}, 50)...), 0o644); err != nil {
		t.Fatal(err)
	}

	headerOnly := func(path string, count int) videoio.Info {
		return videoio.Info{Path: path, Opened: true, FPS: 15, FrameCount: count, Codec: "MJPG", DurationS: float64(count) / 15, Backend: "FFMPEG"}
	}
	tests := []struct {
		name     string
		path     string
		info     videoio.Info
		sentinel error
		msg      string
	}{
		{"good", good, videoio.Info{Path: good, Opened: true, ReadFrame: true, Width: 160, Height: 120, Channels: 3,
			FPS: 15, FrameCount: 10, Codec: "MJPG", DurationS: 10.0 / 15, Backend: "FFMPEG"}, nil, ""},
		{"missing", missing, videoio.Info{Path: missing}, fs.ErrNotExist,
			"video " + missing + ": file does not exist (check the path)"},
		{"text renamed .mp4", text, videoio.Info{Path: text}, videoio.ErrCannotOpen,
			"video " + text + ": cannot open video: not a video in a container and codec this OpenCV (4.6.0, FFmpeg backend) can read"},
		{"phrase log", phraseLog, videoio.Info{Path: phraseLog}, videoio.ErrCannotOpen,
			"video " + phraseLog + ": cannot open video: it is text, not a video: FFmpeg reads it as ANSI art (codec ansi)"},
		{"ANSI art", ansi, videoio.Info{Path: ansi}, videoio.ErrCannotOpen,
			"video " + ansi + ": cannot open video: it is text, not a video: FFmpeg reads it as ANSI art (codec ansi)"},
		{"XBIN text", xbin, videoio.Info{Path: xbin}, videoio.ErrCannotOpen,
			"video " + xbin + ": cannot open video: it is text, not a video: FFmpeg reads it as binary text art (codec bintext)"},
		{"empty", empty, videoio.Info{Path: empty}, videoio.ErrCannotOpen,
			"video " + empty + ": cannot open video: the file is empty (0 bytes)"},
		{"folder", folder, videoio.Info{Path: folder}, videoio.ErrCannotOpen,
			"video " + folder + ": cannot open video: it is a folder, not a file"},
		{"no frames", noFrames, headerOnly(noFrames, 0), videoio.ErrNoFrames,
			"video " + noFrames + ": video has no readable frame: opened, but the first frame does not decode (no frames, or a truncated or corrupt file)"},
		{"truncated", truncated, headerOnly(truncated, 3), videoio.ErrNoFrames,
			"video " + truncated + ": video has no readable frame: opened, but the first frame does not decode (no frames, or a truncated or corrupt file)"},
	}
	for _, tt := range tests {
		info, err := videoio.Probe(tt.path)
		if info != tt.info {
			t.Errorf("%s: Info =\n%+v, want\n%+v", tt.name, info, tt.info)
		}
		if tt.sentinel == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, tt.sentinel) || err.Error() != tt.msg {
			t.Errorf("%s: err = %v, want %q wrapping %v", tt.name, err, tt.msg, tt.sentinel)
		}
		// Text, and only text, is refused with a *TextError.
		var te *videoio.TextError
		if isText := strings.Contains(tt.msg, "it is text"); errors.As(err, &te) != isText {
			t.Errorf("%s: err = %v: wraps a *TextError %v, want %v", tt.name, err, !isText, isText)
		}
		// OpenFile fails the same way, before any frame is handed out.
		r, err := videoio.OpenFile(tt.path)
		if r != nil || err == nil || err.Error() != tt.msg {
			t.Errorf("%s: OpenFile = %v, %v", tt.name, r, err)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	noDir := filepath.Join(dir, "no", "such", "folder", "out.avi")
	folder := filepath.Join(dir, "taken.avi")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	bogus := filepath.Join(dir, "bogus.avi")
	tests := []struct {
		name     string
		path     string
		fourcc   string
		fps      float64
		w, h     int
		sentinel error
		msg      string
	}{
		{"folder does not exist", noDir, "MJPG", 15, 320, 240, fs.ErrNotExist,
			"create video " + noDir + ": cannot write the file (check that the folder exists and is writable): open " + noDir + ": no such file or directory"},
		{"path is a folder", folder, "MJPG", 15, 320, 240, nil,
			"create video " + folder + ": cannot write the file (check that the folder exists and is writable): open " + folder + ": is a directory"},
		{"bogus fourcc", bogus, "ZZZZ", 15, 320, 240, videoio.ErrCodec,
			"create video " + bogus + `: codec not available: OpenCV 4.6.0 cannot write fourcc "ZZZZ" into a .avi file`},
		{"VP80 in MP4", filepath.Join(dir, "vp8.mp4"), "VP80", 15, 320, 240, videoio.ErrCodec,
			"create video " + filepath.Join(dir, "vp8.mp4") + `: codec not available: OpenCV 4.6.0 cannot write fourcc "VP80" into a .mp4 file`},
		{"short fourcc", bogus, "MJ", 15, 320, 240, videoio.ErrCodec,
			"create video " + bogus + `: codec not available: fourcc "MJ" is not 4 printable ASCII characters`},
		{"unknown extension", filepath.Join(dir, "a.mov"), "", 15, 320, 240, nil,
			"create video " + filepath.Join(dir, "a.mov") + `: no default codec for ".mov" files: use .mp4 (mp4v), .avi (MJPG), .mkv (mp4v) or .webm (VP80), or give a fourcc`},
		{"no extension", filepath.Join(dir, "video"), "MJPG", 15, 320, 240, nil,
			"create video " + filepath.Join(dir, "video") + ": the name has no extension, so OpenCV cannot choose a container: use .mp4, .avi, .mkv or .webm"},
		{"zero fps", bogus, "MJPG", 0, 320, 240, nil, "create video " + bogus + ": frame rate 0 is not a positive number"},
		{"NaN fps", bogus, "MJPG", math.NaN(), 320, 240, nil, "create video " + bogus + ": frame rate NaN is not a positive number"},
		{"infinite fps", bogus, "MJPG", math.Inf(1), 320, 240, nil, "create video " + bogus + ": frame rate +Inf is not a positive number"},
		{"odd width", bogus, "MJPG", 15, 321, 240, nil, "create video " + bogus + ": frame size 321x240 must be positive and even"},
		{"zero height", bogus, "MJPG", 15, 320, 0, nil, "create video " + bogus + ": frame size 320x0 must be positive and even"},
	}
	for _, tt := range tests {
		w, err := videoio.Create(tt.path, tt.fourcc, tt.fps, tt.w, tt.h)
		if w != nil || err == nil || err.Error() != tt.msg {
			t.Errorf("%s: Create = %v, %v\nwant error %q", tt.name, w, err, tt.msg)
			continue
		}
		if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
			t.Errorf("%s: %v does not wrap %v", tt.name, err, tt.sentinel)
		}
	}
	// A failed Create leaves no file behind.
	for _, p := range []string{bogus, filepath.Join(dir, "vp8.mp4"), filepath.Join(dir, "a.mov"), filepath.Join(dir, "video")} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("failed Create left %s behind (%v)", p, err)
		}
	}
}

// TestCreateWithBadCodecKeepsAnExistingFile: nothing is lost when the codec
// is rejected; the file is only replaced once OpenCV accepts it.
func TestCreateWithBadCodecKeepsAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phrase.avi")
	precious := []byte("an earlier recording")
	if err := os.WriteFile(path, precious, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := videoio.Create(path, "ZZZZ", 15, 320, 240); !errors.Is(err, videoio.ErrCodec) {
		t.Fatalf("Create = %v, want ErrCodec", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, precious) {
		t.Errorf("the existing file now holds %q (%v)", got, err)
	}
}

func TestWriterErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.avi")
	w, err := videoio.Create(path, "MJPG", 15, 160, 120)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		img  bgr.Image
		msg  string
	}{
		{"wrong size", bgr.New(320, 240), "write video " + path + ": frame is 320x240, the video is 160x120"},
		{"broken picture", bgr.Image{Width: 160, Height: 120, Pix: make([]byte, 3)}, "write video " + path + ": picture 160x120 with 3 bytes is not a valid BGR image"},
		{"empty picture", bgr.Image{}, "write video " + path + ": picture 0x0 with 0 bytes is not a valid BGR image"},
	}
	for _, tt := range tests {
		if err := w.Write(tt.img); err == nil || err.Error() != tt.msg {
			t.Errorf("%s: Write = %v, want %q", tt.name, err, tt.msg)
		}
	}
	// The rejected frames left the video intact: one good frame reads back.
	good := bgr.New(160, 120)
	good.Fill(0, 0, 255)
	if err := w.Write(good); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := w.Write(good); !errors.Is(err, videoio.ErrClosed) || err.Error() != "write video "+path+": video already closed" {
		t.Errorf("Write after Close = %v", err)
	}
	info, err := videoio.Probe(path)
	if err != nil || info.FrameCount != 1 {
		t.Errorf("after the rejected frames the video has %d frames (%v), want 1", info.FrameCount, err)
	}
}

func TestCounterVideoRoundTrip(t *testing.T) {
	tests := []struct {
		ext, fourcc string
		n, w, h     int
	}{
		{".avi", "MJPG", 30, 320, 240},
		{".mp4", "mp4v", 30, 320, 240},
		{".avi", "MJPG", 30, 160, 120},
		{".mp4", "mp4v", 30, 160, 120},
		{".avi", "MJPG", 4, 1920, 1080},
		{".mp4", "mp4v", 4, 1920, 1080},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "counter"+tt.ext)
		videotest.WriteCounterVideo(t, path, tt.fourcc, 15, tt.n, tt.w, tt.h)
		idx, info := videotest.ReadCounters(t, path)
		rep := synth.VerifySequence(idx)
		if !rep.SequenceOK || rep.Frames != tt.n {
			t.Errorf("%s %dx%d: read back %v: %+v", tt.fourcc, tt.w, tt.h, idx, rep)
		}
		want := videoio.Info{Path: path, Opened: true, ReadFrame: true, Width: tt.w, Height: tt.h, Channels: 3,
			FPS: 15, FrameCount: tt.n, Codec: tt.fourcc, DurationS: float64(tt.n) / 15, Backend: "FFMPEG"}
		if info != want {
			t.Errorf("%s %dx%d: Info =\n%+v, want\n%+v", tt.fourcc, tt.w, tt.h, info, want)
		}
	}
}

// TestFourCCForPathRoundTrip backs FourCCForPath's table: each container's
// default codec writes a video whose counters all read back.
func TestFourCCForPathRoundTrip(t *testing.T) {
	tests := []struct{ name, fourcc, codec string }{
		{"a.mp4", "mp4v", "mp4v"},
		{"a.AVI", "MJPG", "MJPG"},
		{"a.mkv", "mp4v", "mpeg"}, // Matroska reports FFmpeg's MPEG-4 tag
		{"a.webm", "VP80", ""},    // WebM has no FOURCC
	}
	for _, tt := range tests {
		cc, err := videoio.FourCCForPath(tt.name)
		if err != nil || cc != tt.fourcc {
			t.Errorf("FourCCForPath(%q) = %q, %v, want %q", tt.name, cc, err, tt.fourcc)
			continue
		}
		path := filepath.Join(t.TempDir(), tt.name)
		videotest.WriteCounterVideo(t, path, "", 15, 10, 320, 240)
		idx, info := videotest.ReadCounters(t, path)
		if rep := synth.VerifySequence(idx); !rep.SequenceOK || rep.Frames != 10 {
			t.Errorf("%s: read back %v", tt.name, idx)
		}
		if info.Codec != tt.codec {
			t.Errorf("%s: Probe codec %q, want %q", tt.name, info.Codec, tt.codec)
		}
	}
	for _, name := range []string{"a.mov", "a", "a.txt"} {
		if _, err := videoio.FourCCForPath(name); err == nil {
			t.Errorf("FourCCForPath(%q) has a default", name)
		}
	}
	_, err := videoio.FourCCForPath("clip.MOV")
	want := `no default codec for ".mov" files: use .mp4 (mp4v), .avi (MJPG), .mkv (mp4v) or .webm (VP80), or give a fourcc`
	if err == nil || err.Error() != want {
		t.Errorf("FourCCForPath(clip.MOV) = %v, want %q", err, want)
	}
}

func TestReaderLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "five.avi")
	videotest.WriteCounterVideo(t, path, "MJPG", 15, 5, 160, 120)
	r, err := videoio.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var img bgr.Image
	if err := r.Read(&img); err != nil {
		t.Fatal(err)
	}
	p := &img.Pix[0]
	for i := 1; i < 5; i++ {
		if err := r.Read(&img); err != nil {
			t.Fatal(err)
		}
		if got, err := synth.DecodeCounter(img); err != nil || got != i {
			t.Fatalf("frame %d decodes to %d, %v", i, got, err)
		}
	}
	if &img.Pix[0] != p {
		t.Error("Read reallocated the frame buffer between frames of the same size")
	}
	for range 2 {
		if err := r.Read(&img); err != io.EOF {
			t.Fatalf("Read after the last frame = %v, want io.EOF", err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := r.Read(&img); !errors.Is(err, videoio.ErrClosed) || err.Error() != "video "+path+": video already closed" {
		t.Errorf("Read after Close = %v", err)
	}
}
