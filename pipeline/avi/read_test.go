package avi

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
)

func TestReaderReadsTheFramesWritten(t *testing.T) {
	frames := videotest.CounterJPEGs(t, 40, 160, 120, 85)
	var size int64
	for _, f := range frames {
		size += int64(len(f))
	}
	for _, limit := range []int64{0, size / 3} {
		path, _ := writeFile(t, Config{Width: 160, Height: 120, FPS: 15}, limit, frames)
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if r.Frames() != len(frames) {
			t.Fatalf("RIFF limit %d: %d frames, want %d", limit, r.Frames(), len(frames))
		}
		var buf []byte
		for k, want := range frames {
			if buf, err = r.ReadFrame(k, buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, want) {
				t.Fatalf("RIFF limit %d: frame %d is not the JPEG written", limit, k)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMJPEGChunksIndexesAnOpenCVVideo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counter.avi")
	videotest.WriteCounterVideo(t, path, "MJPG", 15, 30, 320, 240)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Frames() != 30 {
		t.Fatalf("%d frames, want 30", r.Frames())
	}
	for k := range r.Frames() {
		data, err := r.ReadFrame(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		var img bgr.Image
		if err := videoio.Decode(data, &img); err != nil {
			t.Fatalf("frame %d: %v", k, err)
		}
		if c, err := synth.DecodeCounter(img); err != nil || c != k {
			t.Fatalf("frame %d shows counter %d (%v)", k, c, err)
		}
	}

	// A file cut in the middle keeps the frames before the cut.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := MJPEGChunks(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if !bytes.HasPrefix(data[c.Off:], []byte{0xff, 0xd8}) {
			t.Fatalf("chunk %d at %d does not start a JPEG", i, c.Off)
		}
	}
	cut := chunks[10].Off + 100
	short, err := MJPEGChunks(bytes.NewReader(data[:cut]), cut)
	if err != nil || len(short) != 10 {
		t.Errorf("truncated file: %d chunks, %v; want 10", len(short), err)
	}
}

func TestMJPEGChunksRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "counter.mp4")
	videotest.WriteCounterVideo(t, mp4, "", 15, 5, 320, 240)
	mp4Data, err := os.ReadFile(mp4)
	if err != nil {
		t.Fatal(err)
	}
	riff := func(body string) []byte {
		b := []byte("RIFF\x00\x00\x00\x00AVI " + body)
		b[4] = byte(len(b) - 8)
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"mp4", mp4Data},
		{"wave", []byte("RIFF\x04\x00\x00\x00WAVE")},
		{"avi without frames", riff("LIST\x04\x00\x00\x00movi")},
		{"uncompressed frames", riff("LIST\x0e\x00\x00\x00movi00db\x02\x00\x00\x00\x01\x02")},
		{"frame larger than the limit", riff("LIST\x0c\x00\x00\x00movi00dc\xff\xff\xff\x7f")},
	} {
		if _, err := MJPEGChunks(bytes.NewReader(c.data), int64(len(c.data))); !errors.Is(err, ErrNotMJPEG) {
			t.Errorf("%s: error %v, want ErrNotMJPEG", c.name, err)
		}
		path := filepath.Join(dir, "file.avi")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if r, err := Open(path); !errors.Is(err, ErrNotMJPEG) {
			t.Errorf("Open(%s) = %v, want ErrNotMJPEG", c.name, err)
			if r != nil {
				r.Close()
			}
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.avi")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want a not-exist error", err)
	}
}
