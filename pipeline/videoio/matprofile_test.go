//go:build matprofile

package videoio

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
)

// TestNoMatLeaks runs every path of the package, good and bad, and checks
// that gocv's Mat profile (only built with -tags matprofile) counts no Mat
// left open.
func TestNoMatLeaks(t *testing.T) {
	before := gocv.MatProfile.Count()
	dir := t.TempDir()
	img := bgr.New(320, 240)
	synth.DrawCounter(img, 5)
	var dst bgr.Image

	jpg, _ := EncodeJPEG(img, 80)
	pngData, _ := EncodePNG(img)
	_, _ = EncodeJPEG(bgr.Image{}, 80)
	_ = Decode(jpg, &dst)
	_ = Decode(pngData, &dst)
	_ = Decode([]byte("junk"), &dst)
	Resize(img, 100, 50, &dst)

	good := filepath.Join(dir, "good.mp4")
	w, err := Create(good, "", 15, 320, 240)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_ = w.Write(img)
	}
	_ = w.Write(bgr.New(2, 2))
	_ = w.Close()
	_, _ = Create(filepath.Join(dir, "bad.avi"), "ZZZZ", 15, 320, 240)

	r, err := OpenFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for r.Read(&dst) != io.EOF {
	}
	_ = r.Close()
	noFrames := filepath.Join(dir, "none.avi")
	if w, err := Create(noFrames, "MJPG", 15, 320, 240); err == nil {
		_ = w.Close()
	}
	text := filepath.Join(dir, "text.mp4")
	_ = os.WriteFile(text, []byte("hello"), 0o644)
	for _, p := range []string{good, noFrames, text, filepath.Join(dir, "missing.mp4")} {
		_, _ = Probe(p)
	}
	_, _ = OpenCamera(63)

	if after := gocv.MatProfile.Count(); after != before {
		var b bytes.Buffer
		_ = gocv.MatProfile.WriteTo(&b, 1)
		t.Errorf("%d Mats left open:\n%s", after-before, b.String())
	}
}
