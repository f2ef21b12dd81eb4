// Package videotest makes and reads the counter videos tests use: every
// frame shows its own index as synth's counter code, so a test can tell,
// frame by frame, that a video went through whole, in order and once.
package videotest

import (
	"errors"
	"io"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

// CounterPicture returns counter picture i of w x h: it shows i.
func CounterPicture(i, w, h int) bgr.Image {
	img := bgr.New(w, h)
	synth.DrawCounter(img, i)
	return img
}

// CounterFrames returns counter pictures 0 to n-1 of w x h.
func CounterFrames(n, w, h int) []bgr.Image {
	out := make([]bgr.Image, n)
	for i := range out {
		out[i] = CounterPicture(i, w, h)
	}
	return out
}

// CounterJPEGs returns n counter pictures of w x h as JPEGs of the given
// quality.
func CounterJPEGs(t testing.TB, n, w, h, quality int) [][]byte {
	t.Helper()
	img := bgr.New(w, h)
	out := make([][]byte, n)
	for i := range out {
		synth.DrawCounter(img, i)
		data, err := videoio.EncodeJPEG(img, quality)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = data
	}
	return out
}

// EncodeCounter returns counter picture i of w x h as the payload of a
// frame in the encoding: protocol.EncodingJPEG (at the default quality),
// EncodingPNG, or EncodingRaw (3 channels, with its header). Any other
// encoding fails the test.
func EncodeCounter(t testing.TB, i, w, h int, encoding string) []byte {
	t.Helper()
	img := CounterPicture(i, w, h)
	var data []byte
	var err error
	switch encoding {
	case protocol.EncodingJPEG:
		data, err = videoio.EncodeJPEG(img, protocol.DefaultJPEGQuality)
	case protocol.EncodingPNG:
		data, err = videoio.EncodePNG(img)
	case protocol.EncodingRaw:
		data = protocol.AppendRaw(nil, h, w, 3, img.Pix)
	default:
		t.Fatalf("unknown encoding %q", encoding)
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// WriteCounterVideo writes a video of n counter frames of w x h at fps to
// path, in the container its extension names, with the codec fourcc (""
// for videoio.FourCCForPath's).
func WriteCounterVideo(t testing.TB, path, fourcc string, fps float64, n, w, h int) {
	t.Helper()
	vw, err := videoio.Create(path, fourcc, fps, w, h)
	if err != nil {
		t.Fatal(err)
	}
	img := bgr.New(w, h)
	for i := range n {
		synth.DrawCounter(img, i)
		if err := vw.Write(img); err != nil {
			t.Fatal(err)
		}
	}
	if err := vw.Close(); err != nil {
		t.Fatal(err)
	}
}

// ReadCounters reads the video at path to the end through OpenCV and
// returns the counter of every frame, -1 for a frame whose code does not
// read, and what the reader reports of the file.
func ReadCounters(t testing.TB, path string) ([]int, videoio.Info) {
	t.Helper()
	r, err := videoio.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []int
	var img bgr.Image
	for {
		err := r.Read(&img)
		if errors.Is(err, io.EOF) {
			return got, r.Info()
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, len(got), err)
		}
		i, err := synth.DecodeCounter(img)
		if err != nil {
			i = -1
		}
		got = append(got, i)
	}
}
