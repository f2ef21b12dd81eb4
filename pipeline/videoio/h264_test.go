package videoio

import (
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
)

// TestH264Writer: a video written with CreateH264 reads back through
// OpenCV as avc1 with every frame at its size and rate, each frame the
// picture written (the counter pattern decodes to its index). Bad sizes,
// a missing directory and a closed writer are refused.
func TestH264Writer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.mp4")
	const n, w, h = 45, 640, 360
	wr, err := CreateH264(path, 15, w, h, H264Options{Preset: "superfast", CRF: 23})
	if err != nil {
		t.Fatal(err)
	}
	img := bgr.New(w, h)
	for i := range n {
		synth.DrawCounter(img, i)
		if err := wr.Write(img); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wr.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if err := wr.Write(img); err == nil || !strings.Contains(err.Error(), "the writer is closed") {
		t.Errorf("Write after Close: %v", err)
	}
	info, err := Probe(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Codec != "avc1" || info.FrameCount != n || info.Width != w || info.Height != h || info.FPS != 15 {
		t.Errorf("read back %+v, want %d avc1 frames of %dx%d at 15 fps", info, n, w, h)
	}
	r, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var frame bgr.Image
	for i := 0; ; i++ {
		err := r.Read(&frame)
		if errors.Is(err, io.EOF) {
			if i != n {
				t.Errorf("%d frames read, want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if got, err := synth.DecodeCounter(frame); err != nil || got != i {
			t.Fatalf("frame %d reads as %d (%v)", i, got, err)
		}
	}

	for _, c := range []struct {
		w, h int
		fps  float64
		want string
	}{{641, 360, 15, "641x360: H.264 wants even sides"}, {0, 0, 15, "0x0: H.264 wants even sides"}, {640, 360, 0, "frame rate 0 out of range"}} {
		if _, err := CreateH264(filepath.Join(t.TempDir(), "y.mp4"), c.fps, c.w, c.h, H264Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CreateH264 %dx%d at %v fps: %v, want %q", c.w, c.h, c.fps, err, c.want)
		}
	}
	if _, err := CreateH264(filepath.Join(t.TempDir(), "no", "such", "dir.mp4"), 15, w, h, H264Options{}); err == nil || !strings.Contains(err.Error(), "create the file") {
		t.Errorf("CreateH264 in a missing directory: %v", err)
	}
	if wr, err := CreateH264(path, 15, w, h, H264Options{}); err != nil {
		t.Fatal(err)
	} else if err := wr.Write(bgr.New(320, 240)); err == nil || !strings.Contains(err.Error(), "a 320x240 picture into a 640x360 video") {
		t.Errorf("Write of the wrong size: %v", err)
	} else {
		wr.Close()
	}
}

// BenchmarkH264Write640x360 writes a 300-frame 640x360 phrase (the
// overlay's size of a 1280x720 video) with CreateH264's preset and with
// OpenCV's avc1 writer, whose preset is x264's slower default, and
// reports seconds per video.
func BenchmarkH264Write640x360(b *testing.B) {
	img := bgr.New(640, 360)
	rng := rand.New(rand.NewPCG(1, 2))
	frames := make([]bgr.Image, 300)
	for i := range frames {
		synth.Scenarios()[0].Render(img, float64(i)/30)
		synth.AddNoise(img, rng, 4)
		frames[i] = bgr.Image{Width: img.Width, Height: img.Height, Pix: append([]byte(nil), img.Pix...)}
	}
	type writer interface {
		Write(bgr.Image) error
		Close() error
	}
	for _, c := range []struct {
		name string
		open func(path string) (writer, error)
	}{
		{"ultrafast", func(p string) (writer, error) {
			return CreateH264(p, 30, 640, 360, H264Options{Preset: "ultrafast", CRF: 23})
		}},
		{"superfast", func(p string) (writer, error) {
			return CreateH264(p, 30, 640, 360, H264Options{Preset: "superfast", CRF: 23})
		}},
		{"opencv-avc1", func(p string) (writer, error) { return Create(p, "avc1", 30, 640, 360) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "x.mp4")
			for b.Loop() {
				w, err := c.open(path)
				if err != nil {
					b.Fatal(err)
				}
				for _, f := range frames {
					if err := w.Write(f); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/video")
		})
	}
}
