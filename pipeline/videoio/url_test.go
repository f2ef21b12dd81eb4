package videoio

import (
	"errors"
	"io"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio/mjpegtest"
)

// counterJPEGs encodes n counter frames of w x h.
func counterJPEGs(t testing.TB, n, w, h int) [][]byte {
	t.Helper()
	img := bgr.New(w, h)
	frames := make([][]byte, n)
	for i := range frames {
		synth.DrawCounter(img, i)
		data, err := EncodeJPEG(img, 90)
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = data
	}
	return frames
}

// TestOpenURLReadsAnMJPEGCamera reads a local MJPEG-over-HTTP source frame
// by frame until it stops.
func TestOpenURLReadsAnMJPEGCamera(t *testing.T) {
	cam := mjpegtest.Start(counterJPEGs(t, 20, 320, 240), 50)
	defer cam.Close()
	r, err := OpenURL(cam.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var img bgr.Image
	var got []int
	for {
		err := r.Read(&img)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n, err := synth.DecodeCounter(img)
		if err != nil {
			t.Fatalf("frame %d: %v", len(got), err)
		}
		got = append(got, n)
	}
	if len(got) != 20 || got[0] != 0 || got[19] != 19 {
		t.Errorf("read counters %v, want 0..19", got)
	}
	if info := r.Info(); info.Width != 320 || info.Height != 240 || info.Backend != "FFMPEG" {
		t.Errorf("info %+v", info)
	}
}

func TestOpenURLErrors(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:1/video.mjpg", "phrase.avi", "ftp://host/x"} {
		if _, err := OpenURL(u); !errors.Is(err, ErrCannotOpen) {
			t.Errorf("OpenURL(%q): %v, want ErrCannotOpen", u, err)
		}
	}
	for u, want := range map[string]bool{"rtsp://cam/stream": true, "HTTP://cam:8080/video.mjpg": true, "https://cam/x": true, "phrase.avi": false, "/data/x.mp4": false, "http:/nohost": false, "C:/x.avi": false} {
		if IsURL(u) != want {
			t.Errorf("IsURL(%q) = %v", u, !want)
		}
	}
}
