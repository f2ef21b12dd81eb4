package pose

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/signal"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/tracks"
	"github.com/referee-project/referee/pipeline/videoio"
)

// vtest is real video: people walking past a static camera, 768x576 at
// 10 fps, from Debian's opencv-doc.
const vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// movenet returns the project's pose estimator in this tree. Without it
// (node, its npm packages) or vtest.avi the test is skipped, or fails
// when REFEREE_POSE_REQUIRED is set, as `make test` does after
// installing both.
func movenet(t *testing.T) string {
	t.Helper()
	tool, err := filepath.Abs(filepath.Join("movenet", "pose.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	var missing string
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join("movenet", "node_modules", ".package-lock.json")); err != nil {
		missing = "the pose estimator's npm packages are not installed (make pose-deps)"
	} else if _, err := os.Stat(vtest); err != nil {
		missing = vtest + " is not installed (make vtest)"
	}
	if missing != "" {
		if os.Getenv("REFEREE_POSE_REQUIRED") != "" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	return tool
}

// vtestClip writes frames from..from+n-1 of vtest.avi as a Motion-JPEG AVI
// (what the server rebuilds a session into) in a new artifact directory,
// with the log of a scripted double touch at 1.90 s.
func vtestClip(t *testing.T, from, n int) pipeline.AnalysisInput {
	t.Helper()
	r, err := videoio.OpenFile(vtest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	info := r.Info()
	dir := t.TempDir()
	path := filepath.Join(dir, "video.avi")
	w, err := avi.Create(path, avi.Config{Width: info.Width, Height: info.Height, FPS: info.FPS})
	if err != nil {
		t.Fatal(err)
	}
	var img bgr.Image
	for i := 0; i < from+n; i++ {
		if err := r.Read(&img); err != nil {
			t.Fatalf("read frame %d of %s: %v", i, vtest, err)
		}
		if i < from {
			continue
		}
		data, err := videoio.EncodeJPEG(img, 90)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sc, err := synth.ScenarioByName("left-attack-right-pause")
	if err != nil {
		t.Fatal(err)
	}
	p, err := signal.Parse(signal.Render(sc.Signal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))))
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.AnalysisInput{VideoPath: path, FPS: info.FPS, Width: info.Width, Height: info.Height, Frames: n, Phrase: p, ArtifactDir: dir}
}

// TestMoveNetOnRealPeople runs the real model through the pose analyzer on
// two stretches of 4 s of vtest.avi and checks what must hold for any
// person: found in most frames, hips moving smoothly and in the direction
// they walk, keypoints inside the frame with sensible scores, and a scale
// that makes a person person-sized. Where they walk was seen in the
// overlay video.
func TestMoveNetOnRealPeople(t *testing.T) {
	tool := movenet(t)
	for _, c := range []struct {
		name string
		from int
		// dir is the way both people walk along x: +1 right, -1 left.
		dir float64
	}{
		// Two men walk right along the path, from x 200 and 310 to 430
		// and 500; the first passes behind the signpost at the end.
		{"walking right", 300, +1},
		// Two people walk left across the foreground, from x 527 and 747
		// to 302 and 486.
		{"walking left", 230, -1},
	} {
		t.Run(c.name, func(t *testing.T) { checkRealPeople(t, tool, c.from, c.dir) })
	}
}

func checkRealPeople(t *testing.T, tool string, from int, dir float64) {
	in := vtestClip(t, from, 40)
	a, err := New(tool+" {frames} {fps} {out}", 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Analyze(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tracks.ReadFile(v.Artifacts[ArtifactTracks])
	if err != nil {
		t.Fatal(err)
	}
	if tr.Frames() != in.Frames || tr.FPS != in.FPS || tr.Units != tracks.UnitsPixels {
		t.Fatalf("tracks: %d frames at %g fps in %q, want %d at %g in px", tr.Frames(), tr.FPS, tr.Units, in.Frames, in.FPS)
	}
	for _, side := range []struct {
		name  string
		poses []*tracks.Pose
	}{{"left", tr.Left}, {"right", tr.Right}} {
		found, prev, prevAt := 0, math.NaN(), -1
		var first, last float64
		var heights []float64
		var scoreSum float64
		var scored int
		for i, p := range side.poses {
			if p == nil {
				continue
			}
			found++
			var sum float64
			var seen int
			top, bottom := math.Inf(1), math.Inf(-1)
			for k, kp := range p {
				if !kp.Seen {
					continue
				}
				if kp.X < 0 || kp.Y < 0 || kp.X > float64(in.Width) || kp.Y > float64(in.Height) {
					t.Errorf("%s frame %d keypoint %d at (%.0f, %.0f) is outside the %dx%d frame", side.name, i, k, kp.X, kp.Y, in.Width, in.Height)
				}
				if !(kp.Score >= 0.2 && kp.Score <= 1) {
					t.Errorf("%s frame %d keypoint %d: score %v, want 0.2 to 1 (lower ones are null)", side.name, i, k, kp.Score)
				}
				sum += kp.Score
				seen++
				top, bottom = math.Min(top, kp.Y), math.Max(bottom, kp.Y)
			}
			// A man behind the signpost shows less, but never so little.
			if seen < 8 || sum/float64(seen) < 0.25 {
				t.Errorf("%s frame %d: %d keypoints with a mean score of %.2f, want at least 8 and 0.25", side.name, i, seen, sum/float64(max(seen, 1)))
			}
			scoreSum += sum
			scored += seen
			h := bottom - top
			heights = append(heights, h)
			if !p[tracks.LeftHip].Seen || !p[tracks.RightHip].Seen {
				continue
			}
			x := (p[tracks.LeftHip].X + p[tracks.RightHip].X) / 2
			// A body width is about 0.3 of the height: a walker covers
			// far less between two frames at 10 fps.
			if prevAt == i-1 && math.Abs(x-prev) > 0.3*h {
				t.Errorf("%s: hips jump %.0f px from frame %d to %d, more than a body width (%.0f px)", side.name, math.Abs(x-prev), i-1, i, 0.3*h)
			}
			if math.IsNaN(prev) {
				first = x
			}
			prev, prevAt, last = x, i, x
		}
		if found < len(side.poses)*8/10 {
			t.Errorf("%s found in %d of %d frames, want at least 80%%", side.name, found, len(side.poses))
		}
		if (last-first)*dir < 100 {
			t.Errorf("%s: hips moved from x %.0f to %.0f; the person walks over 150 px to the %s", side.name, first, last, map[float64]string{1: "right", -1: "left"}[dir])
		}
		if m := scoreSum / float64(max(scored, 1)); m < 0.45 {
			t.Errorf("%s: mean keypoint score %.2f, want at least 0.45 for people in full view most of the time", side.name, m)
		}
		hm := median(heights)
		if m := hm * tr.MetresPerPixel; !(m > 1.2 && m < 2.0) {
			t.Errorf("%s: %.0f px tall at %.4f m/px is %.2f m, not a person's nose-to-ankle height", side.name, hm, tr.MetresPerPixel, m)
		}
	}
	for _, name := range []string{ArtifactTimeline, ArtifactOverlay} {
		if _, err := os.Stat(v.Artifacts[name]); err != nil {
			t.Errorf("artifact %s: %v", name, err)
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// The check mode answers with what is installed, for probe-pose.
func TestMoveNetCheck(t *testing.T) {
	tool := movenet(t)
	a, err := New(tool+" {frames} {fps} {out}", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != "wasm" || !(c.LightningS > 0) || !(c.MultiPoseS > 0) {
		t.Errorf("check %+v: want the wasm backend and both models timed", c)
	}
}
