package motion

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/synth"
)

// TestMJPEGAndOpenCVPathsAgree reads a Motion-JPEG AVI both ways: by its
// JPEG chunks, decoded in parallel, and through OpenCV.
func TestMJPEGAndOpenCVPathsAgree(t *testing.T) {
	sc := synth.Scenarios()[0]
	dir := t.TempDir()
	in := film(t, dir, sc, variant{".avi", 15, 320, 240, 0})
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

// TestLoadMJPEGLeavesOtherFilesToOpenCV: a file that is not a Motion-JPEG
// AVI (package avi tests which are not) is read through OpenCV instead.
func TestLoadMJPEGLeavesOtherFilesToOpenCV(t *testing.T) {
	dir := t.TempDir()
	mp4 := film(t, dir, synth.Scenarios()[0], variant{".mp4", 15, 320, 240, 0}).VideoPath
	if _, err := loadMJPEG(context.Background(), mp4, 160, func(float64) {}); !errors.Is(err, avi.ErrNotMJPEG) {
		t.Errorf("loadMJPEG(mp4) = %v, want avi.ErrNotMJPEG", err)
	}
	if _, err := loadMJPEG(context.Background(), filepath.Join(dir, "missing.avi"), 160, func(float64) {}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loadMJPEG(missing) = %v, want a not-exist error", err)
	}
}
