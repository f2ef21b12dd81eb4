package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/referee-project/referee/server/servertest"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/pipeline/videoio/videotest"
	"github.com/referee-project/referee/protocol"
)

// sampleSignal is a real scoring-box log of the repository's testdata:
// phrase 9, a double touch.
const sampleSignal = "20251020_210329_phrase09.txt"

// repoTestdata returns the repository's testdata/<sub> directory, found by
// walking up from the package to the directory holding go.mod.
func repoTestdata(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", sub)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// signalFile returns the path of the sample phrase log and its bytes.
func signalFile(t testing.TB) (string, []byte) {
	t.Helper()
	path := filepath.Join(repoTestdata(t, "signal"), sampleSignal)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// counterVideo writes a video of n counter frames (frame i shows i) at fps
// with w x h pixels and returns its path.
func counterVideo(t testing.TB, dir, name string, n, w, h int, fps float64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	videotest.WriteCounterVideo(t, path, "", fps, n, w, h)
	return path
}

// video writes a counter video of n frames at 160x120, 25 fps, in the
// container ext ("avi" or "mp4") in the test's temporary directory.
func video(t testing.TB, n int, ext string) string {
	t.Helper()
	return counterVideo(t, t.TempDir(), fmt.Sprintf("counter%d.%s", n, ext), n, 160, 120, 25)
}

// decodeCounters reads back the frame index of every received frame; -1
// marks one that does not decode.
func decodeCounters(t testing.TB, frames []receivedFrame) []int {
	t.Helper()
	out := make([]int, len(frames))
	for i, f := range frames {
		var img bgr.Image
		var err error
		if f.encoding == protocol.EncodingRaw {
			var h, w, c int
			var pix []byte
			h, w, c, pix, err = protocol.ParseRaw(f.data)
			if err == nil && c != 3 {
				t.Fatalf("frame %d: raw with %d channels", i, c)
			}
			img = bgr.Image{Width: w, Height: h, Pix: pix}
		} else {
			err = videoio.Decode(f.data, &img)
		}
		out[i] = -1
		if err != nil {
			t.Errorf("frame %d (%s): %v", i, f.encoding, err)
			continue
		}
		if n, err := synth.DecodeCounter(img); err == nil {
			out[i] = n
		}
	}
	return out
}

// baseOptions streams video to the peer with short timeouts. A lost
// connection fails the run at once, as the peer's faults expect: the
// resume tests turn resuming on.
func baseOptions(p *peer, video, sig string, logs *servertest.LogBuffer) Options {
	return Options{
		Server:      p.url(),
		Video:       video,
		Signal:      sig,
		Timeout:     5 * time.Second,
		KeepAlive:   10 * time.Second,
		Logger:      logs.Logger(),
		ResumeTries: -1,
	}
}

// testContext is a context that ends with the test, bounded so that a hang
// fails instead of stalling the suite.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
