package pipeline

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

const (
	benchFramesN = 300
	benchWidth   = 1280
	benchHeight  = 720
	// benchNoise is the camera noise added to the counter frames so that
	// they compress like camera pictures: about 100 KB as JPEG at quality
	// 85 and 1.5 MB as PNG at 1280x720.
	benchNoise = 8
)

// benchFrames returns a source of n frames of the given encoding, made of
// distinct noisy counter pictures used in turn, so that a long session of
// large PNG frames does not fill the memory.
func benchFrames(b *testing.B, n, distinct int, encoding string) *fixedSource {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	img := bgr.New(benchWidth, benchHeight)
	pics := make([][]byte, distinct)
	for i := range pics {
		synth.DrawCounter(img, i)
		synth.AddNoise(img, rng, benchNoise)
		var err error
		if encoding == protocol.EncodingPNG {
			pics[i], err = videoio.EncodePNG(img)
		} else {
			pics[i], err = videoio.EncodeJPEG(img, protocol.DefaultJPEGQuality)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	src := &fixedSource{}
	for i := range n {
		src.frames = append(src.frames, EncodedFrame{Number: i, Encoding: encoding, Data: pics[i%distinct]})
	}
	return src
}

// benchReconstruct measures the reconstruction stage, read-back check
// included, and reports frames per second.
func benchReconstruct(b *testing.B, src *fixedSource, format string) {
	var size int64
	for _, f := range src.frames {
		size += int64(len(f.Data))
	}
	job := Job{FPS: 30, Width: benchWidth, Height: benchHeight, Frames: src, VideoFormat: format}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		dir := b.TempDir()
		path, sum, err := reconstruct(context.Background(), job, dir, func(float64, string) {})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Frames != len(src.frames) || filepath.Dir(path) != dir {
			b.Fatalf("%d frames in %s", sum.Frames, path)
		}
	}
	b.ReportMetric(float64(len(src.frames)*b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkReconstructMJPEG stores 300 JPEG frames (1280x720, quality 85)
// in an AVI as they are: the path of every JPEG session.
func BenchmarkReconstructMJPEG(b *testing.B) {
	benchReconstruct(b, benchFrames(b, benchFramesN, benchFramesN, protocol.EncodingJPEG), VideoFormatMJPEG)
}

// BenchmarkReconstructDecode rebuilds 300 frames of the same pictures sent
// as PNG, the decode path: every frame is decoded and encoded as JPEG (on
// all cores) before going into the AVI.
func BenchmarkReconstructDecode(b *testing.B) {
	benchReconstruct(b, benchFrames(b, benchFramesN, 30, protocol.EncodingPNG), VideoFormatMJPEG)
}

// BenchmarkReconstructH264 rebuilds the JPEG frames of
// BenchmarkReconstructMJPEG as a browser-playable H.264 MP4: every frame is
// decoded (on all cores) and encoded by libx264 with the veryfast preset.
func BenchmarkReconstructH264(b *testing.B) {
	benchReconstruct(b, benchFrames(b, benchFramesN, benchFramesN, protocol.EncodingJPEG), VideoFormatH264)
}
