package videoio

import (
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
)

// benchFrame is a 640x480 fencing frame with camera noise: closer to what
// the client streams than a flat or pure-noise picture.
func benchFrame() bgr.Image {
	img := bgr.New(640, 480)
	synth.Scenarios()[0].Render(img, 1.5)
	synth.AddNoise(img, rand.New(rand.NewPCG(1, 2)), 6)
	return img
}

func BenchmarkEncodeJPEG640x480(b *testing.B) {
	img := benchFrame()
	b.SetBytes(int64(len(img.Pix)))
	for b.Loop() {
		if _, err := EncodeJPEG(img, 85); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJPEG640x480(b *testing.B) {
	data, err := EncodeJPEG(benchFrame(), 85)
	if err != nil {
		b.Fatal(err)
	}
	var dst bgr.Image
	b.SetBytes(640 * 480 * 3)
	for b.Loop() {
		if err := Decode(data, &dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFrame reads 640x480 mp4v frames, reopening the file at the
// end outside the timer.
func BenchmarkReadFrame(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.mp4")
	w, err := Create(path, "mp4v", 15, 640, 480)
	if err != nil {
		b.Fatal(err)
	}
	s := synth.Scenarios()[0]
	img := bgr.New(640, 480)
	for i := range 30 {
		s.Render(img, float64(i)/15)
		if err := w.Write(img); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	r, err := OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { r.Close() }()
	b.SetBytes(640 * 480 * 3)
	for b.Loop() {
		err := r.Read(&img)
		if err == io.EOF {
			b.StopTimer()
			r.Close()
			if r, err = OpenFile(path); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			err = r.Read(&img)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
