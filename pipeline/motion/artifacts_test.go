package motion

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/internal/timeline"
	"github.com/referee-project/referee/pipeline/rightofway"
	"github.com/referee-project/referee/pipeline/signal"
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
		// The browser's copies, at the overlay's size.
		ArtifactVideoWeb:   filepath.Join(dir, VideoWebFile),
		ArtifactOverlayWeb: filepath.Join(dir, OverlayWebFile),
		ArtifactClipWeb:    filepath.Join(dir, ClipWebFile),
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
	for name, frames := range map[string]int{ArtifactVideoWeb: in.Frames, ArtifactOverlayWeb: in.Frames, ArtifactClipWeb: 27} {
		info, err := videoio.Probe(want[name])
		if err != nil {
			t.Fatal(err)
		}
		if info.FrameCount != frames || info.Width != 640 || info.Height != 480 || info.Codec != "avc1" {
			t.Errorf("%s is %+v, want %d avc1 (H.264) frames of 640x480", name, info, frames)
		}
	}
	left, err := filepath.Glob(filepath.Join(dir, "*.part*"))
	if err != nil || len(left) > 0 {
		t.Errorf("temporary files left behind: %v %v", left, err)
	}
}

// TestOverlayColours: the overlay labels each fencer's phase from the
// tracks on the phase's colour of timeline.png, and flashes a hit in the
// colour of the lamp it lit, never in a phase's or the other fencer's.
func TestOverlayColours(t *testing.T) {
	tl := rightofway.Timeline{FPS: 30, Frames: 10,
		Left:   rightofway.FencerTrack{Phases: []rightofway.Phase{{Kind: rightofway.PhaseLunge, StartFrame: 0, EndFrame: 9}}},
		Right:  rightofway.FencerTrack{Phases: []rightofway.Phase{{Kind: rightofway.PhasePause, StartFrame: 0, EndFrame: 9}}},
		Events: []rightofway.TimelineEvent{{TimeS: 0.1, Frame: 3, Kind: signal.EventHit, Light: "right"}},
	}
	l := sample{seen: true, x0: 40, y0: 100, x1: 120, y1: 300}
	r := sample{seen: true, x0: 400, y0: 100, x1: 480, y1: 300}
	img := bgr.New(640, 360)
	if err := annotate(img, tl, l, r, 3, 1, 1); err != nil {
		t.Fatal(err)
	}
	at := func(x, y int) timeline.Colour {
		b, g, r := img.At(x, y)
		return timeline.Colour{B: b, G: g, R: r}
	}
	if got := at(0, 180); got != timeline.RightColour {
		t.Errorf("the frame of the right lamp's hit is %v, want the right fencer's %v", got, timeline.RightColour)
	}
	if got := at(41, 150); got != timeline.LeftColour {
		t.Errorf("left box %v, want %v", got, timeline.LeftColour)
	}
	// The phase chip follows the name chip: find its colour to the right
	// of "LEFT" on the label's row.
	nw, th := videoio.TextSize("LEFT", 0.45, 1)
	rw, _ := videoio.TextSize("RIGHT", 0.45, 1)
	ly := 100 - 4
	if got := at(40+nw+5, ly-th); got != timeline.PhaseColours[rightofway.PhaseLunge] {
		t.Errorf("left phase chip %v, want lunge's %v", got, timeline.PhaseColours[rightofway.PhaseLunge])
	}
	if got := at(400+rw+5, ly-th); got != timeline.PhaseColours[rightofway.PhasePause] {
		t.Errorf("right phase chip %v, want pause's %v", got, timeline.PhaseColours[rightofway.PhasePause])
	}
}
