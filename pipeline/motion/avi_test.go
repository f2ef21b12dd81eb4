package motion

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/synth"
)

func TestMJPEGChunksIndexesEveryFrame(t *testing.T) {
	sc := synth.Scenarios()[0]
	dir := t.TempDir()
	in := film(t, dir, sc, variant{".avi", 15, 320, 240, 0})
	data, err := os.ReadFile(in.VideoPath)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := avi.MJPEGChunks(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != in.Frames {
		t.Fatalf("%d chunks, want %d frames", len(chunks), in.Frames)
	}
	for i, c := range chunks {
		if !bytes.HasPrefix(data[c.Off:], []byte{0xff, 0xd8}) {
			t.Fatalf("chunk %d at %d does not start a JPEG", i, c.Off)
		}
	}
	// A file cut in the middle keeps the frames before the cut.
	cut := chunks[10].Off + 100
	short, err := avi.MJPEGChunks(bytes.NewReader(data[:cut]), cut)
	if err != nil || len(short) != 10 {
		t.Errorf("truncated file: %d chunks, %v; want 10", len(short), err)
	}

	// Both ways of reading give the same tracking frames, up to the JPEG
	// decoder's scaling.
	fast, err := loadMJPEG(context.Background(), in.VideoPath, 160, func(float64) {})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := loadCapture(context.Background(), in.VideoPath, 160, in.Frames, func(float64) {})
	if err != nil {
		t.Fatal(err)
	}
	if fast.w != slow.w || fast.h != slow.h || len(fast.frames) != len(slow.frames) {
		t.Fatalf("MJPEG path %dx%d x %d, OpenCV path %dx%d x %d", fast.w, fast.h, len(fast.frames), slow.w, slow.h, len(slow.frames))
	}
	for i := range fast.frames {
		sum := 0
		for k := range fast.frames[i] {
			d := int(fast.frames[i][k]) - int(slow.frames[i][k])
			sum += d * d
		}
		if mse := float64(sum) / float64(len(fast.frames[i])); mse > 40 {
			t.Fatalf("frame %d differs between the two paths: mean squared difference %.1f", i, mse)
		}
	}
}

func TestMJPEGChunksRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	mp4 := film(t, dir, synth.Scenarios()[0], variant{".mp4", 15, 320, 240, 0}).VideoPath
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
		if _, err := avi.MJPEGChunks(bytes.NewReader(c.data), int64(len(c.data))); !errors.Is(err, avi.ErrNotMJPEG) {
			t.Errorf("%s: error %v, want avi.ErrNotMJPEG", c.name, err)
		}
	}
	// Such a file is read through OpenCV instead.
	if _, err := loadMJPEG(context.Background(), mp4, 160, func(float64) {}); !errors.Is(err, avi.ErrNotMJPEG) {
		t.Errorf("loadMJPEG(mp4) = %v, want avi.ErrNotMJPEG", err)
	}
	if _, err := loadMJPEG(context.Background(), filepath.Join(dir, "missing.avi"), 160, func(float64) {}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loadMJPEG(missing) = %v, want a not-exist error", err)
	}
}
