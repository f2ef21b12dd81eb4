package motion

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
)

func TestAnalyzeWritesArtifacts(t *testing.T) {
	sc, err := synth.ScenarioByName("beat-left-attack-right-counter")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := film(t, dir, sc, variant{".avi", 15, 640, 480, 8})
	v, err := (&Analyzer{}).Analyze(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, sc, in, v)
	want := map[string]string{
		ArtifactTimeline: filepath.Join(dir, TimelineFile),
		ArtifactOverlay:  filepath.Join(dir, OverlayFile),
		ArtifactClip:     filepath.Join(dir, ClipFile),
		ArtifactTracks:   filepath.Join(dir, TracksFile),
	}
	if len(v.Artifacts) != len(want) {
		t.Errorf("artifacts %v, want %v", v.Artifacts, want)
	}
	for name, path := range want {
		if v.Artifacts[name] != path {
			t.Errorf("artifact %s = %q, want %q", name, v.Artifacts[name], path)
		}
	}
	data, err := os.ReadFile(want[ArtifactTimeline])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("timeline.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1000 || b.Dy() != 500 {
		t.Errorf("timeline.png is %v, want 1000x500", b)
	}

	ov, err := videoio.Probe(want[ArtifactOverlay])
	if err != nil {
		t.Fatal(err)
	}
	if ov.FrameCount != in.Frames || ov.Width != 640 || ov.Height != 480 || ov.Codec != "MJPG" {
		t.Errorf("overlay is %+v, want %d MJPG frames of 640x480", ov, in.Frames)
	}
	// From 1.5 s before the first hit (1.90 s) to the end of the lockout
	// (1.923 + 0.2 s): frames 6 to 32 at 15 fps.
	cl, err := videoio.Probe(want[ArtifactClip])
	if err != nil {
		t.Fatal(err)
	}
	if cl.FrameCount != 27 || cl.Width != 640 || cl.Height != 480 {
		t.Errorf("touch clip is %+v, want 27 frames of 640x480", cl)
	}
	left, err := filepath.Glob(filepath.Join(dir, "*.part*"))
	if err != nil || len(left) > 0 {
		t.Errorf("temporary files left behind: %v %v", left, err)
	}
}
