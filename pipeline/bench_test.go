package pipeline

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/protocol"
)

// benchFrames encodes n counter frames once for the benchmarks.
func benchFrames(b testing.TB, n, w, h int, encoding string) *fixedSource {
	b.Helper()
	src := &fixedSource{}
	for i := range n {
		src.frames = append(src.frames, EncodedFrame{Number: i, Encoding: encoding, Data: encodeCounter(b, i, w, h, encoding, 3)})
	}
	return src
}

// benchReconstruct measures the reconstruction stage, read-back check
// included, of frames into the given format, in frames per second.
func benchReconstruct(b *testing.B, src *fixedSource, w, h int, format string) {
	var size int64
	for _, f := range src.frames {
		size += int64(len(f.Data))
	}
	job := Job{FPS: 30, Width: w, Height: h, Frames: src, VideoFormat: format}
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
// in an AVI as they are.
func BenchmarkReconstructMJPEG(b *testing.B) {
	src := benchFrames(b, 300, 1280, 720, protocol.EncodingJPEG)
	benchReconstruct(b, src, 1280, 720, VideoFormatMJPEG)
}

// BenchmarkReconstructDecode rebuilds the same JPEG frames through the
// decode path: the first frame is given raw, which makes reconstruction
// choose OpenCV's MJPG writer, so the other 299 JPEG frames are decoded and
// encoded again.
func BenchmarkReconstructDecode(b *testing.B) {
	src := benchFrames(b, 300, 1280, 720, protocol.EncodingJPEG)
	src.frames[0] = EncodedFrame{Number: 0, Encoding: protocol.EncodingRaw, Data: encodeCounter(b, 0, 1280, 720, protocol.EncodingRaw, 3)}
	benchReconstruct(b, src, 1280, 720, VideoFormatMJPEG)
}

// BenchmarkReconstructH264 rebuilds the same JPEG frames as a browser
// playable H.264 MP4.
func BenchmarkReconstructH264(b *testing.B) {
	src := benchFrames(b, 300, 1280, 720, protocol.EncodingJPEG)
	benchReconstruct(b, src, 1280, 720, VideoFormatH264)
}
